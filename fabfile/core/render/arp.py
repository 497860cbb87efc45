"""ARP sysctls and the VIP-on-lo unit: what makes a node a correct LVS-DR real server.

IPv6 needs no sysctl for this: Linux answers a neighbour solicitation only for an address on
the interface the solicitation came in on (net/ipv6/ndisc.c, ndisc_recv_ns: ipv6_get_ifaddr(...,
dev, strict=1), then anycast and proxy_ndp only), so a VIP/128 on lo is never announced on eth0,
and only the director, which holds the VIP on eth0, answers for it. There is no IPv6 rp_filter
sysctl either. So an IPv6 DR VIP adds its address on lo and nothing else; the IPv4 ARP sysctls are
written only for IPv4 DR VIPs.
"""
from __future__ import annotations

from fabfile.model.schema import Inventory, Node, family_of
from fabfile.core.phase import Phase
from fabfile.core.render import Facts, NodeFile, Templates, templates

SYSCTL = "/etc/sysctl.d/60-lbtk-lvs.conf"
VIP_UNIT = "/etc/systemd/system/lbtk-vip-lo.service"
VIP_UNIT_NAME = "lbtk-vip-lo.service"


def dr_vips(inv: Inventory, node: Node) -> list[str]:
    """VIPs this node serves as a DR real server (it must hold them on lo)."""
    out = []
    for vs in inv.virtual_servers:
        if vs.lb_kind == "DR" and vs.vip and any(
                inv.real_server_address(rs, vs) in node.ips.values() for rs in vs.real_servers):
            out.append(vs.vip)
    return list(dict.fromkeys(out))


def wanted_sysctls(inv: Inventory, node: Node, ipvs: bool = True) -> dict[str, str]:
    """The values the sysctl file sets: the verify phase checks exactly these. net.ipv4.vs.*
    exist only where the kernel has IPVS (`ipvs`)."""
    out = {}
    if any(family_of(v) == 4 for v in dr_vips(inv, node)):
        for dev in devices(inv, node):
            out[f"net.ipv4.conf.{dev}.arp_ignore"] = "1"
            out[f"net.ipv4.conf.{dev}.arp_announce"] = "2"
        for dev in devices(inv, node):
            out[f"net.ipv4.conf.{dev}.rp_filter"] = "0"
    if any(vs.lb_kind == "NAT" and vs.family == 4 for vs in inv.virtual_servers):
        out["net.ipv4.ip_forward"] = "1"
    if any(vs.lb_kind == "NAT" and vs.family == 6 for vs in inv.virtual_servers):
        out["net.ipv6.conf.all.forwarding"] = "1"   # an IPv6 NAT director routes the replies
    if ipvs and any(vs.snat for vs in inv.virtual_servers):
        out["net.ipv4.vs.conntrack"] = "1"       # netfilter NAT sees IPVS connections (one-arm NAT)
    if ipvs and inv.virtual_servers:
        # A packet of a connection whose real server keepalived removed (a failed check, a
        # switched pool) is dropped by default, retransmits included: the client hangs until it
        # gives up. With 1 the kernel (6.1) expires that connection and schedules the packet again.
        out["net.ipv4.vs.expire_nodest_conn"] = "1"
    if ipvs and inv.sync_daemon and dr_vips(inv, node):
        # A backup director that is also a DR real server holds the connections the master synced
        # to it, and IPVS looks connections up before any fwmark: when a client reuses a source
        # port, the backup forwards the master's packet by its stale copy to another node, which
        # sends it back: a loop between directors (the kernel tier saw 26 of 1,500 requests time
        # out; 0 with this). backup_only turns the director off while the backup daemon runs.
        out["net.ipv4.vs.backup_only"] = "1"
    return out


def devices(inv: Inventory, node: Node) -> list[str]:
    return list(dict.fromkeys(["all", inv.interface_of(node), "lo"]))


def files(inv: Inventory, node: Node, facts: Facts, t: Templates | None = None) -> list[NodeFile]:
    t = t or templates(inv)
    vips = dr_vips(inv, node)
    values = wanted_sysctls(inv, node, facts.ipvs)
    out = [NodeFile(SYSCTL, t("sysctl.conf.j2", path=SYSCTL, values=values) if values else None,
                    Phase.ARP)]
    out.append(NodeFile(VIP_UNIT, t("vip-lo.service.j2", vips=vips) if vips else None, Phase.ARP))
    return out

