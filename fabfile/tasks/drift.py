"""`inv diff` (drift: live files vs the inventory) and `inv rollback` (the previous deployed state)."""
from __future__ import annotations

from invoke import Exit

from fabfile import output
from fabfile.tasks.common import DEFAULT_ENV, check_format, node_env, one_line_errors, task


@task(help={"env": "inventory name", "node": "only this node", "format": "auto|rich|plain|markdown",
            "json": "one JSON object: per node its drifted files (path, kind, state, diff)"})
@one_line_errors
def diff(c, env=DEFAULT_ENV, node=None, format=None, json=False):
    """Per node and file: how the live files differ from what the inventory renders (hand edits too).

    Exit 1 when anything drifted, like diff(1)."""
    from fabfile.core import runtime
    from fabfile.ops.deploy import drift, gather
    from fabfile.views import drift as view
    check_format(format)
    e, nodes = node_env(env, node, quiet=json)
    facts = gather(e, nodes)
    e = runtime.of(e, facts)     # drains recorded on the nodes are part of what is wanted
    found = drift(e, facts)
    drifted = sum(len(changes) for changes in found.values())
    if json:
        output.show_json(view.as_json(found))
    else:
        view.show(e.path.name, found, format)
        output.say("no drift" if not drifted else f"{drifted} file(s) drifted — `inv deploy --env {env}` puts them back")
    if drifted:
        raise Exit(code=1)


@task(name="rollback", help={"env": "inventory name", "node": "only this node",
                             "skip_unreachable": "roll back the nodes that answer, skip the others",
                             "to": "a run's id from `inv history`: back to the files before that run "
                                   "(every later deploy undone too)",
                             "break_lock": "take over a deploy lock left by a run that died",
                             "check": "the plan only (a diff per file, actions, VIP moves); nothing is touched",
                             "json": "one JSON object: the plan (with --check) or what each node took",
                             "format": "auto|rich|plain|markdown"})
@one_line_errors
def rollback(c, env=DEFAULT_ENV, node=None, skip_unreachable=False, to=None, break_lock=False, check=False,
             json=False, format=None):
    """Return to the files before the last deploy (or before run --to ID), reload, check.

    Planned as a deploy: a change VRRP adverts carry goes to every node at once, anything else
    to the backups first and the VIP holder last. --check shows that plan and touches nothing."""
    from fabfile.ops.rollback import RollbackFailed, rollback as do_rollback
    from fabfile.views import deploy as view
    check_format(format)
    e, _ = node_env(env, node, quiet=json)
    say = (lambda s: None) if json else output.say
    try:
        out = do_rollback(e, node, say=say, skip_unreachable=skip_unreachable, to=to, break_lock=break_lock,
                          on_moves=(lambda moves: None) if json or check else view.say_moves, check=check)
    except RollbackFailed as err:
        if json:
            output.show_json(view.as_json(err.outcome))
        raise
    if json:
        output.show_json(view.as_json(out))
    elif check:
        view.show(out, format, task="rollback")
