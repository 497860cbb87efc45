"""`inv verify`'s core: observe every node (fabfile.infra.facts.VERIFY, one round trip each), check it
against the inventory (fabfile.core.checks, pure), and GET through each VIP from this machine.
Tables are drawn by fabfile/views/verify.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from fabfile.infra import facts as F
from fabfile.infra import remote
from fabfile.core import sync_rules as sync
from fabfile.core.checks import (Check, CheckKind, digest_checks, digest_targets, http_check, node_checks, vip_checks, vip_holders)
from fabfile.core.diagnose import Finding, flapping, split_brain_cause
from fabfile.infra.facts import NodeState
from fabfile.model.context import Env
from fabfile.model.schema import Inventory
from fabfile.infra.observe import observe
from fabfile.core.render import ASSUMED, render_node
from fabfile.core.render.keepalived import CONF
from fabfile.core.runtime import as_run, isolated_nodes

if TYPE_CHECKING:
    from fabfile.ops.traffic import Section


@dataclass
class Report:
    checks: list[Check]
    vip_holders: dict[str, list[str]]
    observed: dict[str, NodeState]
    findings: list[Finding] = field(default_factory=list)
    inv: Inventory | None = None           # the inventory as the cluster runs it (drains applied)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_json(self) -> dict:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks],
                "vip_holders": self.vip_holders, "findings": [f.as_dict() for f in self.findings]}


def http_get_via(c, vip: str, port: int, timeout: float = 2.0) -> tuple[str | None, str | None]:
    """The same GET, run with curl on the SSH gateway (inventory `probe: {via: gateway}`): no proxy
    whatever the gateway's environment says (--noproxy '*'), no redirect followed (no -L), and a
    status other than 2xx is a failure as it is from here (-f)."""
    from fabfile.parsers.lbtk import last_line
    url = _url(vip, port)
    try:
        r = remote.run(c, f"curl -fsS --noproxy '*' --proto =http -m {timeout:g} --max-filesize 65536 {url}",
                       check=False, timeout=timeout + 10)
    except remote.RemoteError as e:
        return None, f"GET {url} from the gateway failed: {e}"
    if r.exited != 0:
        return None, f"GET {url} from the gateway failed: {last_line(r.stderr, 'curl exited ' + str(r.exited))}"
    return r.stdout[:4096], None


def http_get(vip: str, port: int, timeout: float = 2.0) -> tuple[str | None, str | None]:
    """GET / through the VIP, straight from this machine. http.client, not urllib: no proxy the
    environment names (http_proxy would answer in the VIP's place) and no redirect followed (the
    page a redirect points to is not the VIP's answer): a 3xx is a failure that says where it pointed."""
    import http.client   # here, not at the top: part of every task's start-up otherwise
    url = _url(vip, port)
    conn = http.client.HTTPConnection(vip, port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        r = conn.getresponse()
        body = r.read(4096)
    except Exception as e:  # noqa: BLE001 - any failure is the check's detail
        return None, f"GET {url} failed: {e}"
    finally:
        conn.close()
    if not 200 <= r.status < 300:
        where = r.getheader("Location") if 300 <= r.status < 400 else None
        return None, (f"GET {url} failed: HTTP {r.status} {r.reason}"
                      + (f" (a redirect to {where[:100]!r}, not followed)" if where else ""))
    return body.decode(errors="replace"), None


def _url(vip: str, port: int) -> str:
    return f"http://[{vip}]:{port}/" if ":" in vip else f"http://{vip}:{port}/"


def checks_of(inv: Inventory, obs: dict[str, NodeState], holders: dict[str, list[str]]) -> list[Check]:
    """Pure: the cluster's and every node's checks from the observed states (the cluster's only when
    every node was observed: with --node, who holds a VIP is not known)."""
    whole = all(n.name in obs for n in inv.nodes)
    isolated = isolated_nodes(obs)
    out = vip_checks(inv, obs, isolated) if whole else []
    inst = sync.sync_instance(inv) if inv.sync_daemon else None
    for n in (n for n in inv.nodes if n.name in obs):
        is_master = bool(inst) and any(n.name in holders.get(a, []) for a in inst.addresses)
        out += node_checks(inv, n.name, obs[n.name], is_master=is_master, isolated=isolated)
    return out + digest_checks(digest_targets(inv), obs)


def diagnose(inv: Inventory, obs: dict[str, NodeState], holders: dict[str, list[str]], checks: list[Check],
             secrets: dict[str, str]) -> tuple[list[Check], list[Finding]]:
    """Pure: a split brain's VIP check names its cause; flapping VIPs become warnings."""
    desired: dict[str, str] = {}
    out, findings = [], []
    for ch in checks:
        vip = ch.subject
        if ch.kind is CheckKind.VIP and len(holders.get(vip, [])) > 1:
            # the wanted keepalived.conf of every node, rendered only when a split brain asks for it
            # (30 renders were a tenth of a 30-node verify's controller CPU)
            desired = desired or {n.name: next(f.content for f in render_node(inv, n.name, secrets, ASSUMED)
                                               if f.path == CONF) for n in inv.nodes if n.name in obs}
            cause = split_brain_cause(inv, vip, holders[vip], obs, desired)
            ch = replace(ch, detail=f"{ch.detail} — {cause}")
            findings.append(Finding(vip, f"split brain: {cause}", "error"))
        out.append(ch)
    return out, findings + flapping(inv, obs)


def verify_nodes(env: Env, nodes, http: bool = True, requests: int = 30) -> tuple[Report, "Section | None"]:
    """`inv verify`'s whole run over a group of its own: the Report, and with a lab client the
    traffic section (fabfile/ops/traffic.py; None without one or without http), whose client run's
    connections then show in the report's IPVS table."""
    from fabfile.ops.traffic import traffic_section
    with remote.nodes(env, nodes) as group:
        report = verify(env.inv, group, http=http, secrets=env.secrets)
        extra = traffic_section(env.inv, group, report, requests) if http else None
        if extra is not None and extra.runs:
            refresh_ipvs(report, observe(group, (F.IPVS_TABLE, F.IPVS_RATE)))
    return report, extra


def refresh_ipvs(report: Report, after: dict[str, NodeState]) -> None:
    """Take the IPVS table and rates observed after the client run into the report's states."""
    for n, s in after.items():
        if s.reachable and n in report.observed:
            report.observed[n].ipvs, report.observed[n].ipvs_rate = s.ipvs, s.ipvs_rate


def verify(inv: Inventory, nodes: remote.NodeGroup, http: bool = True, secrets: dict[str, str] | None = None) -> Report:
    # the live HTTP_GET digests ride in the same round trip: genhash on each director, as keepalived sees them
    group = remote.NodeGroup.of(nodes)
    targets = digest_targets(inv)
    extra = [F.genhash([t.genhash for t in targets])] if targets else []
    obs = observe(group, F.VERIFY, {n: extra for n in group.names})
    # one cause (a bastion, the network): one line; nodes that answered garbage are failed rows instead
    if obs and not any(s.reachable or s.unreadable for s in obs.values()):
        raise remote.RemoteError(next(iter(obs.values())).error + " — no node answered")
    inv = as_run(inv, obs)   # drains recorded on the nodes (fabfile/core/runtime.py) are what is wanted
    whole = all(n.name in obs for n in inv.nodes)
    holders = vip_holders(inv, obs) if whole else {}   # with --node, who holds a VIP is not known
    if any(len(h) > 1 for h in holders.values()):
        # a split brain's cause is looked for in the live keepalived.conf of each node: read in a
        # second round trip only then (tar + base64 on every node of every verify otherwise)
        for name, s in observe(group, [F.files([CONF])]).items():
            if s.reachable and name in obs:
                obs[name].files.update(s.files)
    checks, findings = diagnose(inv, obs, holders, checks_of(inv, obs, holders), secrets or {})
    if http and whole:
        port = inv.nginx.port
        names = [n.name for n in inv.nodes]
        gw = group.bastion() if inv.probe.via == "gateway" else None    # closed with the group
        for vip in holders:
            body, err = http_get_via(gw, vip, port) if gw is not None else http_get(vip, port)
            checks.append(http_check(vip, port, body, err, names))
    return Report(checks, holders, obs, findings, inv)
