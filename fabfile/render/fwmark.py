"""The fwmark + MAC-match fix for directors that are also LVS-DR real servers (field notes)."""
from __future__ import annotations

from ..model import Inventory, Node
from . import NodeFile, Templates, templates

RULES = "/etc/lbtk/fwmark.rules"
UNIT = "/etc/systemd/system/lbtk-fwmark.service"
UNIT_NAME = "lbtk-fwmark.service"


def marks(inv: Inventory) -> list[dict]:
    return [dict(vip=vs.vip, port=vs.port, protocol=vs.protocol, fwmark=inv.fwmark_of(i))
            for i, vs in enumerate(inv.virtual_servers) if inv.fwmark_of(i) and vs.vip]


def snats(inv: Inventory) -> list[dict]:
    """One-arm LVS-NAT virtual servers: the director masquerades their clients."""
    return [dict(vip=vs.vip, port=vs.port, protocol=vs.protocol)
            for vs in inv.virtual_servers if vs.snat and vs.vip]


def files(inv: Inventory, node: Node, t: Templates | None = None) -> list[NodeFile]:
    t = t or templates(inv)
    m, sn = marks(inv), snats(inv)
    if not m and not sn:
        return [NodeFile(RULES, None, "lvs"), NodeFile(UNIT, None, "lvs")]
    peers = [n.mac.lower() for n in inv.nodes if n.name != node.name and n.mac]
    return [NodeFile(RULES, t("fwmark.rules.j2", peer_macs=peers, marks=m, snats=sn), "lvs"),
            NodeFile(UNIT, t("fwmark.service.j2", rules=RULES, marks=m, snats=sn), "lvs")]
