"""`inv sync-start / sync-stop / sync-status`: the IPVS connection sync daemon on every node."""
from __future__ import annotations

from invoke import Exit, task

from .. import output, remote, sync
from ..checks import sync_check
from ..render import ipvs_sync
from ..verify import observe
from .common import DEFAULT_ENV, Env, LbtkError, load_env, one_line_errors

HELP = {"env": "inventory name", "format": "auto|rich|plain|markdown", "json": "print JSON"}
NO_IPVS = "kernel has no IPVS: no connection sync on this node"


def _state(e: Env, conns):
    if e.inv.sync_daemon is None:
        raise LbtkError(f"{e.path.name}: no sync_daemon section — add sync_daemon: {{interface: eth0, syncid: 1}}")
    obs = observe(e.inv, conns)
    inst = sync.sync_instance(e.inv)
    holds = {n: any(a in o.vips_on_iface for a in inst.addresses) for n, o in obs.items()}
    return obs, holds


@task(name="sync-status", help=HELP)
@one_line_errors
def sync_status(c, env=DEFAULT_ENV, format=None, json=False):
    """A table from `ipvsadm -L --daemon` on every node, against the role VRRP gives it."""
    e = load_env(env)
    conns = [remote.connect(e.inv, n) for n in e.inv.nodes]
    try:
        obs, holds = _state(e, conns)
    finally:
        remote.close(conns)
    rows, ok = [], True
    for n, o in obs.items():
        want = sync.role(holds[n])
        if not o.reachable:
            rows.append(dict(node=n, vrrp="?", want=want, running=o.error, ok=False))
        elif o.ipvs is None:
            rows.append(dict(node=n, vrrp="MASTER" if holds[n] else "BACKUP", want="-", running=NO_IPVS, ok=True))
        else:
            running = ", ".join(f"{d.role} (mcast={d.mcast_interface}, syncid={d.syncid}, "
                                f"group={d.group}:{d.port})" for d in o.sync_daemons) or "none"
            good = sync_check(e.inv, n, o, holds[n]).ok
            rows.append(dict(node=n, vrrp="MASTER" if holds[n] else "BACKUP", want=want, running=running, ok=good))
        ok &= rows[-1]["ok"]
    if json:
        output.show_json({"ok": ok, "mode": e.inv.sync_daemon.mode, "nodes": rows})
    else:
        t = output.Table(f"sync daemon ({sync.describe(e.inv)})", ["node", "VRRP", "wanted", "running", "ok"])
        for r in rows:
            t.add(r["node"], r["vrrp"], r["want"], r["running"], r["ok"], ok=r["ok"])
        output.show(t, format)
    if not ok:
        raise Exit(code=1)


@task(name="sync-start", help=HELP)
@one_line_errors
def sync_start(c, env=DEFAULT_ENV, format=None, json=False):
    """Start the sync daemons: master on the VRRP MASTER, backup elsewhere (keepalived mode: check only)."""
    e = load_env(env)
    _apply(e, start=True)
    sync_status(c, env=env, format=format, json=json)


@task(name="sync-stop", help=HELP)
@one_line_errors
def sync_stop(c, env=DEFAULT_ENV, format=None, json=False):
    """Stop every sync daemon (keepalived mode restarts them at its next VRRP transition or reload)."""
    e = load_env(env)
    _apply(e, start=False)
    mode = e.inv.sync_daemon.mode
    output.say("sync daemons stopped" + (" (keepalived starts them again at its next transition or reload;"
                                         " `inv sync-start` reloads keepalived)" if mode == "keepalived" else
                                         " (keepalived's notify starts them again at its next transition;"
                                         " `inv sync-start` now)" if mode == "notify" else ""))


def _apply(e: Env, start: bool) -> None:
    conns = [remote.connect(e.inv, n) for n in e.inv.nodes]
    try:
        obs, holds = _state(e, conns)
        sd = e.inv.sync_daemon
        for c in conns:
            o = obs[c.lbtk_node]
            if o.ipvs is None:
                output.say(f"{c.lbtk_node}: {NO_IPVS}")
                continue
            if not start:
                remote.run(c, sync.STOP)
            elif sd.mode == "keepalived":
                if not o.sync_daemons:  # keepalived starts them on reload (lvs_sync_daemon)
                    remote.run(c, "systemctl reload keepalived")
                    output.say(f"{c.lbtk_node}: keepalived reloaded to restart its sync daemon")
            elif sd.mode == "notify":         # the node's own script, role from the VIP it holds
                remote.run(c, ipvs_sync.RECONCILE)
                output.say(f"{c.lbtk_node}: {sync.role(holds[c.lbtk_node])} sync daemon running (lbtk-ipvs-sync)")
            else:
                remote.run(c, sync.start_command(sd, sync.role(holds[c.lbtk_node])))
                output.say(f"{c.lbtk_node}: {sync.role(holds[c.lbtk_node])} sync daemon running")
    finally:
        remote.close(conns)
