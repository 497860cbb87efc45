"""`inv verify`: every check in one table; exit 0 only when all pass."""
from __future__ import annotations

from invoke import Exit, task

from .. import output, remote
from ..traffic import traffic_section
from ..verify import verify as run_verify
from ..views import verify as view
from .common import DEFAULT_ENV, check_format, load_env, one_line_errors


@task(help={"env": "inventory name", "json": "one JSON object: ok, checks, vip_holders",
            "format": "auto|rich|plain|markdown", "no_http": "skip the HTTP GET through each VIP",
            "requests": "with a lab client (lab.client): requests sent through the VIP (default 30)"})
@one_line_errors
def verify(c, env=DEFAULT_ENV, json=False, format=None, no_http=False, requests=30):
    """VIP holders (split brain in red), daemons, ARP sysctls, VIP on lo, IPVS table, sync daemon, HTTP;
    with a lab client: IPVS --stats, scheduler order and counts per real server through the VIP."""
    check_format(format)
    e = load_env(env)
    conns = [remote.connect(e.inv, n) for n in e.inv.nodes]
    try:
        report = run_verify(e.inv, conns, http=not no_http)
        extra = traffic_section(e.inv, conns, report, int(requests)) if not no_http else None
    finally:
        remote.close(conns)
    if json:
        output.show_json({**report.as_json(), **({"traffic": extra.as_json()} if extra else {}),
                          "ok": report.ok})
    else:
        view.show(report, format, extra)
    if not report.ok:
        raise Exit(code=1)
