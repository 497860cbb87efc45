"""`inv failover-test`: fail the MASTER for real, measure, restore, compare with VRRP theory."""
from __future__ import annotations

from invoke import Exit

from fabfile import output
from fabfile.tasks.common import DEFAULT_ENV, UsageError, check_format, node_env, number, one_line_errors, task


@task(name="failover-test",
      help={"env": "inventory name", "mode": "graceful (systemctl stop) | crash (SIGKILL) | link-down | "
                                             "all-but-one (stop the VIP holder until one director is left)",
            "json": "one JSON object", "interval_ms": "HTTP probe interval (default 20)",
            "format": "auto|rich|plain|markdown",
            "vip": "drill the VRRP instance holding this VIP (multi-master: one per node); only it may move",
            "break_lock": "take over a deploy lock left by a run that died (a live run's lock is never broken)"})
@one_line_errors
def failover_test(c, env=DEFAULT_ENV, mode="graceful", json=False, interval_ms=None, format=None, vip=None,
                  break_lock=False):
    """Fail the MASTER under an HTTP probe, time the VIP move and the outage, restore the cluster.

    all-but-one: each holder in turn until one is left. The preempt back is timed too; the deploy
    lock is held throughout."""
    from fabfile.infra import runinfo
    from fabfile.ops import drill
    from fabfile.views import failover as view
    if mode not in drill.MODES:
        raise UsageError(f"--mode must be one of {', '.join(drill.MODES)}")
    check_format(format)
    interval = number(interval_ms, "interval-ms", 20, int, 5) / 1000
    e, _ = node_env(env, quiet=json)
    say = (lambda s: None) if json else output.say
    r = drill.failover_test(e, mode, info=lambda: runinfo.current(e.name, e.path), interval=interval, say=say,
                            vip=vip, break_lock=break_lock)
    if json:
        output.show_json(r.as_json())
    else:
        view.show(r, format)
    if not r.ok:
        raise Exit(f"failover-test: {r.error or 'failed'}" if not json else None, code=1)
