"""`inv connections`: the SSH connections kept between runs (fabfile/infra/keeper.py), and ending them."""
from __future__ import annotations

from fabfile import output
from fabfile.tasks.common import one_line_errors, task


@task(help={"stop": "end the keeper and every connection it keeps", "json": "as JSON"})
@one_line_errors
def connections(c, stop=False, json=False):
    """SSH connections kept for the next runs (ssh.control_persist): how many, and --stop to end them."""
    from fabfile.infra import keeper
    found = keeper.stats()
    if stop:
        stopped = keeper.stop()
        if json:
            output.show_json({"stopped": stopped, "held": (found or {}).get("held", 0)})
        else:
            output.say(f"keeper stopped: {found['held']} connection(s) ended" if stopped and found
                       else "no keeper was running: no connection is kept")
        return
    if json:
        output.show_json({"running": found is not None, **(found or {})})
    elif found is None:
        output.say("no keeper running: the next run connects to each node itself, then keeps the "
                   "connections for ssh.control_persist seconds (default 60; 0 keeps none)")
    else:
        output.say(f"keeper pid {found['pid']}: {found['held']} connection(s) kept; "
                   f"{found['connects']} made and {found['sessions']} command(s) run since it started")
