"""What the inventory wants a node's kernel and IPVS to hold, as typed values. Pure.

The renderers (fabfile/core/render/) write these into files; the checks (fabfile/core/checks.py)
compare the live node with them. Neither reads the other's data: the Jinja2 context is built for
the templates only, the checks read this module.
"""
from __future__ import annotations

from dataclasses import dataclass

from fabfile.model.fields import family_of
from fabfile.model.schema import Inventory, Node, RealServer, VirtualServer
from fabfile.model.virtual_servers import GroupMember
from fabfile.parsers import join_host_port


@dataclass(frozen=True)
class WantedRealServer:
    address: str                # of the service's family (a node's address for that family)
    port: int | None            # the real server's port, else the service's (a group's: its own or None)
    weight: int
    source: RealServer | None   # the inventory entry (its health checks); None: the sorry server


@dataclass(frozen=True)
class WantedService:
    """One virtual_servers entry as keepalived loads it into IPVS (a group's entry: once per
    address and fwmark of the group in `ipvs_services`)."""
    vip: str | None
    port: int | None
    fwmark: int | None
    protocol: str
    family: int
    real_servers: tuple[WantedRealServer, ...]
    source: VirtualServer
    group: str | None = None                 # virtual_server group NAME
    sorry: WantedRealServer | None = None    # sorry_server: what IPVS holds when the quorum is lost

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
        return {self.endpoint(rs): None if rs.source.dynamic_weight else rs.weight for rs in self.real_servers}

    def endpoint(self, rs: WantedRealServer) -> str:
        """How ipvsadm -L -n shows a real server (or the sorry server) of this service."""
        return join_host_port(rs.address, self.endpoint_port(rs))

    def endpoint_port(self, rs: WantedRealServer) -> int:
        """The port IPVS holds for a real server of this service: a fwmark service's are 0, a group
        member's are keepalived's already (`_member`)."""
        return rs.port if self.group else 0 if self.fwmark else rs.port

    @property
    def sorry_endpoint(self) -> str | None:
        return None if self.sorry is None else self.endpoint(self.sorry)


def services(inv: Inventory) -> list[WantedService]:
    """Every virtual server, in inventory order."""
    out = []
    for i, vs in enumerate(inv.virtual_servers):
        rss = tuple(WantedRealServer(inv.real_server_address(rs, vs), rs.port or vs.port, rs.weight, rs)
                    for rs in vs.real_servers)
        sorry = None
        if vs.sorry_server is not None:
            sorry = WantedRealServer(vs.sorry_server.address, vs.sorry_server.port or vs.port, 1, None)
        out.append(WantedService(vs.vip, vs.port, inv.fwmark_of(i), vs.protocol, vs.family, rss, vs,
                                 vs.group, sorry))
    return out


def ipvs_services(inv: Inventory) -> list[WantedService]:
    """The IPVS services keepalived loads: every virtual server, a group's once per address of
    its members (a range is one service per address) and per fwmark."""
    groups = {g.name: g for g in inv.virtual_server_groups}
    out = []
    for s in services(inv):
        if s.group is None:
            out.append(s)
        else:
            out += [_member(s, m, a) for m in groups[s.group].parsed for a in (m.addresses or (None,))]
    return out


def _member(s: WantedService, m: GroupMember, address: str | None) -> WantedService:
    """A group's virtual server at one member (keepalived's ipvswrapper.c): a DR or TUN real
    server takes the member's port (a fwmark's: 0), a NAT one its own."""
    vs = s.source

    def at(rs: WantedRealServer | None, method: str) -> WantedRealServer | None:
        if rs is None:
            return None
        port = rs.port if method == "NAT" else (m.port or 0)
        return WantedRealServer(rs.address, port, rs.weight, rs.source)
    return WantedService(address, m.port, m.fwmark, s.protocol, m.family or s.family,
                         tuple(at(rs, vs.lb_kind) for rs in s.real_servers), vs, s.group,
                         at(s.sorry, vs.sorry_server_lvs_method or vs.lb_kind))


def ipvs_table(inv: Inventory) -> dict[str, dict[str, int | None]]:
    """{service key: {"addr:port": weight}}: the IPVS table keepalived will load, keys as ipvsadm shows."""
    return {s.key: s.pool for s in ipvs_services(inv)}


def sorry_servers(inv: Inventory) -> dict[str, str]:
    """{service key: "addr:port"}: the sorry server IPVS holds in a service whose quorum is lost."""
    return {s.key: s.sorry_endpoint for s in ipvs_services(inv) if s.sorry is not None}


def dr_vips(inv: Inventory, node: Node) -> list[str]:
    """VIPs this node holds on lo: those it serves as a DR real server, and those a router brings
    to every director (vip_managed_by: external)."""
    return list(dict.fromkeys(external_vips(inv) + real_server_vips(inv, node)))


def external_vips(inv: Inventory) -> list[str]:
    """Addresses a router brings to every director (vip_managed_by: external): each holds them on lo."""
    return list(dict.fromkeys(a for vs in inv.virtual_servers if vs.vip_managed_by == "external"
                              for a in service_addresses(inv, vs)))


def real_server_vips(inv: Inventory, node: Node) -> list[str]:
    """VIPs this node serves as a DR real server."""
    out = []
    for vs in inv.virtual_servers:
        if vs.lb_kind == "DR" and any(inv.real_server_address(rs, vs) in node.ips.values() for rs in vs.real_servers):
            out += service_addresses(inv, vs)
    return list(dict.fromkeys(out))


def service_addresses(inv: Inventory, vs: VirtualServer) -> list[str]:
    """The addresses a virtual server answers on: its vip, or its group's members' (none for a
    fwmark alone)."""
    if vs.vip is not None:
        return [vs.vip]
    group = next((g for g in inv.virtual_server_groups if g.name == vs.group), None)
    return [a for m in group.parsed for a in m.addresses] if group else []


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
    if ipvs and inv.virtual_servers:
        # A backup director that is also a DR real server holds the connections the master synced
        # to it, and IPVS looks connections up before any fwmark: when a client reuses a source
        # port, the backup forwards the master's packet by its stale copy to another node, which
        # sends it back: a loop between directors (the kernel tier saw 26 of 1,500 requests time
        # out; 0 with this). backup_only turns the director off while the backup daemon runs.
        # Stated either way: a sysctl file that merely drops the line leaves the kernel's 1 in place,
        # and a director whose inventory no longer wants it would stay off as a backup (the kernel
        # tier's two-legged NAT pair, switched from kernel.yaml, answered a failover locally)
        out["net.ipv4.vs.backup_only"] = "1" if inv.sync_daemon and real_server_vips(inv, node) else "0"
    return out
