"""`inv rollback`: put back the files a deploy replaced, then reload what they feed.

Each deploy keeps the files it replaced in /var/lib/lbtk/backup/STAMP/ with a `.paths` list
(STAMP is also the run's id in `inv history`). Rollback restores the newest set (files that did
not exist then are removed) — or, with `--to ID`, every set from the newest back to that run's,
newest first, so the node ends on the files it had before run ID — reloads through the same
handler rules as a deploy, checks the daemons, and drops the sets it used, so a second rollback
goes one deploy further back. Backups first, the VIP holder last; under the deploy lock; the
rollback is recorded in each node's history.
"""
from __future__ import annotations

import shlex

from fabfile.infra import facts as F
from fabfile.core import history
from fabfile.infra import remote, runinfo
from fabfile.ops import lock as runlock, settle
from fabfile.ops.apply import KEEP_BACKUPS, ApplyError, apply_node, restore
from fabfile.model.context import Env, select_nodes
from fabfile.errors import LbtkError
from fabfile.infra.facts import BACKUP_DIR
from fabfile.infra.observe import observe_except, observe_node
from fabfile.ops.deploy import NodeRun, deploy_facts, rolling_batches
from fabfile.core.phase import RUNTIME_PHASE
from fabfile.core.plan import NodePlan, service_actions
from fabfile.core.render import ASSUMED, NodeFile, render_node


def sets_to_restore(backups: list[tuple[str, list[str]]], to: str | None) -> list[tuple[str, list[str]]]:
    """Pure: the backup sets a rollback restores on one node, newest first: the newest one, or with
    `to` every set from the newest back to run `to` (a node the run did not touch may still have
    newer sets, and none of its own)."""
    if to is None:
        return backups[:1]
    return [b for b in backups if b[0] >= to]


def rollback(env: Env, node: str | None = None, say=lambda s: None, skip_unreachable: bool = False,
             to: str | None = None, break_lock: bool = False) -> None:
    nodes = select_nodes(env.inv, node)
    info = runinfo.current(env.name, env.path)
    with remote.nodes(env, nodes) as group, runlock.Lock(group, info, break_lock) as lock:
        for n, holder in lock.broken:
            say(f"{n}: broke the stale deploy lock left by {runlock.who(holder)}")
        _rollback(env, group, lock.down, say, skip_unreachable, to, info, len(nodes) > 1)


def _rollback(env: Env, group: remote.NodeGroup, lock_down: dict[str, str], say, skip_unreachable: bool, to: str | None,
              info: runinfo.RunInfo, several: bool) -> None:
    per_node = deploy_facts(env, group.names)
    states = observe_except(group, (*F.DEPLOY, F.BACKUPS), per_node, lock_down)
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
    runs = [NodeRun(n, states[n], NodePlan(n)) for n in states]
    batches, _ = rolling_batches(env, runs)
    for batch in batches:
        for name in batch:
            if not sets[name]:
                say(f"{name}: nothing to roll back (no deploy touched it since {to})")
                continue
            c = group[name]
            phase_of = {f.path: f.phase for f in render_node(env.inv, name, env.secrets, ASSUMED)}
            phase_of[F.RUNTIME_PATH] = RUNTIME_PHASE
            for stamp, paths in sets[name]:            # newest first: the oldest set's files win
                restore(c, paths, stamp)
            paths = list(dict.fromkeys(p for _, ps in sets[name] for p in ps))
            now = observe_node(c, (*F.DEPLOY, *per_node[name]))
            restored = [NodeFile(p, (now.files[p].content.decode() if now.files.get(p) else None),
                                 phase_of.get(p, RUNTIME_PHASE)) for p in paths]
            plan = NodePlan(name)
            for phase in dict.fromkeys(f.phase for f in restored):
                mine = [f for f in restored if f.phase == phase]
                plan.add_actions(service_actions(phase, {f.path for f in mine}, now, mine))
            oldest = sets[name][-1][0]
            try:
                done = apply_node(c, plan, oldest)
            except ApplyError as e:
                raise LbtkError(f"{e} (rollback to {oldest})") from None
            drop = " ".join(shlex.quote(f"{BACKUP_DIR}/{s}") for s, _ in sets[name])
            remote.run(c, f"rm -rf {drop}; " + history.append_command(
                info.entry(paths, [a.short() for a in done.actions])), check=False)
            say(f"{name}: rolled back to the files before deploy {oldest} "
                f"({len(paths)} file(s); {', '.join(a.short() for a in done.actions) or 'no reload needed'})")
        if len(batch) == 1 and several:
            settle.settle_between(env, group.only(states), None)
