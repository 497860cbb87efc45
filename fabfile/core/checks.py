"""Compare what the inventory wants with what the nodes report. Pure: observations in, checks out.

Where is the VIP check? `vip_checks` below. Each check is one row of `inv verify`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from fabfile.core import sync_rules as sync
from fabfile.infra.facts import NodeState
from fabfile.parsers.lbtk import node_in_page
from fabfile.model.schema import Inventory
from fabfile.parsers import join_host_port
from fabfile.core.render import arp
from fabfile.core.render.keepalived import virtual_servers
from fabfile.core.vrrp import expected_holders

NO_IPVS = "kernel has no IPVS"


@dataclass(frozen=True)
class Check:
    name: str
    node: str          # node name, or "cluster"
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def vip_holders(inv: Inventory, obs: dict[str, NodeState]) -> dict[str, list[str]]:
    return {vip: [n for n, o in obs.items() if vip in o.vips_on_iface]
            for vip in expected_holders(inv)}


def vip_checks(inv: Inventory, obs: dict[str, NodeState]) -> list[Check]:
    """Exactly one holder per VIP. Two holders is split brain."""
    out = []
    expected = expected_holders(inv)
    for vip, holders in vip_holders(inv, obs).items():
        if len(holders) == 1:
            where = "" if holders[0] == expected[vip] else f" (inventory prefers {expected[vip]})"
            out.append(Check(f"VIP {vip}", "cluster", True, f"held by {holders[0]}{where}"))
        elif not holders:
            out.append(Check(f"VIP {vip}", "cluster", False, "held by no node: VIP down"))
        else:
            out.append(Check(f"VIP {vip}", "cluster", False, f"SPLIT BRAIN: held by {', '.join(holders)}"))
    return out


def node_checks(inv: Inventory, name: str, o: NodeState, is_master: bool = False) -> list[Check]:
    if not o.reachable:
        return [Check("reachable", name, False, o.error)]
    node = inv.node(name)
    out = []
    # rsyslog only where keepalived's log file is wanted: elsewhere it may well be absent
    for unit in ("keepalived", "nginx") + (("rsyslog",) if inv.logging else ()):
        state = o.active.get(unit, "unknown")
        out.append(Check(f"{unit} running", name, state == "active", state))
    want = arp.wanted_sysctls(inv, node, ipvs=o.ipvs is not None)
    if want:
        wrong = {k: o.sysctl.get(k, "missing") for k, v in want.items() if o.sysctl.get(k) != v}
        out.append(Check("ARP sysctls", name, not wrong,
                         "; ".join(f"{k}={v} (want {want[k]})" for k, v in wrong.items())
                         or f"{len(want)} values as wanted"))
    lo = arp.dr_vips(inv, node)
    if lo:
        missing = [v for v in lo if v not in o.vips_on_lo]
        out.append(Check("VIP on lo", name, not missing,
                         f"missing {', '.join(missing)}" if missing else ", ".join(lo)))
    if inv.virtual_servers:
        out.append(ipvs_check(inv, name, o))
    if inv.sync_daemon:
        out.append(sync_check(inv, name, o, is_master))
    return out


def ipvs_service_key(vs: dict) -> str:
    """How ipvsadm -L -n names a rendered virtual server (render.keepalived.virtual_servers) once
    keepalived loaded it: 'TCP 10.0.0.1:80', 'TCP [fd00::1]:80', 'FWM 2', 'FWM 2 IPv6'."""
    if vs["fwmark"]:
        return f"FWM {vs['fwmark']}" + (" IPv6" if vs["family"] == 6 else "")
    return f"{vs['protocol']} {join_host_port(vs['vip'], vs['port'])}"


def wanted_ipvs(inv: Inventory) -> dict[str, dict[str, int]]:
    """{service key: {"addr:port": weight}} as keepalived will load it, keys as ipvsadm -L -n shows."""
    out = {}
    for vs in virtual_servers(inv):
        key = ipvs_service_key(vs)
        # ipvsadm shows fwmark real servers with port 0
        out[key] = {join_host_port(rs['address'], 0 if vs['fwmark'] else rs['port']): rs["weight"]
                    for rs in vs["real_servers"]}
    return out


def observed_ipvs(table) -> dict[str, dict[str, int]]:
    from fabfile.parsers.ipvsadm import service_key
    return {service_key(s): {join_host_port(r.address, r.port): r.weight for r in s.real_servers}
            for s in table.services}


def ipvs_check(inv: Inventory, name: str, o: NodeState) -> Check:
    if o.ipvs is None:
        return Check("IPVS table", name, True, f"{NO_IPVS}: keepalived runs VRRP-only")
    want, have = wanted_ipvs(inv), observed_ipvs(o.ipvs)
    problems = []
    for key, rss in want.items():
        if key not in have:
            problems.append(f"{key} missing")
            continue
        for rs, w in rss.items():
            if rs not in have[key]:
                problems.append(f"{key} -> {rs} not in pool (health check failing?)")
            elif have[key][rs] != w:
                problems.append(f"{key} -> {rs} weight {have[key][rs]} (want {w})")
    for key in have:
        if key not in want:
            problems.append(f"{key} not in inventory")
    n = sum(len(v) for v in have.values())
    return Check("IPVS table", name, not problems,
                 "; ".join(problems) or f"{len(have)} service(s), {n} real server(s) as wanted")


def sync_check(inv: Inventory, name: str, o: NodeState, is_master: bool) -> Check:
    """The VRRP MASTER runs the master sync daemon, every other director a backup one."""
    if o.ipvs is None:
        return Check("sync daemon", name, True, f"{NO_IPVS}: no connection sync")
    sd = inv.sync_daemon
    want = sync.role(is_master)
    roles = {d.role for d in o.sync_daemons if d.syncid == sd.syncid}
    detail = ", ".join(f"{d.role} (mcast={d.mcast_interface}, syncid={d.syncid})" for d in o.sync_daemons)
    return Check("sync daemon", name, want in roles,
                 (detail or "not running") + ("" if want in roles else f" — want {want}"))


def http_check(vip: str, port: int, answer: str | None, error: str | None, nodes: list[str]) -> Check:
    """The GET through a VIP answered, and its page names a node (the whole name: lb1 is not lb10)."""
    label = f"HTTP {join_host_port(vip, port)}"
    if error or answer is None:
        return Check(label, "cluster", False, error or "no answer")
    who = node_in_page(answer, nodes)
    return Check(label, "cluster", who is not None,
                 f"answered by {who}" if who else f"answer names no node: {answer[:60]!r}")


# ---------------------------------------------------------------- HTTP_GET digests
@dataclass(frozen=True)
class DigestTarget:
    """One URL keepalived's HTTP_GET fetches from a real server, and what the inventory expects of it."""
    address: str
    port: int
    path: str
    timeout: int                   # HTTP_GET.connect_timeout: genhash -t
    digest: str | None             # HTTP_GET.digest (None: --path given, or no digest in the inventory)
    status_code: int | None        # HTTP_GET.status_code (None: keepalived accepts any 2xx)
    node: str | None               # the inventory node that is this real server, if any

    @property
    def key(self) -> tuple[str, int, str]:
        return self.address, self.port, self.path

    @property
    def genhash(self) -> tuple[str, int, str, int]:
        return self.address, self.port, self.path, self.timeout

    @property
    def name(self) -> str:
        return f"HTTP_GET digest {self.address}:{self.port}{self.path}"

    def accepts(self, status: int | None) -> bool:
        """keepalived's HTTP_GET: the status_code it names, else any 2xx (genhash without -v: unknown)."""
        if status is None:
            return True
        return status == self.status_code if self.status_code else 200 <= status <= 299


def digest_targets(inv: Inventory, address: str | None = None, path: str | None = None) -> list[DigestTarget]:
    """Every real server's HTTP_GET URL that carries a digest (verify checks them); with `address`,
    that real server's URL(s) whatever its check (inv digest), at `path` if given. Ports are what
    keepalived connects to: connect_port, else the real server's port, else the virtual server's."""
    out: dict[tuple[str, int, str], DigestTarget] = {}
    for vs in inv.virtual_servers:
        for rs in vs.real_servers:
            # a node's address of the service's family; `address` may name the node by its primary one
            addr, http = inv.real_server_address(rs, vs), rs.HTTP_GET
            named = address in (addr, inv.real_server_address(rs))
            if (address is None and (http is None or http.digest is None)) or (address is not None and not named):
                continue
            check = rs.HTTP_GET or rs.TCP_CHECK
            port = (check.connect_port if check and check.connect_port else None) or rs.port or vs.port
            p = path or (http.path if http else "/")
            same = http is not None and http.path == p
            t = DigestTarget(addr, port, p, http.connect_timeout if http else 3, http.digest if same else None,
                             http.status_code if same else None, rs.node)
            out.setdefault(t.key, t)
    return list(out.values())


def digest_checks(targets: list[DigestTarget], obs: dict[str, NodeState]) -> list[Check]:
    """Pure: each real server's live page digest (keepalived's genhash, run on every director
    observed) against the inventory's HTTP_GET.digest. A differing digest is red and names both:
    keepalived's HTTP_GET would take that real server out of the pool."""
    out = []
    for t in targets:
        seen = {n: s.digests[t.key] for n, s in obs.items() if s.reachable and t.key in s.digests}
        if not seen:
            continue
        where = t.node or t.address
        got = {n: g for n, g in seen.items() if g.ok}
        failed = {n: g.error for n, g in seen.items() if not g.ok}
        if not got:
            first = next(iter(failed.items()))
            out.append(Check(t.name, where, False, f"genhash from {', '.join(failed)} got no page: {first[1]} "
                             f"— is the web server on {where} up?"))
            continue
        digests = {g.digest for g in got.values()}
        bad_status = {n: g for n, g in got.items() if not t.accepts(g.status)}
        problems = []
        if digests != {t.digest}:
            live = "; ".join(f"{d} (genhash from {', '.join(n for n, g in got.items() if g.digest == d)})"
                             for d in sorted(digests))
            problems.append(f"live digest {live} differs from the inventory's HTTP_GET.digest {t.digest} — the page "
                            f"changed: restore it, or put the new digest in the inventory "
                            f"(`inv digest --server {where}`)")
        if bad_status:
            n, g = next(iter(bad_status.items()))
            want = t.status_code or "2xx"
            problems.append(f"HTTP {g.status} {g.reason} from {n} (HTTP_GET wants {want})".replace("  ", " "))
        if failed:
            problems.append(f"genhash from {', '.join(failed)}: {next(iter(failed.values()))}")
        out.append(Check(t.name, where, not problems, "; ".join(problems)
                         or f"digest {t.digest} as the inventory says (genhash from {', '.join(got)})"))
    return out
