"""`inv watch`: a live full-screen view of the cluster, refreshed every second (rich Live).

Without a terminal (a pipe, cron, CI) it prints one snapshot and exits.
"""
from __future__ import annotations

import sys
import time


from fabfile import output
from fabfile.tasks.common import DEFAULT_ENV, check_format, load_env, number, one_line_errors, task


@task(help={"env": "inventory name", "interval": "seconds between refreshes (default 1)",
            "count": "stop after this many refreshes (default 0: until Ctrl-C)",
            "format": "plain output's format: plain|markdown (no terminal: one snapshot)"})
@one_line_errors
def watch(c, env=DEFAULT_ENV, interval=None, count=None, format=None):
    """Live view: VIP holders, VRRP states, real servers (connections, rates, health), last transitions."""
    from fabfile.views import watch as view
    from fabfile.ops.watch import watching
    check_format(format)
    interval = number(interval, "interval", 1.0, float, 0.2)
    count = number(count, "count", 0, int, 0)
    e = load_env(env)
    try:
        with watching(e) as w:
            if not sys.stdout.isatty() or output.resolve_format(format) != "rich":
                view.show_once(e.inv, w.refresh(), format)
                return
            from rich.live import Live
            t0 = time.monotonic()
            frame = w.refresh()
            # Live restores the screen (and the cursor) when its context is left, whatever ends it
            with Live(view.renderable(e.inv, frame, interval), screen=True, auto_refresh=False) as live:
                n = 1
                while not count or n < count:
                    time.sleep(max(0.0, interval - (time.monotonic() - t0)))   # one refresh per interval
                    t0 = time.monotonic()
                    live.update(view.renderable(e.inv, w.refresh(), interval), refresh=True)
                    n += 1
    except KeyboardInterrupt:
        pass   # Ctrl-C is how a watch ends, wherever it lands (connecting, observing, sleeping): exit 0
