"""Causes behind what verify sees. Pure: inventory, observed NodeStates, desired configs in; one
sentence per finding out.

- A split brain names its cause where the evidence shows it: a node whose live keepalived.conf
  disagrees with the inventory on what adverts carry (auth_pass, virtual_router_id, advert_int,
  version), keepalived's own authentication-failure counters, or adverts that do not arrive.
- A VIP that moved more than once in the last minutes (keepalived's journal) is flapping.
"""
from __future__ import annotations

from dataclasses import dataclass

from fabfile.infra.facts import RECENT_S, NodeState
from fabfile.model.schema import Inventory
from fabfile.core.plan import wire_signature
from fabfile.core.render.keepalived import CONF
from fabfile.core.vrrp import PlannedInstance, plan

FLAPPING_MOVES = 2    # a VIP whose MASTER changed this often within RECENT_S is flapping

WIRE_WORDS = {"auth_pass": "the VRRP secret (auth_pass)", "auth_type": "auth_type",
              "virtual_router_id": "virtual_router_id", "advert_int": "advert_int", "version": "vrrp_version",
              "vrrp_instance": "vrrp_instance name", "virtual_ipaddress": "first VIP"}


@dataclass(frozen=True)
class Finding:
    subject: str        # the VIP or node it is about
    text: str
    severity: str       # error | warning

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def instance_of(inv: Inventory, vip: str) -> PlannedInstance | None:
    return next((p for p in plan(inv) if vip in p.addresses), None)


def wire_differences(live_conf: str | None, desired_conf: str) -> list[str]:
    """The keywords in which a node's live keepalived.conf says differently from the inventory what
    its adverts carry (never the values: a secret stays unprinted)."""
    if live_conf is None:
        return ["keepalived.conf"]
    live, want = wire_signature(live_conf), wire_signature(desired_conf)
    if live == want:
        return []
    return sorted({ln.split()[0] for ln in set(live) ^ set(want) if ln.split()}) or ["the advert's fields"]


def split_brain_cause(inv: Inventory, vip: str, holders: list[str], states: dict[str, NodeState],
                      desired: dict[str, str]) -> str:
    """One sentence: why more than one node holds `vip` (or what keepalived's counters show)."""
    inst = instance_of(inv, vip)
    causes, auth_nodes = [], []
    for n in inv.nodes:
        s = states.get(n.name)
        if s is None or not s.reachable or n.name not in desired or CONF not in s.files:
            continue
        live = s.files.get(CONF)
        diff = wire_differences(live.content.decode(errors="replace") if live else None, desired[n.name])
        if any(d.startswith("auth_") for d in diff):
            auth_nodes.append(n.name)
        if diff:
            words = ", ".join(WIRE_WORDS.get(d, d) for d in diff)
            causes.append(f"{n.name}'s live keepalived.conf differs from the inventory in {words}")
    views = {n: next((v for v in (s.vrrp or []) if inst and v.instance == inst.name), None)
             for n, s in states.items()}
    # keepalived's counters run from its start: they support a cause, they do not make one alone
    # unless every node counts failures (a secret changed everywhere but not in the inventory)
    auth = {n: v.auth_errors for n, v in views.items() if v is not None and v.auth_errors}
    if auth_nodes or (auth and len(auth) == len([v for v in views.values() if v is not None])):
        who = (f"{' and '.join(auth_nodes)}'s adverts fail authentication" if auth_nodes
               else "adverts fail authentication")
        counted = (" (keepalived counts auth failures: " + ", ".join(f"{n} {c}" for n, c in sorted(auth.items()))
                   + ")") if auth else ""
        causes.insert(0, who + counted)
    if not causes:
        quiet = [n for n in holders if views.get(n) is not None and views[n].advert_rcvd == 0]
        if quiet:
            causes.append(f"adverts are not arriving: {', '.join(quiet)} received none (firewall, multicast, "
                          "unicast peers or interface)")
        vrids = {v.vrid for v in views.values() if v is not None}
        if len(vrids) > 1:
            causes.append("the nodes use different virtual_router_ids: " + ", ".join(
                f"{n} {v.vrid}" for n, v in sorted(views.items()) if v is not None))
    return "; ".join(causes) or "no cause visible in the configs or keepalived's counters (check `inv logs`)"


def flapping(inv: Inventory, states: dict[str, NodeState], now: float | None = None,
             window_s: float = RECENT_S) -> list[Finding]:
    """A VIP whose master changed more than once in the window (the journals' MASTER entries; the
    STATE_CHANGES fact already reads only the last RECENT_S seconds by each node's clock, so `now`
    is only needed for entries gathered otherwise)."""
    out = []
    for p in plan(inv):
        entries = sorted((c.at, n) for n, s in states.items() for c in s.changes
                         if c.instance == p.name and c.state == "MASTER" and (now is None or c.at >= now - window_s))
        path = [entries[0][1]] if entries else []
        for _, n in entries[1:]:
            if n != path[-1]:
                path.append(n)
        moves = len(path) - 1
        if moves >= FLAPPING_MOVES:
            out.append(Finding(", ".join(p.addresses), f"VIP moved {moves} times in the last "
                               f"{window_s / 60:.0f} min ({' -> '.join(path)}): flapping, unless a drill or "
                               "a deploy did it", "warning"))
    return out
