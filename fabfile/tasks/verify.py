"""`inv verify`: every check in one table; exit 0 only when all pass."""
from __future__ import annotations

from invoke import Exit, task

from fabfile.infra import facts as F
from fabfile import output
from fabfile.infra import remote
from fabfile.infra.observe import observe
from fabfile.ops.traffic import traffic_section
from fabfile.ops.verify import verify as run_verify
from fabfile.views import cluster
from fabfile.views import verify as view
from fabfile.tasks.common import DEFAULT_ENV, check_format, node_env, number, one_line_errors


@task(help={"env": "inventory name", "json": "one JSON object: ok, checks, vip_holders",
            "format": "auto|rich|plain|markdown", "no_http": "skip the HTTP GET through each VIP",
            "requests": "with a lab client (lab.client): requests sent through the VIP (default 30)",
            "node": "only this node's checks (the cluster checks still need every node)",
            "parallel": "at most N nodes at once"})
@one_line_errors
def verify(c, env=DEFAULT_ENV, json=False, format=None, no_http=False, requests=None, node=None, parallel=None):
    """VIP holders (split brain in red), daemons, ARP sysctls, VIP on lo, IPVS table, sync daemon, HTTP;
    with a lab client: IPVS --stats, scheduler order and counts per real server through the VIP."""
    check_format(format)
    requests = number(requests, "requests", 30, int, 1)
    e, nodes = node_env(env, node, quiet=json, parallel=parallel)
    conns = [remote.connect(e.inv, n) for n in nodes]
    try:
        report = run_verify(e.inv, conns, http=not no_http, secrets=e.secrets)
        extra = traffic_section(e.inv, conns, report, int(requests)) if not no_http else None
        if extra is not None and extra.runs:   # the IPVS table then shows the client run's connections
            refresh_ipvs(report, observe(conns, (F.IPVS_TABLE, F.IPVS_RATE)))
    finally:
        remote.close(conns)
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


def refresh_ipvs(report, after) -> None:
    """Take the IPVS table and rates observed after the client run into the report's states."""
    for n, s in after.items():
        if s.reachable and n in report.observed:
            report.observed[n].ipvs, report.observed[n].ipvs_rate = s.ipvs, s.ipvs_rate
