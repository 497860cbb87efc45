"""Runtime overrides kept ON THE NODES, so every operator's clone sees them: drained real servers
and isolated nodes (`inv isolate`: a node out of VRRP, its keepalived kept stopped by every deploy).

`inv drain` writes a new record (serial + 1) to every director as part of its keepalived deploy;
every later deploy, from any clone, reads the records back with its facts, takes the highest
serial, applies it to the inventory (drained servers at weight 0) and writes it again where a node
holds an older one. `inv undrain` writes the next serial without the server. Pure apart from what
the facts bring in; the file is a managed file of the keepalived phase, so it is backed up,
rolled back and shown in the deploy summary like keepalived.conf.
"""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

from fabfile.core.actions import DAEMON_VERBS, Action
from fabfile.model.context import Env
from fabfile.infra.facts import NodeState
from fabfile.model.schema import Inventory
from fabfile.parsers.lbtk_state import RuntimeRecord

NONE = RuntimeRecord()


def newest(states: dict[str, NodeState]) -> RuntimeRecord:
    """The cluster's current record: the highest serial any reachable node holds."""
    recs = [s.runtime for s in states.values() if s.reachable and s.runtime is not None]
    return max(recs, key=lambda r: r.serial, default=NONE)


def content(rec: RuntimeRecord) -> str | None:
    """runtime.json as the nodes keep it; None (no file) until something was ever overridden."""
    if rec.serial == 0:
        return None
    data = {"serial": rec.serial, "drained": sorted(rec.drained), "by": rec.by, "at": rec.at}
    if rec.isolated:      # only while a node is isolated: a cluster that never was keeps its bytes
        data["isolated"] = sorted(rec.isolated)
    return json.dumps(data, sort_keys=True) + "\n"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _toggled(rec: RuntimeRecord, field: str, item: str, add: bool, by: str) -> RuntimeRecord:
    """The next record with `item` added to (or taken from) the set `field`; the same record when
    nothing changes. Drains and isolations are both such a set, under one serial."""
    now = set(getattr(rec, field))
    new = now | {item} if add else now - {item}
    if new == now:
        return rec
    return replace(rec, serial=rec.serial + 1, by=by, at=_now(), **{field: tuple(sorted(new))})


def drained(rec: RuntimeRecord, address: str, drain: bool, by: str) -> RuntimeRecord:
    """The next record with `address` drained (or back in service); the same record when nothing changes."""
    return _toggled(rec, "drained", address, drain, by)


def isolated(rec: RuntimeRecord, node: str, isolate: bool, by: str) -> RuntimeRecord:
    """The next record with `node` isolated (or back in VRRP); the same record when nothing changes."""
    return _toggled(rec, "isolated", node, isolate, by)


def isolated_nodes(states: dict[str, NodeState]) -> frozenset[str]:
    """The nodes the cluster's newest record keeps out of VRRP."""
    return frozenset(newest(states).isolated)


def isolate_refusal(inv: Inventory, node: str, rec: RuntimeRecord, states: dict[str, NodeState]) -> str | None:
    """Pure: why `node` may not be isolated now (None: it may). Refused: a node that is not one of
    the inventory's, and the last node that could hold a VIP (every other VRRP node isolated,
    unreachable or without a running keepalived): isolating it would take the VIPs down."""
    from fabfile.core.vrrp import plan
    names = [n.name for n in inv.nodes]
    if node not in names:
        return f"--node {node}: not a node of the inventory (nodes: {', '.join(names)})"
    vrrp_nodes = sorted({n for p in plan(inv) for n in p.priorities})
    if node not in vrrp_nodes:
        return f"--node {node}: runs no VRRP instance of the inventory — nothing to isolate it from"
    why = {}
    for n in vrrp_nodes:
        if n == node:
            continue
        s = states.get(n)
        if n in rec.isolated:
            why[n] = "isolated"
        elif s is None or not s.reachable:
            why[n] = "unreachable"
        elif s.active.get("keepalived") != "active":
            why[n] = f"keepalived {s.active.get('keepalived', 'unknown')}"
    if len(why) == len(vrrp_nodes) - 1:
        others = "; ".join(f"{n}: {w}" for n, w in why.items()) or "it is the only VRRP node"
        return (f"{node} is the last node that could hold a VIP ({others}) — isolating it would take every "
                "VIP down; bring another node back first (`inv isolate --undo`, `inv deploy`); nothing was changed")
    return None


def keep_isolated(actions: list[Action], facts: NodeState, stop: bool) -> list[Action]:
    """Pure: an isolated node's actions — none that starts, restarts or reloads keepalived (its files
    still ship), and with `stop` (the keepalived phase) keepalived stopped and disabled when it runs
    or would start at boot (a reboot must not bring it back into VRRP)."""
    out = [a for a in actions if not (a.unit == "keepalived" and a.verb in DAEMON_VERBS)]
    running = facts.active.get("keepalived") == "active"
    if stop and (running or facts.enabled.get("keepalived") == "enabled"):
        out.append(Action("disable-now", "keepalived", why="isolated (`inv isolate`): out of VRRP until "
                          "`inv isolate --undo`"))
    return out


def apply(inv: Inventory, addresses) -> Inventory:
    """The inventory as the cluster runs it: drained real servers at weight 0."""
    addresses = set(addresses)
    if not addresses:
        return inv
    vss = []
    for vs in inv.virtual_servers:
        rss = [rs.model_copy(update={"weight": 0}) if inv.real_server_address(rs) in addresses else rs
               for rs in vs.real_servers]
        vss.append(vs.model_copy(update={"real_servers": rss}))
    return inv.model_copy(update={"virtual_servers": vss})


def as_run(inv: Inventory, states: dict[str, NodeState]) -> Inventory:
    """The inventory as the observed cluster runs it (verify and the tables compare against this)."""
    return apply(inv, newest(states).drained)


def effective(env: Env, rec: RuntimeRecord) -> Env:
    """The env a deploy plans with: the record applied, and kept (env.runtime) to be written back."""
    return replace(env, inv=apply(env.inv, rec.drained), runtime=rec)


def of(env: Env, states: dict[str, NodeState]) -> Env:
    """effective() with the newest record the observed nodes hold."""
    return effective(env, newest(states))
