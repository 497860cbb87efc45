"""The fwmark + MAC-match fix for directors that are also LVS-DR real servers (field notes), and
one-arm LVS-NAT's masquerade: iptables rules for IPv4 virtual servers, ip6tables rules for IPv6
ones (the same rules, /128 for /32), both applied by one unit."""
from __future__ import annotations

from fabfile.model.schema import Inventory, Node
from fabfile.core.phase import Phase
from fabfile.core.render import NodeFile, Templates, templates

RULES = "/etc/lbtk/fwmark.rules"
RULES6 = "/etc/lbtk/fwmark6.rules"
UNIT = "/etc/systemd/system/lbtk-fwmark.service"
UNIT_NAME = "lbtk-fwmark.service"
FAMILIES = {4: (RULES, "iptables", 32), 6: (RULES6, "ip6tables", 128)}


def marks(inv: Inventory, family: int | None = None) -> list[dict]:
    return [dict(vip=vs.vip, port=vs.port, protocol=vs.protocol, fwmark=inv.fwmark_of(i))
            for i, vs in enumerate(inv.virtual_servers) if inv.fwmark_of(i) and vs.vip
            and family in (None, vs.family)]


def snats(inv: Inventory, family: int | None = None) -> list[dict]:
    """One-arm LVS-NAT virtual servers: the director masquerades their clients."""
    return [dict(vip=vs.vip, port=vs.port, protocol=vs.protocol)
            for vs in inv.virtual_servers if vs.snat and vs.vip and family in (None, vs.family)]


def files(inv: Inventory, node: Node, t: Templates | None = None) -> list[NodeFile]:
    t = t or templates(inv)
    peers = [n.mac.lower() for n in inv.nodes if n.name != node.name and n.mac]
    out, tables = [], {}
    for family, (path, tool, plen) in FAMILIES.items():
        m, sn = marks(inv, family), snats(inv, family)
        if m or sn:
            tables[tool] = dict(rules=path, marks=m, snats=sn)
        out.append(NodeFile(path, t("fwmark.rules.j2", peer_macs=peers, marks=m, snats=sn, tool=tool, plen=plen)
                            if m or sn else None, Phase.LVS))
    if not tables:
        return out + [NodeFile(UNIT, None, Phase.LVS)]
    if "iptables" in tables and "ip6tables" not in tables:   # IPv4 only: the unit as it always was
        v4 = tables["iptables"]
        return out + [NodeFile(UNIT, t("fwmark.service.j2", rules=RULES, marks=v4["marks"], snats=v4["snats"]),
                               Phase.LVS)]
    return out + [NodeFile(UNIT, t("fwmark6.service.j2", tables=tables), Phase.LVS)]
