"""`inv watch`: a live full-screen view of the cluster, refreshed every second (rich Live); several
clusters (`--env A,B` or a glob): one view with every cluster, a cluster column in each table.

Without a terminal (a pipe, cron, CI) it prints one snapshot and exits.
"""
from __future__ import annotations

import sys
import time
from contextlib import ExitStack

from invoke import Exit

from fabfile import output
from fabfile.tasks.common import (DEFAULT_ENV, check_format, each_env, fleet_names, load_env, number,
                                  one_line_errors, say_failed, task)


@task(help={"env": "inventory name; several: NAME,NAME or a glob ('prod-*'), one view of every cluster "
                   "(a cluster column in each table)",
            "interval": "seconds between refreshes (default 1)",
            "count": "stop after this many refreshes (default 0: until Ctrl-C)",
            "format": "plain output's format: plain|markdown (no terminal: one snapshot)"})
@one_line_errors
def watch(c, env=DEFAULT_ENV, interval=None, count=None, format=None):
    """Live view: VIP holders, VRRP states, real servers (connections, rates, health), last transitions."""
    from fabfile.views import watch as view
    from fabfile.ops import watch as ops
    check_format(format)
    interval = number(interval, "interval", 1.0, float, 0.2)
    count = number(count, "count", 0, int, 0)
    names = fleet_names(env)
    fleet = names is not None
    failed: dict[str, str] = {}
    try:
        with ExitStack() as stack:
            def read(name):                 # a watcher per cluster, its connections closed on the way out
                e = load_env(name)
                return e.inv, stack.enter_context(ops.watching(e))
            if fleet:
                done, failed = each_env(names, read)
            else:
                done = [(env, read(env))]
            if not done:
                say_failed(failed)
                raise Exit(code=1)
            invs, watchers = [inv for _, (inv, _) in done], [w for _, (_, w) in done]
            notes = [f"{n}: not read: {why}" for n, why in failed.items()]

            def refresh():
                return list(zip(invs, ops.refresh_all(watchers)))

            def screen(clusters):
                return (view.fleet_renderable(clusters, interval, notes) if fleet
                        else view.renderable(*clusters[0], interval))
            if not sys.stdout.isatty() or output.resolve_format(format) != "rich":
                clusters = refresh()
                if fleet:
                    view.show_fleet_once(clusters, format)
                    say_failed(failed)
                else:
                    view.show_once(*clusters[0], format)
            else:
                live_loop(refresh, screen, interval, count)
    except KeyboardInterrupt:
        pass   # Ctrl-C is how a watch ends, wherever it lands (connecting, observing, sleeping): exit 0
    if failed:
        raise Exit(code=1)      # an inventory of the fleet could not be watched (its line said why)


def live_loop(refresh, screen, interval: float, count: int) -> None:
    """refresh() once per interval, screen(what it returned) drawn full screen, `count` times (0:
    until Ctrl-C)."""
    from rich.live import Live
    t0 = time.monotonic()
    frame = refresh()
    # Live restores the screen (and the cursor) when its context is left, whatever ends it
    with Live(screen(frame), screen=True, auto_refresh=False) as live:
        n = 1
        while not count or n < count:
            time.sleep(max(0.0, interval - (time.monotonic() - t0)))   # one refresh per interval
            t0 = time.monotonic()
            live.update(screen(refresh()), refresh=True)
            n += 1
