"""`inv sync-start / sync-stop / sync-status`: the IPVS connection sync daemon on every node."""
from __future__ import annotations

from invoke import Exit

from fabfile import output
from fabfile.core import sync_rules as sync
from fabfile.ops import sync_daemons
from fabfile.tasks.common import DEFAULT_ENV, check_format, node_env, one_line_errors, task

HELP = {"env": "inventory name", "format": "auto|rich|plain|markdown", "json": "print JSON"}
CHANGE_HELP = {**HELP, "break_lock": "take over a deploy lock left by a run that died (a live run's lock is never broken)"}


def _apply(env: str, start: bool, json: bool, break_lock: bool):
    """sync_daemons.apply under the deploy lock, as this run."""
    from fabfile.infra import runinfo
    e, _ = node_env(env, quiet=json)
    sync_daemons.apply(e, start=start, info=lambda: runinfo.current(e.name, e.path), say=output.say,
                       break_lock=break_lock)
    return e


@task(name="sync-status", help=HELP)
@one_line_errors
def sync_status(c, env=DEFAULT_ENV, format=None, json=False):
    """A table from `ipvsadm -L --daemon` on every node, against the role VRRP gives it."""
    check_format(format)
    e, _ = node_env(env, quiet=json)
    obs, holds = sync_daemons.observed(e)
    rows = sync_daemons.status(e, obs, holds)
    ok = all(r.ok for r in rows)
    if json:
        output.show_json({"ok": ok, "mode": e.inv.sync_daemon.mode, "nodes": [r.as_dict() for r in rows]})
    else:
        t = output.Table(f"sync daemon ({sync.describe(e.inv)})", ["node", "VRRP", "wanted", "running", "ok"])
        for r in rows:
            t.add(r.node, r.vrrp, r.want, r.running, r.ok, ok=r.ok)
        output.show(t, format)
    if not ok:
        raise Exit(code=1)


@task(name="sync-start", help=CHANGE_HELP)
@one_line_errors
def sync_start(c, env=DEFAULT_ENV, format=None, json=False, break_lock=False):
    """Start the sync daemons: master on the VRRP MASTER, backup elsewhere (keepalived mode: check only)."""
    check_format(format)
    _apply(env, True, json, break_lock)
    sync_status(c, env=env, format=format, json=json)


@task(name="sync-stop", help=CHANGE_HELP)
@one_line_errors
def sync_stop(c, env=DEFAULT_ENV, format=None, json=False, break_lock=False):
    """Stop every sync daemon (keepalived mode restarts them at its next VRRP transition or reload)."""
    e = _apply(env, False, json, break_lock)
    mode = e.inv.sync_daemon.mode
    output.say("sync daemons stopped" + (" (keepalived starts them again at its next transition or reload;"
                                         " `inv sync-start` reloads keepalived)" if mode == "keepalived" else
                                         " (keepalived's notify starts them again at its next transition;"
                                         " `inv sync-start` now)" if mode == "notify" else ""))
