"""`inv failover-test`: fail the MASTER for real, measure, restore, compare with VRRP theory."""
from __future__ import annotations

import json as jsonlib
import os
import sys
import time

from invoke import Exit

from fabfile import output
from fabfile.core.drill_result import DrillResult
from fabfile.tasks.common import DEFAULT_ENV, UsageError, check_format, node_env, number, one_line_errors, task


@task(name="failover-test",
      help={"env": "inventory name", "mode": "graceful (systemctl stop) | crash (SIGKILL) | link-down | "
                                             "all-but-one (stop the VIP holder until one director is left)",
            "json": "one JSON object", "interval_ms": "HTTP probe interval (default 20)",
            "format": "auto|rich|plain|markdown",
            "vip": "drill the VRRP instance holding this VIP (multi-master: one per node); only it may move",
            "break_lock": "take over a deploy lock left by a run that died (a live run's lock is never broken)",
            "out": "also write the result under DIR: its JSON and, beside it, the timeline as a picture (HTML)"})
@one_line_errors
def failover_test(c, env=DEFAULT_ENV, mode="graceful", json=False, interval_ms=None, format=None, vip=None,
                  break_lock=False, out=None):
    """Fail the MASTER under an HTTP probe, time the VIP move and the outage, restore the cluster.

    all-but-one: each holder in turn until one is left. The preempt back is timed too; the deploy
    lock is held throughout."""
    from fabfile.infra import runinfo
    from fabfile.ops import drill
    from fabfile.tasks.core import out_dir
    from fabfile.views import failover as view
    if mode not in drill.MODES:
        raise UsageError(f"--mode must be one of {', '.join(drill.MODES)}")
    check_format(format)
    interval = number(interval_ms, "interval-ms", 20, int, 5) / 1000
    e, _ = node_env(env, quiet=json)
    root = out_dir(out) if out else None          # a directory we cannot write is refused before the drill
    try:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        say = (lambda s: None) if json else output.say
        r = drill.failover_test(e, mode, info=lambda: runinfo.current(e.name, e.path), interval=interval, say=say,
                                vip=vip, break_lock=break_lock)
        if json:
            output.show_json(r.as_json())
        else:
            view.show(r, format)
        if root is not None:
            write_record(root, out, r, e.inv.cluster, stamp, json)
    finally:
        if root is not None:
            os.close(root)
    if not r.ok:
        raise Exit(f"failover-test: {r.error or 'failed'}" if not json else None, code=1)


def write_record(root: int, out: str, r: DrillResult, cluster: str, stamp: str, quiet: bool) -> None:
    """DIR/failover-MODE-STAMP.json (what --json prints) and the timeline picture beside it (.html);
    each path said (on stderr under --json: stdout is the JSON alone)."""
    from fabfile.tasks.core import OutFile, write_out
    from fabfile.views import failover_timeline
    stem = f"failover-{r.mode}-{stamp}"
    title = f"{cluster}: failover drill ({r.mode}) of {r.vip}, {stamp}"
    files = [OutFile(f"{stem}.json", output.mask(jsonlib.dumps(r.as_json(), indent=2, default=str)) + "\n"),
             OutFile(f"{stem}.html", output.mask(failover_timeline.html(r, title)))]
    for f in files:
        line = f"wrote {write_out(root, out, '', f)}"
        if quiet:
            print(output.visible(line), file=sys.stderr, flush=True)
        else:
            output.say(line)
