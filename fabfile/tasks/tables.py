"""`inv ipvs`, `inv addrs`, `inv vrrp`: one table each, for the runbooks (what verify shows after
its summary): the live `ipvsadm -L -n` (+ rates) per director, `ip a` per node, keepalived's view."""
from __future__ import annotations

from invoke import Exit

from fabfile.infra import facts as F
from fabfile import output
from fabfile.infra.observe import observe_nodes
from fabfile.views import cluster
from fabfile.tasks.common import (DEFAULT_ENV, check_format, each_env, fleet_names, node_env, one_line_errors,
                                  say_failed, task)

HELP = {"env": "inventory name; several: NAME,NAME or a glob ('prod-*'), one table across the clusters "
               "(a node shows as CLUSTER/NODE)",
        "node": "only this node", "format": "auto|rich|plain|markdown",
        "json": "the rows as JSON (the same fields as verify --json)"}
TABLES = {  # name -> (facts, rows, draw)
    "ipvs": ((F.IPVS_TABLE, F.IPVS_RATE), cluster.ipvs_rows, cluster.show_ipvs),
    "addrs": ((F.ADDRS,), cluster.addr_rows, cluster.show_addrs),
    "vrrp": ((F.SERVICES, F.KEEPALIVED_VIEW), cluster.vrrp_rows, cluster.show_vrrp),
}


def _table(name: str, env: str, node, format, json) -> None:
    check_format(format)
    facts, rows_of, draw = TABLES[name]
    names = fleet_names(env, node)
    if names is None:
        e, nodes = node_env(env, node, quiet=json)
        rows, failed = rows_of(e.inv, observe_nodes(e, nodes, facts)), {}
        shown = rows
    else:                                      # a fleet: every cluster's rows in one table
        def read(n):
            e, nodes = node_env(n, quiet=json)
            return [{**r, "inventory": e.path.name, "cluster": e.inv.cluster, "node": f"{e.inv.cluster}/{r['node']}"}
                    for r in rows_of(e.inv, observe_nodes(e, nodes, facts))]
        done, failed = each_env(names, read)
        rows = [r for _, rs in done for r in rs]
        shown = {"ok": not failed and all(r["ok"] for r in rows), "rows": rows, "failed": failed}
    if json:
        output.show_json(shown)
    else:
        draw(rows, format)
        say_failed(failed)
    if failed or not all(r["ok"] for r in rows):
        raise Exit(code=1)


@task(help=HELP)
@one_line_errors
def ipvs(c, env=DEFAULT_ENV, node=None, format=None, json=False):
    """The live IPVS table of every director (ipvsadm -L -n and --rate), against the inventory."""
    _table("ipvs", env, node, format, json)


@task(help=HELP)
@one_line_errors
def addrs(c, env=DEFAULT_ENV, node=None, format=None, json=False):
    """Every node's addresses (ip -j addr): which are VIPs, which VIP sits on lo."""
    _table("addrs", env, node, format, json)


@task(help=HELP)
@one_line_errors
def vrrp(c, env=DEFAULT_ENV, node=None, format=None, json=False):
    """keepalived's own view per node and instance: state, priority, adverts, auth errors, transitions."""
    _table("vrrp", env, node, format, json)
