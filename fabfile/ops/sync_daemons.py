"""The IPVS connection sync daemons on live nodes: observe them against the role VRRP gives each
node, and start or stop them (the shell around fabfile.core.sync_rules, which holds the pure rules)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from fabfile.infra import facts as F
from fabfile.infra import remote
from fabfile.ops import lock as runlock
from fabfile.core import sync_rules as sync
from fabfile.core.actions import Action
from fabfile.core.checks import sync_check, without_ipvs
from fabfile.model.context import Env
from fabfile.errors import LbtkError
from fabfile.infra.facts import NodeState
from fabfile.infra.observe import observe
from fabfile.core.render import ipvs_sync

NO_IPVS = "kernel has no IPVS: no connection sync on this node"
FACTS = (F.ADDRS, F.IPVS_TABLE, F.SYNC_DAEMONS)


@dataclass
class Row:
    node: str
    vrrp: str          # MASTER | BACKUP | ?
    want: str          # master | backup | -
    running: str
    ok: bool

    def as_dict(self) -> dict:
        return asdict(self)


def require_sync_daemon(e: Env) -> None:
    if e.inv.sync_daemon is None:
        raise LbtkError(f"{e.path.name}: no sync_daemon section — add sync_daemon: {{interface: eth0, syncid: 1}}")


def observed(e: Env, group: remote.NodeGroup | None = None) -> tuple[dict[str, NodeState], dict[str, bool]]:
    """Every node's state and whether it holds the sync instance's VIP (one round trip each), over
    `group` (default: a group of its own, every node)."""
    require_sync_daemon(e)
    if group is None:
        with remote.nodes(e) as group:
            return observed(e, group)
    obs = observe(group, FACTS)
    inst = sync.sync_instance(e.inv)
    holds = {n: any(o.holds(a) for a in inst.addresses) for n, o in obs.items()}
    return obs, holds


def status(e: Env, obs: dict[str, NodeState], holds: dict[str, bool]) -> list[Row]:
    """Pure: one row per node, running daemons against the wanted role."""
    rows = []
    for n, o in obs.items():
        want = sync.role(holds[n])
        vrrp = "MASTER" if holds[n] else "BACKUP"
        if not o.reachable:
            rows.append(Row(n, "?", want, o.error, False))
        elif o.ipvs is None:
            ok, detail = without_ipvs(e.inv, "no connection sync on this node")
            rows.append(Row(n, vrrp, "-", detail, ok))
        else:
            running = ", ".join(f"{d.role} (mcast={d.mcast_interface}, syncid={d.syncid}, "
                                f"group={d.group}:{d.port})" for d in o.sync_daemons) or "none"
            rows.append(Row(n, vrrp, want, running, sync_check(e.inv, n, o, holds[n]).ok))
    return rows


def apply(e: Env, start: bool, info, say=lambda s: None, break_lock: bool = False) -> None:
    """Start (each node's role from the VIP it holds now) or stop every node's sync daemons, under
    the deploy lock held on every node, the roles read once it is held. `info`: this run
    (fabfile/infra/runinfo.RunInfo), or a callable that makes it."""
    require_sync_daemon(e)                       # before any connection or lock
    with remote.nodes(e) as group, runlock.held_on_all(group, info() if callable(info) else info,
                                                       break_lock, say):
        obs, holds = observed(e, group)
        sd = e.inv.sync_daemon
        for c in group:
            o = obs[c.name]
            if not o.reachable:
                raise remote.RemoteError(o.error)
            if o.ipvs is None:
                say(f"{c.name}: {NO_IPVS}")
                continue
            if not start:
                remote.run(c, sync.STOP)
            elif sd.mode == "keepalived":
                if not o.sync_daemons:  # keepalived starts them on reload (lvs_sync_daemon)
                    remote.run(c, Action("reload", "keepalived").shell())
                    say(f"{c.name}: keepalived reloaded to restart its sync daemon")
            elif sd.mode == "notify":         # the node's own script, role from the VIP it holds
                remote.run(c, Action("run", arg=ipvs_sync.RECONCILE).shell())
                say(f"{c.name}: {sync.role(holds[c.name])} sync daemon running (lbtk-ipvs-sync)")
            else:
                remote.run(c, sync.start_command(sd, sync.role(holds[c.name])))
                say(f"{c.name}: {sync.role(holds[c.name])} sync daemon running")
