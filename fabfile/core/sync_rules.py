"""The IPVS connection sync daemon: who should run which role, and the commands for it.

keepalived mode: `lvs_sync_daemon` in global_defs, keepalived flips master and backup with VRRP
state, inside its VRRP process. notify mode: keepalived's `notify` runs lbtk-ipvs-sync, which
flips them outside it (see model.SyncDaemon for why that matters with 3 directors). static mode (the
seed's way): the toolkit runs `ipvsadm --start-daemon` with the role the node has now: master on
the VRRP MASTER, backup on the others.
"""
from __future__ import annotations

import shlex

from fabfile.model.schema import Inventory, SyncDaemon
from fabfile.core.vrrp import PlannedInstance, plan


def sync_instance(inv: Inventory) -> PlannedInstance:
    """The planned vrrp_instance whose VRRP state gives each node its sync role:
    sync_daemon.vrrp_instance, else the first."""
    planned = plan(inv)
    name = inv.sync_daemon.vrrp_instance if inv.sync_daemon else None
    return next((p for p in planned if p.source.name == name), planned[0])


def role(holds_vip: bool) -> str:
    return "master" if holds_vip else "backup"


def start_command(sd: SyncDaemon, role_: str) -> str:
    other = "backup" if role_ == "master" else "master"
    # stop the other role first: after a failover a node must switch, not run both
    return (f"ipvsadm --stop-daemon {other} 2>/dev/null; "
            f"ipvsadm -L --daemon | grep -q '^{role_} sync daemon' || "
            f"ipvsadm --start-daemon {role_} --mcast-interface {shlex.quote(sd.interface)} --syncid {sd.syncid}")


STOP = "ipvsadm --stop-daemon master 2>/dev/null; ipvsadm --stop-daemon backup 2>/dev/null; true"


def describe(inv: Inventory) -> str:
    sd = inv.sync_daemon
    if sd is None:
        return "no sync_daemon in the inventory"
    if sd.mode == "keepalived":
        return (f"keepalived runs it (lvs_sync_daemon {sd.interface} ... id {sd.syncid}); "
                "master/backup follows VRRP state")
    if sd.mode == "notify":
        return (f"keepalived's notify runs lbtk-ipvs-sync ({sd.interface}, syncid {sd.syncid}); "
                "master/backup follows VRRP state")
    return f"static: ipvsadm --start-daemon on {sd.interface}, syncid {sd.syncid}"
