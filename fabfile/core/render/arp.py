"""ARP sysctls and the VIP-on-lo unit: what makes a node a correct LVS-DR real server.

IPv6 needs no sysctl for this: Linux answers a neighbour solicitation only for an address on
the interface the solicitation came in on (net/ipv6/ndisc.c, ndisc_recv_ns: ipv6_get_ifaddr(...,
dev, strict=1), then anycast and proxy_ndp only), so a VIP/128 on lo is never announced on eth0,
and only the director, which holds the VIP on eth0, answers for it. There is no IPv6 rp_filter
sysctl either. So an IPv6 DR VIP adds its address on lo and nothing else; the IPv4 ARP sysctls are
written only for IPv4 DR VIPs.
"""
from __future__ import annotations

from fabfile.core.desired import dr_vips, sysctls
from fabfile.model.schema import Inventory, Node
from fabfile.core.phase import Phase
from fabfile.core.render import Facts, NodeFile, Templates, templates

SYSCTL = "/etc/sysctl.d/60-lbtk-lvs.conf"
VIP_UNIT = "/etc/systemd/system/lbtk-vip-lo.service"
VIP_UNIT_NAME = "lbtk-vip-lo.service"


def files(inv: Inventory, node: Node, facts: Facts, t: Templates | None = None) -> list[NodeFile]:
    t = t or templates(inv)
    vips = dr_vips(inv, node)
    values = sysctls(inv, node, facts.ipvs)
    out = [NodeFile(SYSCTL, t("sysctl.conf.j2", path=SYSCTL, values=values) if values else None,
                    Phase.ARP)]
    out.append(NodeFile(VIP_UNIT, t("vip-lo.service.j2", vips=vips) if vips else None, Phase.ARP))
    return out

