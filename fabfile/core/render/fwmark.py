"""lbtk's netfilter rules, applied by one unit (lbtk-fwmark.service, phase lvs: before keepalived's
phase, so a changed peer list is admitted before keepalived.conf names it):

- the fwmark + MAC-match fix for directors that are also LVS-DR real servers (field notes);
- one-arm LVS-NAT's masquerade;
- `vrrp_firewall: true` instances: VRRP (IP protocol 112) on the instance's interface only from
  the other nodes, everything else of protocol 112 there dropped.

iptables rules for IPv4, ip6tables rules for IPv6 (the same rules, /128 for /32)."""
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


def vrrp_admits(inv: Inventory, node: Node, family: int) -> list[dict]:
    """{interface, peers} for each interface that carries a `vrrp_firewall` instance of `family` on
    this node: only the peers' addresses may send VRRP there."""
    out: dict[str, list[str]] = {}
    for vi in inv.vrrp_instances:
        if vi.vrrp_firewall and vi.family == family:
            peers = out.setdefault(inv.interface_of(node, vi), [])
            peers += [a for n in inv.nodes if n.name != node.name
                      for a in [inv.ip_on(n, inv.interface_of(n, vi), family)] if a not in peers]
    return [dict(interface=i, peers=p) for i, p in out.items()]


def files(inv: Inventory, node: Node, t: Templates | None = None) -> list[NodeFile]:
    t = t or templates(inv)
    peers = [n.mac.lower() for n in inv.nodes if n.name != node.name and n.mac]
    out, tables = [], {}
    for family, (path, tool, plen) in FAMILIES.items():
        m, sn, vr = marks(inv, family), snats(inv, family), vrrp_admits(inv, node, family)
        if m or sn or vr:
            tables[tool] = dict(rules=path, marks=m, snats=sn, vrrp=vr)
        out.append(NodeFile(path, t("fwmark.rules.j2", peer_macs=peers, marks=m, snats=sn, vrrp=vr, tool=tool,
                                    plen=plen) if m or sn or vr else None, Phase.LVS))
    if not tables:
        return out + [NodeFile(UNIT, None, Phase.LVS)]
    vrrp_tools = [FAMILIES[f][1] for f in sorted({vi.family for vi in inv.vrrp_instances})]
    if "iptables" in tables and "ip6tables" not in tables:   # IPv4 only: the unit as it always was
        v4 = tables["iptables"]
        return out + [NodeFile(UNIT, t("fwmark.service.j2", rules=RULES, marks=v4["marks"], snats=v4["snats"],
                                       vrrp=v4["vrrp"], vrrp_tools=vrrp_tools), Phase.LVS)]
    return out + [NodeFile(UNIT, t("fwmark6.service.j2", tables=tables, vrrp_tools=vrrp_tools), Phase.LVS)]
