"""sync_daemon mode `notify`: the script keepalived's `notify` runs to flip the IPVS sync daemons
outside its VRRP process (model.SyncDaemon says why)."""
from __future__ import annotations

from fabfile.model.schema import Inventory, Node
from fabfile.core.sync_rules import sync_instance
from fabfile.core.phase import Phase
from fabfile.core.render import Facts, NodeFile, Templates, templates

SCRIPT = "/usr/local/sbin/lbtk-ipvs-sync"
RECONCILE = SCRIPT          # no arguments: the role from whether this node holds the VIP now


def wanted(inv: Inventory, facts: Facts) -> bool:
    """Does this node run lbtk-ipvs-sync from keepalived's notify (mode notify, kernel with IPVS)?"""
    return bool(inv.sync_daemon and inv.sync_daemon.mode == "notify" and facts.ipvs)


def files(inv: Inventory, node: Node, facts: Facts, t: Templates | None = None) -> list[NodeFile]:
    t = t or templates(inv)
    if not wanted(inv, facts):
        return [NodeFile(SCRIPT, None, Phase.SYNC_DAEMON)]
    sd = inv.sync_daemon
    inst = sync_instance(inv)
    return [NodeFile(SCRIPT, t("ipvs-sync.sh.j2", instance=inst.name, vip=inst.vips[0],
                                      vrrp_interface=inv.interface_of(node, inst.source),
                                      interface=sd.interface, syncid=sd.syncid),
                     Phase.SYNC_DAEMON, mode=0o755)]
