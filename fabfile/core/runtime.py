"""Runtime overrides kept ON THE NODES, so every operator's clone sees them: drained real servers.

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
    return json.dumps({"serial": rec.serial, "drained": sorted(rec.drained), "by": rec.by, "at": rec.at},
                      sort_keys=True) + "\n"


def drained(rec: RuntimeRecord, address: str, drain: bool, by: str) -> RuntimeRecord:
    """The next record with `address` drained (or back in service); the same record when nothing changes."""
    now = set(rec.drained)
    new = now | {address} if drain else now - {address}
    if new == now:
        return rec
    return RuntimeRecord(rec.serial + 1, tuple(sorted(new)), by,
                         datetime.now(timezone.utc).isoformat(timespec="seconds"))


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
