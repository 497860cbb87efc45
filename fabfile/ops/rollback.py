"""`inv rollback`: put back the files a deploy replaced, then reload what they feed.

Each deploy keeps the files it replaced in /var/lib/lbtk/backup/STAMP/ with a `.paths` list
(STAMP is also the run's id in `inv history`). Rollback restores the newest set (files that did
not exist then are removed) — or, with `--to ID`, every set from the newest back to that run's,
newest first, so the node ends on the files it had before run ID — reloads through the same
handler rules as a deploy, checks the daemons, and drops the sets it used, so a second rollback
goes one deploy further back. Under the deploy lock; recorded in each node's history.

A rollback is planned and applied as a deploy is (fabfile/core/restore.py: the restored files
against the live ones; fabfile/ops/deploy.py apply_runs): the same batching rules, so a change
VRRP adverts carry (the secret, virtual_router_id, advert_int, the first VIP) goes back on every
node at once, anything else backups first and the VIP holder last; the same VIP-move prediction,
from the keepalived.conf each node ends on; the same transactional apply (staged, `keepalived -t`,
swapped, health-checked, put back on a failure). `check` (`inv rollback --check`): the same plan,
under the same lock, and nothing applied or dropped: the Outcome deploy --check gives.
"""
from __future__ import annotations

import shlex

from fabfile.infra import facts as F
from fabfile.infra import remote, runinfo
from fabfile.ops import lock as runlock
from fabfile.ops.apply import KEEP_BACKUPS
from fabfile.model.context import Env, select_nodes
from fabfile.errors import LbtkError
from fabfile.infra.facts import BACKUP_DIR, NodeState
from fabfile.infra.observe import observe_except, observe_reachable
from fabfile.ops.deploy import (NodeRun, NoProgress, Outcome, RunStatus, apply_runs, deploy_paths, planned_moves,
                                refuse_partial_wire_change, roll_plan)
from fabfile.core import restore
from fabfile.core.phase import RUNTIME_PHASE, Phase
from fabfile.core.plan import VipIntent
from fabfile.core.render import ASSUMED, NodeFile, RenderFacts, keepalived, render_node


def sets_to_restore(backups: list[tuple[str, list[str]]], to: str | None) -> list[tuple[str, list[str]]]:
    """Pure: the backup sets a rollback restores on one node, newest first: the newest one, or with
    `to` every set from the newest back to run `to` (a node the run did not touch may still have
    newer sets, and none of its own)."""
    if to is None:
        return backups[:1]
    return [b for b in backups if b[0] >= to]


def rollback(env: Env, node: str | None = None, say=lambda s: None, skip_unreachable: bool = False,
             to: str | None = None, break_lock: bool = False, progress=None,
             on_moves=lambda moves: None, check: bool = False) -> Outcome:
    """Roll back (see the module's text). `progress(runs)` and `on_moves(moves)` as for
    fabfile.ops.deploy.run_phases; a node that refused is an LbtkError once the others are done.
    `check`: the plan only (Outcome.check), nothing applied."""
    nodes = select_nodes(env.inv, node)
    info = runinfo.current(env.name, env.path)
    with remote.nodes(env, nodes) as group, runlock.Lock(group, info, break_lock) as lock:
        for n, holder in lock.broken:
            say(f"{n}: broke the stale deploy lock left by {runlock.who(holder)}")
        return _rollback(env, group, lock.down, say, skip_unreachable, to, info, progress, on_moves, check)


def rendered_files(env: Env, node: str) -> dict[str, NodeFile]:
    """The node's managed files by path (with or without IPVS), and runtime.json: each one's phase."""
    out = {f.path: f for facts in (RenderFacts(ipvs=False), ASSUMED)
           for f in render_node(env.inv, node, env.secrets, facts)}
    out[F.RUNTIME_PATH] = NodeFile(F.RUNTIME_PATH, None, RUNTIME_PHASE, mode=F.RECORD_MODE)
    return out


def plan_rollback(env: Env, states: dict[str, NodeState], sets: dict[str, list[tuple[str, list[str]]]]
                  ) -> tuple[list[NodeRun], VipIntent]:
    """Pure: each node's run (the restored files against the live ones; `states` hold both, see
    restore.restore_plan) and where the VIPs go once every node runs the keepalived.conf it ends on."""
    runs = [NodeRun(n, s, restore.restore_plan(n, sets[n], s, rendered_files(env, n))) for n, s in states.items()]
    return runs, intent_after(env, runs)


def intent_after(env: Env, runs: list[NodeRun]) -> VipIntent:
    """Where VRRP puts each VIP once the runs are in: read from the keepalived.conf each node ends
    on (the inventory that wrote the restored ones is gone); the inventory's plan where none reads."""
    confs = {}
    for r in runs:
        ch = next((c for c in r.plan.changes if c.file.path == keepalived.CONF), None)
        live = r.facts.files.get(keepalived.CONF)
        text = ch.file.content if ch else (live.content.decode(errors="replace") if live else None)
        if text:
            confs[r.node] = text
    found = VipIntent.of_confs(confs)
    return found if found.owners else VipIntent.of(env.inv)


def _rollback(env: Env, group: remote.NodeGroup, lock_down: dict[str, str], say, skip_unreachable: bool,
              to: str | None, info: runinfo.RunInfo, progress, on_moves, check: bool = False) -> Outcome:
    states = observe_except(group, (*F.DEPLOY, F.BACKUPS), None, lock_down)
    down = {n: s.error for n, s in states.items() if not s.reachable}
    if down and (not skip_unreachable or len(down) == len(states)):
        raise remote.RemoteError(next(iter(down.values())) + " — nothing was changed on any node"
                                 + ("" if skip_unreachable else " (--skip-unreachable rolls back the nodes "
                                                                "that answer)"))
    for n, why in down.items():
        say(f"{n}: UNREACHABLE, skipped (not rolled back): {why}")
    states = {n: s for n, s in states.items() if n not in down}
    sets = {n: sets_to_restore(s.backups, to) for n, s in states.items()}
    if to is not None and not any(to in (b[0] for b in s.backups) for s in states.values()):
        raise LbtkError(f"--to {to}: no node keeps that run's backup (each keeps the last {KEEP_BACKUPS} "
                        "deploys; `inv history` lists the runs) — nothing was changed")
    missing = [n for n in states if not sets[n]]
    if to is None and missing:
        raise LbtkError(f"{', '.join(missing)}: no deploy backup under {BACKUP_DIR} — nothing to roll back to; "
                        "nothing was changed")
    live = group.only(states)
    # a second look, still under the lock: the backup copies to put back, with the live files they replace
    paths = {n: list(dict.fromkeys([*deploy_paths(env, n), *restore.sources(n, sets[n]),
                                    *restore.copies(n, sets[n])])) for n in states}
    states = observe_reachable(live, F.DEPLOY, {n: [F.files(paths[n])] for n in states})
    runs, intent = plan_rollback(env, states, sets)
    if len(states) < len(env.inv.nodes):
        refuse_partial_wire_change(runs, missing=sorted({n.name for n in env.inv.nodes} - set(states)))
    phases = [p for p in Phase if any(ch.file.phase == p for r in runs for ch in r.plan.changes)]
    out = Outcome(phases, runs, planned_moves(env, runs, intent), check, skipped=down)
    on_moves(out.moves)
    if check:
        out.roll = roll_plan(env, runs, None, intent, moves=out.moves)
        return out
    try:
        apply_runs(env, live, out, say, (progress or NoProgress)(runs), None, info, intent)
    finally:
        _drop_sets(live, out.runs, sets, info, say)
    if out.error:
        raise RollbackFailed(f"{out.error} (rollback to the files before {_oldest(sets)})", out) from None
    return out


class RollbackFailed(LbtkError):
    """A node refused the rollback; `outcome` holds what every node took (rollback --json)."""

    def __init__(self, message: str, outcome: Outcome):
        super().__init__(message)
        self.outcome = outcome


def _oldest(sets: dict[str, list[tuple[str, list[str]]]]) -> str:
    return min((s[-1][0] for s in sets.values() if s), default="?")


def _drop_sets(group: remote.NodeGroup, runs: list[NodeRun], sets, info: runinfo.RunInfo, say) -> None:
    """The rollback's own backup set goes wherever it was made (a second rollback must not undo this
    one); the sets it restored go on the nodes now on them, so a second rollback goes one further back."""
    by_node = {r.node: r for r in runs}

    def drop(c):
        r = by_node[c.name]
        if r.status not in (RunStatus.CHANGED, RunStatus.UNCHANGED, RunStatus.FAILED):
            return                                  # not reached: as it was
        used = [s for s, _ in sets[r.node]] if r.status.took_it else []
        gone = " ".join(shlex.quote(f"{BACKUP_DIR}/{s}") for s in [*used, info.run])
        remote.run(c, f"rm -rf {gone}", check=False)
        if r.status.took_it:
            say(f"{r.node}: " + (f"rolled back to the files before deploy {used[-1]} ({len(r.done.files)} file(s) "
                                 f"changed; {', '.join(a.short() for a in r.done.actions) or 'no reload needed'})"
                                 if used else "nothing to roll back (no deploy touched it since --to)"))
    group.only(by_node).parallel(drop)
