"""`inv history`: the changes made to the cluster, from every node's own record, newest first."""
from __future__ import annotations


from fabfile.infra import facts as F
from fabfile.core import history as H
from fabfile import output
from fabfile.infra.observe import observe_nodes
from fabfile.tasks.common import DEFAULT_ENV, check_format, node_env, number, one_line_errors, task


@task(help={"env": "inventory name", "limit": "rows (default 20)", "json": "the rows as JSON",
            "format": "auto|rich|plain|markdown"})
@one_line_errors
def history(c, env=DEFAULT_ENV, limit=None, json=False, format=None):
    """Every change (deploy, drain, rollback...) as the nodes recorded it, newest first.

    When, who, the inventory's git commit, the task, the nodes and files; the id is what
    `inv rollback --to` takes."""
    check_format(format)
    limit = number(limit, "limit", 20, int, 1)
    e, nodes = node_env(env, quiet=json)
    states = observe_nodes(e, nodes, (F.HISTORY,))
    rows = H.rows(states)[:limit]
    down = {n: s.error for n, s in states.items() if not s.reachable}
    if json:
        output.show_json({"changes": [r.as_dict() for r in rows], "unreachable": down})
        return
    t = output.Table(f"changes to {e.inv.cluster} (newest first)",
                     ["id", "time", "operator", "commit", "task", "nodes", "files"])
    for r in rows:
        en = r.entry
        commit = (en.commit or "(not in git)") + (" +uncommitted" if en.dirty else "")
        nodes_cell = ", ".join(r.nodes) + (f" (FAILED: {', '.join(r.failed)})" if r.failed else "")
        files = ", ".join(p.rsplit("/", 1)[-1] for p in r.files) or "-"
        t.add(en.id, en.at, en.operator, commit, en.task, nodes_cell, files, ok=False if r.failed else None)
    output.show(t, format)
    for n, why in down.items():
        output.say(f"{n}: UNREACHABLE, its history is not shown: {why}")
    if not rows:
        output.say("no change recorded yet (the history starts with the first deploy of this lbtk version)")
