"""`inv verify`'s core: observe every node (fabfile.facts.VERIFY, one round trip each), check it
against the inventory (fabfile.checks, pure), and GET through each VIP from this machine.
Tables are drawn by fabfile/views/verify.py.
"""
from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from . import facts as F
from . import sync
from .checks import Check, http_check, node_checks, vip_checks, vip_holders
from .facts import NodeState
from .model import Inventory
from .observe import observe


@dataclass
class Report:
    checks: list[Check]
    vip_holders: dict[str, list[str]]
    observed: dict[str, NodeState]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_json(self) -> dict:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks],
                "vip_holders": self.vip_holders}


def http_get(vip: str, port: int, timeout: float = 2.0) -> tuple[str | None, str | None]:
    host = f"[{vip}]" if ":" in vip else vip
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=timeout) as r:
            return r.read(4096).decode(errors="replace"), None
    except Exception as e:  # noqa: BLE001 - any failure is the check's detail
        return None, f"GET http://{host}:{port}/ failed: {getattr(e, 'reason', e)}"


def checks_of(inv: Inventory, obs: dict[str, NodeState], holders: dict[str, list[str]]) -> list[Check]:
    """Pure: the cluster's and every node's checks from the observed states."""
    out = vip_checks(inv, obs)
    inst = sync.sync_instance(inv) if inv.sync_daemon else None
    for n in inv.nodes:
        is_master = bool(inst) and any(n.name in holders.get(a, []) for a in inst.addresses)
        out += node_checks(inv, n.name, obs[n.name], is_master=is_master)
    return out


def verify(inv: Inventory, conns, http: bool = True) -> Report:
    obs = observe(conns, F.VERIFY)
    holders = vip_holders(inv, obs)
    checks = checks_of(inv, obs, holders)
    if http:
        port = inv.nginx.port
        names = [n.name for n in inv.nodes]
        for vip in holders:
            body, err = http_get(vip, port)
            checks.append(http_check(vip, port, body, err, names))
    return Report(checks, holders, obs)
