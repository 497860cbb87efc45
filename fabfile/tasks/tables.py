"""`inv ipvs`, `inv addrs`, `inv vrrp`: one table each, for the runbooks (what verify shows after
its summary): the live `ipvsadm -L -n` (+ rates) per director, `ip a` per node, keepalived's view."""
from __future__ import annotations

from invoke import Exit

from fabfile.infra import facts as F
from fabfile import output
from fabfile.infra.observe import observe_nodes
from fabfile.views import cluster
from fabfile.tasks.common import DEFAULT_ENV, check_format, node_env, one_line_errors, task

HELP = {"env": "inventory name", "node": "only this node", "format": "auto|rich|plain|markdown",
        "json": "the rows as JSON (the same fields as verify --json)"}
TABLES = {  # name -> (facts, rows, draw)
    "ipvs": ((F.IPVS_TABLE, F.IPVS_RATE), cluster.ipvs_rows, cluster.show_ipvs),
    "addrs": ((F.ADDRS,), cluster.addr_rows, cluster.show_addrs),
    "vrrp": ((F.SERVICES, F.KEEPALIVED_VIEW), cluster.vrrp_rows, cluster.show_vrrp),
}


def _table(name: str, env: str, node, format, json) -> None:
    check_format(format)
    e, nodes = node_env(env, node, quiet=json)
    facts, rows_of, draw = TABLES[name]
    states = observe_nodes(e, nodes, facts)
    rows = rows_of(e.inv, states)
    if json:
        output.show_json(rows)
    else:
        draw(rows, format)
    if not all(r["ok"] for r in rows):
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
