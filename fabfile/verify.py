"""Observe every node in one round trip (a Fabric ThreadingGroup), parse, check, and GET
through each VIP from this machine. The pure comparisons live in fabfile.checks.
"""
from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass

from . import remote, sync
from .checks import Check, Observed, http_check, node_checks, vip_checks, vip_holders
from .model import Inventory
from .parsers import ip_addr, ipvsadm, sysctl

MARK = "@@lbtk"
UNITS = ("keepalived", "nginx", "lbtk-vip-lo", "lbtk-fwmark")

# identical on every node, so one Group run covers the cluster
OBSERVE = f"""
echo '{MARK} ip'; ip -j addr
echo '{MARK} sysctl'; sysctl -a -r '^net\\.ipv4\\.(conf\\..*\\.(arp_ignore|arp_announce|rp_filter)|ip_forward|vs\\.(conntrack|backup_only|expire_nodest_conn))$' 2>/dev/null
echo '{MARK} units'; for u in {' '.join(UNITS)}; do echo "$u $(systemctl is-active $u 2>/dev/null)"; done
echo '{MARK} ipvs'; if [ -e /proc/net/ip_vs ]; then ipvsadm -L -n; else echo NO-IPVS; fi
echo '{MARK} daemon'; if [ -e /proc/net/ip_vs ]; then ipvsadm -L --daemon; fi
true
"""


@dataclass
class Report:
    checks: list[Check]
    vip_holders: dict[str, list[str]]
    observed: dict[str, Observed]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_json(self) -> dict:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks],
                "vip_holders": self.vip_holders}


def sections(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(MARK + " ")[1:]:
        head, _, body = part.partition("\n")
        out[head.strip()] = body
    return out


def parse_observation(text: str) -> Observed:
    s = sections(text)
    o = Observed()
    for iface in ip_addr.parse_ip_addr(s.get("ip", "[]")):
        for a in iface.addresses:
            (o.vips_on_lo if iface.name == "lo" else o.vips_on_iface).add(a.local)
    o.sysctl = sysctl.parse_sysctl(s.get("sysctl", "")).values
    o.active = {ln.split()[0]: (ln.split()[1] if len(ln.split()) > 1 else "unknown")
                for ln in s.get("units", "").splitlines() if ln.strip()}
    ipvs_text = s.get("ipvs", "")
    if ipvs_text.strip() != "NO-IPVS":
        o.ipvs = ipvsadm.parse_list(ipvs_text)
        o.sync_daemons = ipvsadm.parse_daemons(s.get("daemon", ""))
    return o


def observe(inv: Inventory, conns) -> dict[str, Observed]:
    results = remote.group_run(conns, OBSERVE, timeout=30)
    out = {}
    for n in inv.nodes:
        r = results.get(n.name)
        if isinstance(r, Exception) or r is None:
            out[n.name] = Observed(reachable=False, error=str(r))
        else:
            out[n.name] = parse_observation(r.stdout)
    return out


def holders_only(inv: Inventory, conns) -> dict[str, list[str]]:
    """A cheap look at who holds each VIP (used while waiting and by the failover drill)."""
    return vip_holders(inv, observe(inv, conns))


def http_get(vip: str, port: int, timeout: float = 2.0) -> tuple[str | None, str | None]:
    try:
        with urllib.request.urlopen(f"http://{vip}:{port}/", timeout=timeout) as r:
            return r.read(4096).decode(errors="replace"), None
    except Exception as e:  # noqa: BLE001 - any failure is the check's detail
        return None, f"GET http://{vip}:{port}/ failed: {getattr(e, 'reason', e)}"


def verify(inv: Inventory, conns, http: bool = True) -> Report:
    obs = observe(inv, conns)
    holders = vip_holders(inv, obs)
    checks = vip_checks(inv, obs)
    inst = sync.sync_instance(inv) if inv.sync_daemon else None
    for n in inv.nodes:
        is_master = bool(inst) and any(n.name in holders.get(a, []) for a in inst.addresses)
        checks += node_checks(inv, n.name, obs[n.name], is_master=is_master)
    if http:
        port = inv.nginx.port
        names = [n.name for n in inv.nodes]
        for vip in holders:
            body, err = http_get(vip, port)
            checks.append(http_check(vip, port, body, err, names))
    return Report(checks, holders, obs)


def wait_until(inv: Inventory, conns, predicate, timeout: float, interval: float = 0.25):
    """Poll VIP holders until predicate(holders) is true; returns (holders, seconds, ok)."""
    t0 = time.monotonic()
    while True:
        h = holders_only(inv, conns)
        if predicate(h):
            return h, time.monotonic() - t0, True
        if time.monotonic() - t0 > timeout:
            return h, time.monotonic() - t0, False
        time.sleep(interval)
