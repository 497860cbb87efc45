"""`inv rollback`: put back the files the last deploy replaced, then reload what they feed.

Each deploy keeps the files it replaced in /var/lib/lbtk/backup/STAMP/ with a `.paths` list;
rollback restores the newest set (files that did not exist then are removed), reloads through
the same handler rules as a deploy, checks the daemons, and drops that set so a second
rollback goes one deploy further back. Backups first, the VIP holder last.
"""
from __future__ import annotations

import shlex

from . import output, remote
from .apply import BACKUP_DIR, ApplyError, apply_node, restore
from .phases import gather, rolling_batches, NodeRun, settle
from .plan import NodePlan, service_actions
from .render import NodeFile, render_node
from .tasks.common import Env, LbtkError, select_nodes


def newest_backup(c) -> tuple[str, list[str]] | None:
    r = remote.run(c, f"ls -1 {BACKUP_DIR} 2>/dev/null | sort | tail -n 1", check=False)
    stamp = r.stdout.strip()
    if not stamp:
        return None
    paths = remote.run(c, f"cat {BACKUP_DIR}/{stamp}/.paths 2>/dev/null", check=False).stdout.split()
    return stamp, paths


def rollback(env: Env, node: str | None = None, fmt=None) -> None:
    nodes = select_nodes(env.inv, node)
    conns = [remote.connect(env.inv, n) for n in nodes]
    try:
        found = dict(zip([c.lbtk_node for c in conns], remote.parallel(conns, newest_backup)))
        missing = [n for n, b in found.items() if b is None]
        if missing:
            raise LbtkError(f"{', '.join(missing)}: no deploy backup under {BACKUP_DIR} — nothing to roll back to; "
                            "nothing was changed")
        facts = gather(env, conns)
        runs = [NodeRun(n, facts[n], NodePlan(n)) for n in found]
        by_name = {c.lbtk_node: c for c in conns}
        for batch in rolling_batches(env, runs):
            for name in batch:
                c, (stamp, paths) = by_name[name], found[name]
                phase_of = {f.path: f.phase for f in render_node(env.inv, name, env.secrets)}
                restore(c, paths, stamp)
                now = gather(env, [c])[name]
                restored = [NodeFile(p, (now.files.get(p).content.decode() if now.files.get(p) else None),
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
                output.say(f"{name}: rolled back to the files before deploy {stamp} "
                           f"({len(paths)} file(s); {', '.join(done) or 'no reload needed'})")
            if len(batch) == 1 and len(nodes) > 1:
                settle(env, conns, None)
    finally:
        remote.close(conns)
