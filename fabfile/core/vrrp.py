"""The VRRP plan: which instances run, with which priority and initial state on which node.

One place for this fact: the keepalived renderer, the VIP checks and the failover drill all
read it. Multi-master (`multi_master: true`) expands each instance into one per node, node i
owning VIP i, with priorities rotated so every node is MASTER of exactly one VIP.
"""
from __future__ import annotations

from dataclasses import dataclass

from fabfile.model.instance_options import declared_priorities, election_winner, tied_top
from fabfile.model.schema import Inventory, VrrpInstance
from fabfile.model.tracking import own_weight


@dataclass(frozen=True)
class PlannedInstance:
    name: str
    source: VrrpInstance            # the inventory entry it came from
    virtual_router_id: int
    vips: tuple[str, ...]           # as written in the inventory (may carry /prefix dev ...)
    priorities: dict[str, int]      # node name -> priority
    owner: str                      # node expected to hold the VIPs (VRRP's election: priority, then address)
    states: dict[str, str]          # node name -> initial state (MASTER / BACKUP)

    @property
    def keepers(self) -> frozenset[str]:
        """The nodes that keep the VIPs once they hold them: those sharing the top priority (an
        equal-priority BACKUP never preempts, RFC 3768 6.4.2); the owner alone without a tie."""
        return tied_top(self.priorities)

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(v.split("/")[0].split()[0] for v in self.vips)


def plan(inv: Inventory) -> list[PlannedInstance]:
    out = []
    by_prio = sorted(inv.nodes, key=lambda n: -n.priority)
    ladder = [n.priority for n in by_prio]
    for vi in inv.vrrp_instances:
        if inv.multi_master:
            names = [n.name for n in inv.nodes]
            for k, owner in enumerate(names):
                rotated = names[k:] + names[:k]
                out.append(PlannedInstance(
                    name=f"{vi.name}_{owner}", source=vi, virtual_router_id=vi.virtual_router_id + k,
                    vips=(vi.virtual_ipaddress[k],),
                    priorities={n: ladder[r] for r, n in enumerate(rotated)}, owner=owner,
                    states=_states(inv, vi, owner, declared=False)))
        else:
            prios = declared_priorities(inv, vi)
            owner = vi.owner or election_winner(inv, vi, prios)
            if vi.owner:  # the owner gets the top priority, the rest keep their order
                rest = [n.name for n in by_prio if n.name != owner]
                prios = {owner: ladder[0], **{n: ladder[r + 1] for r, n in enumerate(rest)}}
            out.append(PlannedInstance(name=vi.name, source=vi, virtual_router_id=vi.virtual_router_id,
                                       vips=tuple(vi.virtual_ipaddress), priorities=prios, owner=owner,
                                       states=_states(inv, vi, owner, declared=vi.owner is None)))
    return out


def sync_groups(inv: Inventory) -> list[tuple[str, list[str]]]:
    """keepalived's vrrp_sync_groups as (name, [planned instance names]); multi_master expands a
    group into one per owner (VG_1_node1: VI_1_node1, VI_6_node1), as it expands instances."""
    if not inv.multi_master:
        return [(g.name, list(g.group)) for g in inv.vrrp_sync_groups]
    return [(f"{g.name}_{n.name}", [f"{m}_{n.name}" for m in g.group])
            for g in inv.vrrp_sync_groups for n in inv.nodes]


def companions(inv: Inventory, p: PlannedInstance) -> tuple[str, ...]:
    """The VIPs that move with p's: those of the other instances in p's vrrp_sync_group (a
    dual-stack service is an IPv4 and an IPv6 instance in one group, keepalived's rule being one
    family an instance)."""
    group = next((members for _, members in sync_groups(inv) if p.name in members), [])
    return tuple(a for q in plan(inv) if q.name in group and q.name != p.name for a in q.addresses)


def _states(inv: Inventory, vi: VrrpInstance, owner: str, declared: bool) -> dict[str, str]:
    """nopreempt needs BACKUP everywhere, and so does vrrp_strict (there MASTER is the priority-255
    address owner's, which lbtk never writes); otherwise the instance's declared state, else the
    node's, else owner = MASTER."""
    if vi.nopreempt or inv.global_defs.vrrp_strict:
        return {n.name: "BACKUP" for n in inv.nodes}
    own = vi.state or {}
    return {n.name: own.get(n.name) or (n.state if declared and n.state else
                                        ("MASTER" if n.name == owner else "BACKUP"))
            for n in inv.nodes}


def nopreempt_vips(inv: Inventory) -> set[str]:
    """VIPs of nopreempt instances: they stay where they are, whatever the priorities say."""
    return {a for p in plan(inv) if p.source.nopreempt for a in p.addresses}


def keepers(inv: Inventory) -> dict[str, frozenset[str]]:
    """{VIP address: the nodes that keep it once they hold it} (PlannedInstance.keepers)."""
    return {a: p.keepers for p in plan(inv) for a in p.addresses}


def expected_holders(inv: Inventory) -> dict[str, str]:
    """{VIP address: node that should hold it} when every node is healthy."""
    return {a: p.owner for p in plan(inv) for a in p.addresses}


def settled_states(inv: Inventory, node: str) -> dict[str, frozenset[str]]:
    """{instance: the states `node` settles in} once it runs VRRP with every node healthy: MASTER
    where it is the owner, BACKUP elsewhere; either where nopreempt or a shared top priority lets
    a VIP stay where it is (`inv isolate --undo` waits for this)."""
    out = {}
    for p in plan(inv):
        if node not in p.priorities:
            continue
        if p.source.nopreempt or (node in p.keepers and len(p.keepers) > 1):
            out[p.name] = frozenset({"MASTER", "BACKUP"})
        else:
            out[p.name] = frozenset({"MASTER" if p.owner == node else "BACKUP"})
    return out


def master_down_interval(advert_int: float, priority: int, version: int = 2) -> float:
    """RFC 3768/5798: 3 x advert_int + skew; skew = (256 - priority)/256 (x advert_int in v3)."""
    skew = (256 - priority) / 256 * (advert_int if version == 3 else 1)
    return 3 * advert_int + skew


def skew_time(advert_int: float, priority: int, version: int = 2) -> float:
    return (256 - priority) / 256 * (advert_int if version == 3 else 1)


PRIORITY_RANGE = (1, 254)   # keepalived clamps a tracked priority here (255 is an address owner's, fixed)


def effective_priority(base: int, offset: int) -> int:
    """The priority keepalived advertises: the configured one plus what tracked objects add, clamped."""
    return max(PRIORITY_RANGE[0], min(PRIORITY_RANGE[1], base + offset))


def tracked_weights(inv: Inventory, vi: VrrpInstance) -> list[tuple[str, int]]:
    """(what, weight) of each weighted, up-or-down tracked object of vi: an interface, a script or
    a process adds a positive weight while it is up and a negative one while it is down. A
    track_file adds its number times the weight, which no inventory predicts: left out."""
    return [(f"{field} {e.name}", w) for field in ("track_interface", "track_script", "track_process")
            for e in getattr(vi, field) if (w := own_weight(inv, field, e))]


def election_warnings(inv: Inventory) -> list[str]:
    """Where tracked weights make an election a tie (then the higher IP address wins, which few
    mean): two nodes equal with everything up (their weights clamp at 254), or one node's single
    failure landing it exactly on another node's priority."""
    out = []
    for p in plan(inv):
        weights = tracked_weights(inv, p.source)
        if not weights:
            continue
        up = sum(w for _, w in weights if w > 0)
        healthy = {n: effective_priority(b, up) for n, b in p.priorities.items()}
        names = list(healthy)
        for k, a in enumerate(names):
            for b in names[k + 1:]:
                if healthy[a] == healthy[b]:
                    out.append(f"{p.name}: {a} and {b} both run at priority {healthy[a]} with every tracked "
                               f"object up (keepalived clamps at {PRIORITY_RANGE[1]}): the higher IP address "
                               "wins the election")
        for n, base in p.priorities.items():
            for what, w in weights:
                after = effective_priority(base, up - w if w > 0 else up + w)
                for m in names:
                    if m != n and after == healthy[m]:
                        out.append(f"{p.name}: with {what} down on {n}, its priority {after} equals {m}'s: "
                                   "the higher IP address wins the election")
    return out
