"""`inv status`'s core: every node observed once (fabfile.infra.facts.VERIFY and the deploy lock, one
round trip each), summarized against the inventory as the cluster runs it (drains applied): who
holds each VIP, the problems, the runtime record and any deploy lock. No HTTP probe (that is
verify). Drawn by fabfile/views/status.py."""
from __future__ import annotations

from dataclasses import dataclass

from fabfile.core import runtime
from fabfile.core.checks import Check, CheckKind, node_checks, vip_checks, vip_holders
from fabfile.infra import facts as F
from fabfile.infra.facts import NodeState
from fabfile.infra.observe import observe_nodes
from fabfile.model.context import Env
from fabfile.model.schema import Inventory
from fabfile.parsers.lbtk_state import LockHolder, RuntimeRecord


@dataclass
class Status:
    inv: Inventory                          # as the cluster runs it (drains applied)
    observed: dict[str, NodeState]
    holders: dict[str, list[str]]           # VIP -> nodes holding it
    problems: list[Check]                   # the checks that failed
    runtime: RuntimeRecord                  # the cluster's newest runtime record
    locks: dict[str, LockHolder]            # node -> who holds its deploy lock
    whole: bool = True                      # every node observed (not --node): the VIPs and drains are the cluster's

    @property
    def ok(self) -> bool:
        return not self.problems


def status(env: Env, nodes=None) -> Status:
    """`nodes`: only those (default all): `inv status --node N`, the proof that lbtk reaches one node
    (SSH as the inventory says, through its bastion, host key checked, sudo)."""
    return summarize(env, observe_nodes(env, nodes, (*F.VERIFY, F.LOCK)))


def summarize(env: Env, obs: dict[str, NodeState]) -> Status:
    """Pure: the observed states -> the Status (the sync daemon's check is sync-status's, not here).
    Part of the cluster observed (--node): its nodes' checks only, a VIP's holders need every node."""
    rec = runtime.newest(obs)
    inv = runtime.effective(env, rec).inv
    iso = frozenset(rec.isolated)
    whole = set(obs) >= {n.name for n in inv.nodes}
    checks = ((vip_checks(inv, obs, iso) if whole else [])
              + [ch for n in obs for ch in node_checks(inv, n, obs[n], isolated=iso)
                 if ch.kind is not CheckKind.SYNC_DAEMON])
    return Status(inv, obs, vip_holders(inv, obs), [ch for ch in checks if not ch.ok], rec,
                  {n: s.lock for n, s in obs.items() if s.reachable and s.lock is not None}, whole)
