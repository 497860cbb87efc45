"""Waiting for VRRP: between the nodes of a rolling deploy, after a deploy, after a planned failover.

Each poll reads one fact (the nodes' addresses) through fabfile.infra.observe: one round trip per node.
"""
from __future__ import annotations

import time

from fabfile.infra import facts as F
from fabfile.infra import remote
from fabfile.core.checks import vip_holders
from fabfile.model.context import Env
from fabfile.errors import LbtkError
from fabfile.infra.observe import observe
from fabfile.core.vrrp import expected_holders, keepers, master_down_interval, nopreempt_vips, plan


def settle_timeout(env: Env) -> float:
    """Generous: a fresh MASTER starts as BACKUP and waits master_down_interval first."""
    worst = max((master_down_interval(p.source.advert_int, min(p.priorities.values()), p.source.vrrp_version)
                 for p in plan(env.inv)), default=0)     # an LVS-only inventory: nothing settles
    return 3 * worst + 5


def holders(env: Env, conns) -> dict[str, list[str]]:
    """{VIP: nodes holding it} now."""
    return vip_holders(env.inv, observe(conns, [F.ADDRS]))


def wait_until(env: Env, conns, predicate, timeout: float, interval: float = 0.25):
    """Poll VIP holders until predicate(holders) is true; returns (holders, seconds, ok)."""
    t0 = time.monotonic()
    while True:
        h = holders(env, conns)
        if predicate(h):
            return h, time.monotonic() - t0, True
        if time.monotonic() - t0 > timeout:
            return h, time.monotonic() - t0, False
        time.sleep(interval)


def expected_now(env: Env) -> dict[str, str]:
    """{VIP: the node VRRP should give it} once settled: the plan's owner, except that a nopreempt
    VIP may stay wherever it is, and so may one whose top priority is shared (equal_priorities: a
    BACKUP does not preempt an equal priority): any single holder will do ("")."""
    held = nopreempt_vips(env.inv) | {v for v, k in keepers(env.inv).items() if len(k) > 1}
    return {v: ("" if v in held else o) for v, o in expected_holders(env.inv).items()}


def wait_for_vips(env: Env, exclude: set[str] | None = None) -> tuple[bool, str]:
    """After a deploy: every VIP on the node the VRRP plan expects (not merely on one node).
    Returns (settled, one line saying where each VIP is). `exclude`: nodes known unreachable."""
    exclude = exclude or set()
    want = {v: ("" if o in exclude else o) for v, o in expected_now(env).items()}
    with remote.nodes(env, [n for n in env.inv.nodes if n.name not in exclude]) as group:
        h, secs, ok = wait_until(env, group, lambda h: all(
            (h.get(v) == [o]) if o else len(h.get(v, [])) == 1 for v, o in want.items()),
            timeout=settle_timeout(env))
    where = ", ".join(f"{vip} on {'+'.join(n) or 'no node'}" for vip, n in h.items())
    if ok:
        return True, f"VRRP settled in {secs:.1f}s: {where}"
    wrong = [f"{v} (want {o})" for v, o in want.items() if o and h.get(v) != [o]]
    if all(len(n) == 1 for n in h.values()):   # settled, but not where the plan says: say why it may be
        return True, (f"VRRP settled: {where}, but not as planned: {', '.join(wrong)} — a failing "
                      "track_script or a node that is down changes priorities (`inv logs`)")
    return False, f"VRRP not settled after {secs:.0f}s: {where}" + (f"; expected {', '.join(wrong)}" if wrong else "")


def settle_between(env: Env, conns, held_before: set[str] | None = None) -> None:
    """Between nodes of a rolling deploy: no VIP on two nodes, and every VIP that was up before
    is up on exactly one node (a VIP the deploy adds appears when its MASTER is done)."""
    must = held_before if held_before is not None else set(expected_holders(env.inv))
    h, secs, ok = wait_until(
        env, conns, lambda h: all(len(v) <= 1 for v in h.values()) and all(len(h.get(v, [])) == 1 for v in must),
        timeout=settle_timeout(env))
    if not ok:
        raise LbtkError("VRRP did not settle between nodes: " + ", ".join(
            f"{v} on {'+'.join(n) or 'no node'}" for v, n in h.items()) + " — stopped the rolling deploy")


def finish_moves(env: Env, conns, done_at: dict[str, float], intent=None) -> list[str]:
    """The planned failover(s): wait until each moved VIP is on its new owner alone; returns one
    line per move saying how long after the new owner took its config (preempt: master_down + skew).
    `intent` (fabfile.core.plan.VipIntent): where the VIPs go, when not the inventory's plan (a
    rollback's restored confs); only the VIPs the inventory names are watched."""
    want = expected_now(env) if intent is None else {
        v: ("" if v in intent.nopreempt or v in intent.ties else o) for v, o in intent.owners.items()
        if v in expected_holders(env.inv)}
    owners = {v: o for v, o in want.items() if o}
    h, _, ok = wait_until(env, conns, lambda h: all(h.get(v) == [o] for v, o in owners.items()),
                          timeout=settle_timeout(env))
    now = time.monotonic()
    if not ok:
        raise LbtkError("planned failover did not complete: " + ", ".join(
            f"{v} on {'+'.join(n) or 'no node'} (want {owners[v]})" for v, n in h.items() if v in owners))
    return [f"planned failover done: VIP {vip} on {owner} {now - done_at[owner]:.1f}s after its new config"
            for vip, owner in owners.items() if h.get(vip) == [owner] and owner in done_at]
