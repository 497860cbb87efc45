"""The always-on IPVS sync daemons (sync_daemon mode `both`): one oneshot unit per director that
starts the master and the backup daemon once and never flips them on a VRRP transition."""
from __future__ import annotations

from ..model import Inventory, Node
from . import Facts, NodeFile, template

UNIT = "/etc/systemd/system/lbtk-ipvs-sync.service"
UNIT_NAME = "lbtk-ipvs-sync.service"


def files(inv: Inventory, node: Node, facts: Facts) -> list[NodeFile]:
    sd = inv.sync_daemon
    if not (sd and sd.mode == "both" and facts.ipvs):
        return [NodeFile(UNIT, None, "sync-daemon")]
    return [NodeFile(UNIT, template("ipvs-sync.service.j2", interface=sd.interface, syncid=sd.syncid),
                     "sync-daemon")]
