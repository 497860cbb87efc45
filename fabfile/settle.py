"""After a deploy: wait until VRRP has settled (every VIP on exactly one node)."""
from __future__ import annotations

from . import output, remote
from .tasks.common import Env
from .verify import wait_until
from .vrrp import master_down_interval, plan


def settle_timeout(env: Env) -> float:
    """Generous: a fresh MASTER starts as BACKUP and waits master_down_interval first."""
    worst = max(master_down_interval(p.source.advert_int, min(p.priorities.values()),
                                     p.source.vrrp_version) for p in plan(env.inv))
    return 3 * worst + 5


def wait_for_vips(env: Env) -> bool:
    conns = [remote.connect(env.inv, n) for n in env.inv.nodes]
    try:
        holders, secs, ok = wait_until(env.inv, conns, lambda h: all(len(v) == 1 for v in h.values()),
                                       timeout=settle_timeout(env))
    finally:
        remote.close(conns)
    where = ", ".join(f"{vip} on {'+'.join(n) or 'no node'}" for vip, n in holders.items())
    output.say(f"VRRP settled in {secs:.1f}s: {where}" if ok else f"VRRP not settled after {secs:.0f}s: {where}")
    return ok
