"""`inv diff` (drift: live files vs the inventory) and `inv rollback` (the previous deployed state)."""
from __future__ import annotations

from invoke import Exit

from fabfile import output
from fabfile.tasks.common import DEFAULT_ENV, check_format, node_env, one_line_errors, task


@task(help={"env": "inventory name", "node": "only this node", "format": "auto|rich|plain|markdown"})
@one_line_errors
def diff(c, env=DEFAULT_ENV, node=None, format=None):
    """Per node and file: how the live files differ from what the inventory renders (hand edits too).

    Exit 1 when anything drifted, like diff(1)."""
    from fabfile.ops.deploy import drift, gather
    check_format(format)
    e, nodes = node_env(env, node)
    facts = gather(e, nodes)
    from fabfile.core import runtime
    e = runtime.of(e, facts)     # drains recorded on the nodes are part of what is wanted
    t = output.Table(f"drift ({e.path.name})", ["node", "file", "state"])
    drifted = 0
    for n, changes in drift(e, facts).items():
        for ch in changes:
            drifted += 1
            word = {"create": "missing on node", "delete": "present, should not be", "update": "differs",
                    "mode": "mode differs"}[ch.kind]
            t.add(n, ch.file.path, word, ok=False)
            output.say(ch.diff.rstrip("\n"), lines=True)
        if not changes:
            t.add(n, "(all managed files)", "as rendered", ok=True)
    output.show(t, format)
    output.say("no drift" if not drifted else f"{drifted} file(s) drifted — `inv deploy --env {env}` puts them back")
    if drifted:
        raise Exit(code=1)


@task(name="rollback", help={"env": "inventory name", "node": "only this node",
                             "skip_unreachable": "roll back the nodes that answer, skip the others",
                             "to": "a run's id from `inv history`: back to the files before that run "
                                   "(every later deploy undone too)",
                             "break_lock": "take over a deploy lock left by a run that died"})
@one_line_errors
def rollback(c, env=DEFAULT_ENV, node=None, skip_unreachable=False, to=None, break_lock=False):
    """Return to the files before the last deploy (or before run --to ID), reload, check.

    Planned as a deploy: a change VRRP adverts carry goes to every node at once, anything else
    to the backups first and the VIP holder last."""
    from fabfile.ops.rollback import rollback as do_rollback
    from fabfile.views.deploy import say_moves
    e, _ = node_env(env, node)
    do_rollback(e, node, say=output.say, skip_unreachable=skip_unreachable, to=to, break_lock=break_lock,
                on_moves=say_moves)
