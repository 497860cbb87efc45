"""`inv verify`: every check in one table; exit 0 only when all pass."""
from __future__ import annotations

from invoke import Exit

from fabfile import output
from fabfile.ops.verify import verify_nodes
from fabfile.views import cluster
from fabfile.views import verify as view
from fabfile.tasks.common import (DEFAULT_ENV, check_format, each_env, fleet_names, node_env, number,
                                  one_line_errors, say_failed, task)


@task(help={"env": "inventory name; several: NAME,NAME or a glob ('prod-*'): one table of every cluster's "
                   "checks, each with its inventory",
            "json": "one JSON object: ok, checks, vip_holders (several inventories: ok, clusters, failed)",
            "format": "auto|rich|plain|markdown", "no_http": "skip the HTTP GET through each VIP",
            "requests": "with a lab client (lab.client): requests sent through the VIP (default 30)",
            "node": "only this node's checks (the cluster checks still need every node)",
            "parallel": "at most N nodes at once"})
@one_line_errors
def verify(c, env=DEFAULT_ENV, json=False, format=None, no_http=False, requests=None, node=None, parallel=None):
    """Every check of the cluster (VIP holders, daemons, ARP, IPVS, sync daemon, HTTP) and its tables.

    VIP holders (split brain in red), daemons, ARP sysctls, VIP on lo, IPVS table, sync daemon,
    HTTP; with a lab client: IPVS --stats, scheduler order and counts per real server through the VIP."""
    check_format(format)
    requests = number(requests, "requests", 30, int, 1)
    names = fleet_names(env, node)
    if names is not None:
        return _fleet(names, json, format, not no_http, int(requests), parallel)
    e, nodes = node_env(env, node, quiet=json, parallel=parallel)
    report, extra = verify_nodes(e, nodes, http=not no_http, requests=int(requests))
    inv = report.inv or e.inv
    tables = {"ipvs": cluster.ipvs_rows(inv, report.observed),
              "addresses": cluster.addr_rows(inv, report.observed),
              "vrrp": cluster.vrrp_rows(inv, report.observed)}
    if json:
        output.show_json({**report.as_json(), **tables, **({"traffic": extra.as_json()} if extra else {}),
                          "ok": report.ok})
    else:
        view.show(report, format, extra, tables)
    if not report.ok:
        raise Exit(code=1)


def _fleet(names: list[str], json: bool, format, http: bool, requests: int, parallel) -> None:
    """verify of several clusters: every check of each, in one table led by its inventory; exit 1
    when a check fails anywhere or an inventory cannot be read."""
    def read(name):
        e, nodes = node_env(name, quiet=json, parallel=parallel)
        return e, verify_nodes(e, nodes, http=http, requests=requests)[0]
    done, failed = each_env(names, read)
    ok = not failed and all(report.ok for _, (_, report) in done)
    if json:
        output.show_json({"ok": ok, "failed": failed,
                          "clusters": [{"inventory": e.path.name, "cluster": e.inv.cluster, **report.as_json()}
                                       for _, (e, report) in done]})
    else:
        view.show_fleet([(e.path.name, e.inv.cluster, report) for _, (e, report) in done], format)
        say_failed(failed)
    if not ok:
        raise Exit(code=1)
