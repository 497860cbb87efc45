"""What the inventory wants a node's kernel and IPVS to hold, as typed values. Pure.

The renderers (fabfile/core/render/) write these into files; the checks (fabfile/core/checks.py)
compare the live node with them. Neither reads the other's data: the Jinja2 context is built for
the templates only, the checks read this module.
"""
from __future__ import annotations

from dataclasses import dataclass

from fabfile.model.fields import family_of
from fabfile.model.schema import Inventory, Node, RealServer, VirtualServer
from fabfile.parsers import join_host_port


@dataclass(frozen=True)
class WantedRealServer:
    address: str                # of the service's family (a node's address for that family)
    port: int                   # the real server's port, else the service's
    weight: int
    source: RealServer          # the inventory entry (its health checks)


@dataclass(frozen=True)
class WantedService:
    """One virtual_servers entry as keepalived loads it into IPVS."""
    vip: str | None
    port: int | None
    fwmark: int | None
    protocol: str
    family: int
    real_servers: tuple[WantedRealServer, ...]
    source: VirtualServer

    @property
    def key(self) -> str:
        """How ipvsadm -L -n names the service: 'TCP 10.0.0.1:80', 'TCP [fd00::1]:80', 'FWM 2', 'FWM 2 IPv6'."""
        if self.fwmark:
            return f"FWM {self.fwmark}" + (" IPv6" if self.family == 6 else "")
        return f"{self.protocol} {join_host_port(self.vip, self.port)}"

    @property
    def pool(self) -> dict[str, int | None]:
        """{"addr:port": weight} as ipvsadm -L -n shows the real servers (fwmark ones with port 0);
        every real server is wanted whatever kinds of checker it has (keepalived keeps it while they
        all pass); weight None: keepalived sets it at run time (misc_dynamic, a FILE_CHECK's file)."""
        return {join_host_port(rs.address, 0 if self.fwmark else rs.port):
                None if rs.source.dynamic_weight else rs.weight for rs in self.real_servers}


def services(inv: Inventory) -> list[WantedService]:
    """Every virtual server, in inventory order."""
    out = []
    for i, vs in enumerate(inv.virtual_servers):
        rss = tuple(WantedRealServer(inv.real_server_address(rs, vs), rs.port or vs.port, rs.weight, rs)
                    for rs in vs.real_servers)
        out.append(WantedService(vs.vip, vs.port, inv.fwmark_of(i), vs.protocol, vs.family, rss, vs))
    return out


def ipvs_table(inv: Inventory) -> dict[str, dict[str, int | None]]:
    """{service key: {"addr:port": weight}}: the IPVS table keepalived will load, keys as ipvsadm shows."""
    return {s.key: s.pool for s in services(inv)}


def dr_vips(inv: Inventory, node: Node) -> list[str]:
    """VIPs this node serves as a DR real server (it must hold them on lo)."""
    out = []
    for vs in inv.virtual_servers:
        if vs.lb_kind == "DR" and vs.vip and any(
                inv.real_server_address(rs, vs) in node.ips.values() for rs in vs.real_servers):
            out.append(vs.vip)
    return list(dict.fromkeys(out))


def sysctl_devices(inv: Inventory, node: Node) -> list[str]:
    return list(dict.fromkeys(["all", inv.interface_of(node), "lo"]))


def sysctls(inv: Inventory, node: Node, ipvs: bool = True) -> dict[str, str]:
    """The kernel values the node needs (the sysctl file sets exactly these; verify checks them).
    net.ipv4.vs.* exist only where the kernel has IPVS (`ipvs`)."""
    out = {}
    if any(family_of(v) == 4 for v in dr_vips(inv, node)):
        for dev in sysctl_devices(inv, node):
            out[f"net.ipv4.conf.{dev}.arp_ignore"] = "1"
            out[f"net.ipv4.conf.{dev}.arp_announce"] = "2"
        for dev in sysctl_devices(inv, node):
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
