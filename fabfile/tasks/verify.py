"""`inv verify`: every check in one table; exit 0 only when all pass."""
from __future__ import annotations

from invoke import Exit, task

from .. import output, remote
from ..verify import verify as run_verify
from .common import DEFAULT_ENV, load_env, one_line_errors


@task(help={"env": "inventory name", "json": "one JSON object: ok, checks, vip_holders",
            "format": "auto|rich|plain|markdown", "no_http": "skip the HTTP GET through each VIP",
            "requests": "with a lab client (lab.client): requests sent through the VIP (default 30)"})
@one_line_errors
def verify(c, env=DEFAULT_ENV, json=False, format=None, no_http=False, requests=30):
    """VIP holders (split brain in red), daemons, ARP sysctls, VIP on lo, IPVS table, sync daemon, HTTP;
    with a lab client: IPVS --stats, scheduler order and counts per real server through the VIP."""
    from .verify_traffic import traffic_section
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
        show(report, format, extra)
    if not report.ok:
        raise Exit(code=1)


def show(report, fmt=None, extra=None) -> None:
    t = output.Table("VIP holders", ["VIP", "holders", "state"])
    for vip, holders in report.vip_holders.items():
        state = "ok" if len(holders) == 1 else ("SPLIT BRAIN" if holders else "DOWN")
        t.add(vip, ", ".join(holders) or "-", state, ok=len(holders) == 1)
    output.show(t, fmt)
    t = output.Table("checks", ["check", "node", "result", "detail"])
    for ch in report.checks:
        t.add(ch.name, ch.node, ch.ok, ch.detail, ok=ch.ok)
    output.show(t, fmt)
    if extra is not None:
        extra.show(fmt)
    bad = sum(not c.ok for c in report.checks)
    output.say(f"verify: {len(report.checks)} checks, all passed" if not bad
               else f"verify: {bad} of {len(report.checks)} checks FAILED")
