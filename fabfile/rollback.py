"""`inv rollback`: put back the files the last deploy replaced, then reload what they feed.

Each deploy keeps the files it replaced in /var/lib/lbtk/backup/STAMP/ with a `.paths` list;
rollback restores the newest set (files that did not exist then are removed), reloads through
the same handler rules as a deploy, checks the daemons, and drops that set so a second
rollback goes one deploy further back. Backups first, the VIP holder last.
"""
from __future__ import annotations

import shlex

from . import facts as F
from . import remote, settle
from .apply import ApplyError, apply_node, restore
from .context import Env, select_nodes
from .errors import LbtkError
from .facts import BACKUP_DIR
from .observe import observe, observe_node
from .phases import NodeRun, deploy_facts, rolling_batches
from .plan import NodePlan, service_actions
from .render import ASSUMED, NodeFile, render_node


def rollback(env: Env, node: str | None = None, say=lambda s: None, skip_unreachable: bool = False) -> None:
    nodes = select_nodes(env.inv, node)
    conns = [remote.connect(env.inv, n) for n in nodes]
    try:
        per_node = deploy_facts(env, [c.lbtk_node for c in conns])
        states = observe(conns, (*F.DEPLOY, F.LAST_BACKUP), per_node)
        down = {n: s.error for n, s in states.items() if not s.reachable}
        if down and (not skip_unreachable or len(down) == len(states)):
            raise remote.RemoteError(next(iter(down.values())) + " — nothing was changed on any node"
                                     + ("" if skip_unreachable else " (--skip-unreachable rolls back the nodes "
                                                                    "that answer)"))
        for n, why in down.items():
            say(f"{n}: UNREACHABLE, skipped (not rolled back): {why}")
        states = {n: s for n, s in states.items() if n not in down}
        names = list(states)
        missing = [n for n, s in states.items() if s.last_backup is None]
        if missing:
            raise LbtkError(f"{', '.join(missing)}: no deploy backup under {BACKUP_DIR} — nothing to roll back to; "
                            "nothing was changed")
        runs = [NodeRun(n, states[n], NodePlan(n)) for n in names]
        by_name = {c.lbtk_node: c for c in conns}
        batches, _ = rolling_batches(env, runs)
        for batch in batches:
            for name in batch:
                c, (stamp, paths) = by_name[name], states[name].last_backup
                phase_of = {f.path: f.phase for f in render_node(env.inv, name, env.secrets, ASSUMED)}
                restore(c, paths, stamp)
                now = observe_node(c, (*F.DEPLOY, *per_node[name]))
                restored = [NodeFile(p, (now.files[p].content.decode() if now.files.get(p) else None),
                                     phase_of.get(p, "keepalived")) for p in paths]
                plan = NodePlan(name)
                for phase in dict.fromkeys(f.phase for f in restored):
                    mine = [f for f in restored if f.phase == phase]
                    plan.add_actions(service_actions(phase, {f.path for f in mine}, now, mine))
                try:
                    done = apply_node(c, plan, stamp)
                except ApplyError as e:
                    raise LbtkError(f"{e} (rollback to {stamp})") from None
                remote.run(c, f"rm -rf {shlex.quote(BACKUP_DIR + '/' + stamp)}", check=False)
                say(f"{name}: rolled back to the files before deploy {stamp} "
                    f"({len(paths)} file(s); {', '.join(a.short() for a in done.actions) or 'no reload needed'})")
            if len(batch) == 1 and len(nodes) > 1:
                settle.settle_between(env, [c for c in conns if c.lbtk_node in states], None)
    finally:
        remote.close(conns)
