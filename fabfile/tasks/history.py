"""`inv history`: the changes made to the cluster, from every node's own record, newest first;
several clusters (`--env A,B` or a glob): one table, the cluster first."""
from __future__ import annotations

from invoke import Exit

from fabfile.infra import facts as F
from fabfile.core import history as H
from fabfile import output
from fabfile.infra.observe import observe_nodes
from fabfile.views import history as view
from fabfile.tasks.common import (DEFAULT_ENV, check_format, each_env, fleet_names, node_env, number,
                                  one_line_errors, say_failed, task)


@task(help={"env": "inventory name; several: NAME,NAME or a glob ('prod-*'), one table across the clusters "
                   "(a cluster column; --limit counts the whole table)",
            "limit": "rows (default 20)", "json": "the rows as JSON (several inventories: each with its cluster)",
            "format": "auto|rich|plain|markdown"})
@one_line_errors
def history(c, env=DEFAULT_ENV, limit=None, json=False, format=None):
    """Every change (deploy, drain, rollback...) as the nodes recorded it, newest first.

    When, who, the inventory's git commit, the task, the nodes and files; the id is what
    `inv rollback --to` takes."""
    check_format(format)
    limit = number(limit, "limit", 20, int, 1)
    names = fleet_names(env)
    if names is None:
        e, nodes = node_env(env, quiet=json)
        states = observe_nodes(e, nodes, (F.HISTORY,))
        rows = [(None, r) for r in H.rows(states)[:limit]]
        down, failed, title = unreachable(states), {}, f"changes to {e.inv.cluster} (newest first)"
    else:                                   # a fleet: every cluster's runs in one table, newest first
        def read(name):
            e, nodes = node_env(name, quiet=json)
            return e.inv.cluster, observe_nodes(e, nodes, (F.HISTORY,))
        done, failed = each_env(names, read)
        rows = H.fleet_rows([(name, cl, H.rows(states)) for name, (cl, states) in done])[:limit]
        down = {f"{cl}/{n}": why for _, (cl, states) in done for n, why in unreachable(states).items()}
        title = f"changes to {len(done)} clusters (newest first)"
    if json:
        output.show_json({**view.as_json(rows, down), **({"failed": failed} if names is not None else {})})
    else:
        view.show(title, rows, down, format, fleet=names is not None)
        say_failed(failed)
    if failed:
        raise Exit(code=1)


def unreachable(states) -> dict[str, str]:
    return {n: s.error for n, s in states.items() if not s.reachable}
