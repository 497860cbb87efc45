"""The inventory as a typed model.

Keys are keepalived.conf's own names (virtual_router_id, advert_int, lb_algo, ...), so an
operator reads an inventory without a manual. Everything here is pure: no I/O except the
secret look-up, which lives in fabfile.secrets. Rules that span several fields (duplicate
priorities, DR port remapping, VIP outside every subnet ...) are model validators that raise
`FieldProblem` so the loader can name the exact field path in its one-line error.
"""
from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import (BaseModel, ConfigDict, Field, PositiveInt, field_validator,
                      model_validator)

LB_ALGOS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh")
LB_KINDS = ("NAT", "DR", "TUN")


class FieldProblem(ValueError):
    """A cross-field rule broken at `loc` (a tuple path into the inventory)."""

    def __init__(self, loc: tuple, message: str, fix: str):
        super().__init__(message)
        self.loc, self.message, self.fix = loc, message, fix


class Strict(BaseModel):
    # extra="forbid" turns every typo in the inventory into an "unknown key" error.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


IPv4 = Annotated[str, Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}$")]


def _check_ip(v: str) -> str:
    ipaddress.IPv4Address(v)  # raises ValueError with a readable message
    return v


class SSH(Strict):
    user: str = "root"
    port: int = Field(22, ge=1, le=65535)
    key_filename: str | None = None
    known_hosts: str | None = None
    connect_timeout: float = Field(5, gt=0)


class Defaults(Strict):
    interface: str = "eth0"
    ssh: SSH = SSH()


class Node(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    host: str
    priority: int = Field(ge=1, le=254)
    state: Literal["MASTER", "BACKUP"] | None = None
    interface: str | None = None
    prefixlen: int = Field(24, ge=8, le=32)   # the node's subnet, for the VIP-in-subnet rule
    mac: str | None = Field(None, pattern=r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
    ssh: SSH | None = None

    _ip = field_validator("host")(_check_ip)

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.ip_interface(f"{self.host}/{self.prefixlen}").network


class Authentication(Strict):
    auth_type: Literal["PASS", "AH"] = "PASS"
    auth_pass_env: str | None = None
    auth_pass_file: str | None = None
    generate: bool = False  # create a random secret file when missing (the lab's own)

    @model_validator(mode="after")
    def _has_source(self):
        if not (self.auth_pass_env or self.auth_pass_file):
            raise FieldProblem(("auth_pass_env",), "no source for the VRRP secret",
                               "set auth_pass_env (an environment variable) or auth_pass_file")
        return self


class VrrpScript(Strict):
    script: str
    interval: PositiveInt = 2
    weight: int = Field(0, ge=-253, le=253)
    fall: PositiveInt | None = None
    rise: PositiveInt | None = None
    timeout: PositiveInt | None = None
    user: str | None = None


class VrrpInstance(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    virtual_router_id: int = Field(ge=1, le=255)
    advert_int: float = Field(1, gt=0, le=255)
    vrrp_version: Literal[2, 3] = 2
    interface: str | None = None
    nopreempt: bool = False
    preempt_delay: int | None = Field(None, ge=0, le=1000)
    unicast: bool = True
    authentication: Authentication | None = None
    virtual_ipaddress: list[str] = Field(min_length=1)
    notify_master: str | None = None
    notify_backup: str | None = None
    notify_fault: str | None = None
    notify: str | None = None
    track_script: list[str] = []
    owner: str | None = None  # multi-master: the node that is MASTER of this instance
    garp_master_delay: int | None = Field(None, ge=0)

    @field_validator("virtual_ipaddress")
    @classmethod
    def _vips(cls, v: list[str]) -> list[str]:
        for a in v:
            _check_ip(a.split("/")[0])
        return v

    @model_validator(mode="after")
    def _rules(self):
        if self.nopreempt and self.preempt_delay is not None:
            raise FieldProblem(("preempt_delay",), "nopreempt cannot be combined with preempt_delay",
                               "keep one of them (keepalived ignores preempt_delay under nopreempt)")
        if self.vrrp_version == 2 and self.advert_int != int(self.advert_int):
            raise FieldProblem(("advert_int",), f"advert_int {self.advert_int} is fractional, VRRPv2 "
                               "takes whole seconds", "use a whole number, or set vrrp_version: 3")
        return self

    @property
    def vips(self) -> list[str]:
        return [a.split("/")[0] for a in self.virtual_ipaddress]


class TcpCheck(Strict):
    connect_timeout: PositiveInt = 3
    retry: int = Field(3, ge=0)
    delay_before_retry: PositiveInt = 3
    connect_port: int | None = Field(None, ge=1, le=65535)


class HttpGet(Strict):
    path: str = Field("/", pattern=r"^/")
    digest: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    status_code: int | None = Field(None, ge=100, le=599)
    connect_timeout: PositiveInt = 3
    retry: int = Field(3, ge=0)
    delay_before_retry: PositiveInt = 3
    connect_port: int | None = Field(None, ge=1, le=65535)

    @model_validator(mode="after")
    def _expect(self):
        if self.digest is None and self.status_code is None:
            return self.model_copy(update={"status_code": 200})
        return self


class RealServer(Strict):
    node: str | None = None
    address: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    weight: int = Field(1, ge=0, le=65535)
    TCP_CHECK: TcpCheck | None = None
    HTTP_GET: HttpGet | None = None

    @model_validator(mode="after")
    def _one_target(self):
        if (self.node is None) == (self.address is None):
            raise FieldProblem(("node",), "a real server needs exactly one of node or address",
                               "name an inventory node (node: node1) or give address: A.B.C.D")
        if self.address is not None:
            _check_ip(self.address)
        if self.TCP_CHECK and self.HTTP_GET:
            raise FieldProblem(("HTTP_GET",), "a real server takes one health check",
                               "keep TCP_CHECK or HTTP_GET, not both")
        return self


class VirtualServer(Strict):
    vip: str | None = None
    fwmark: int | None = Field(None, ge=1, le=2**32 - 1)
    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP"] = "TCP"
    lb_algo: Literal["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh"] = "rr"
    lb_kind: Literal["NAT", "DR", "TUN"] = "DR"
    delay_loop: PositiveInt = 5
    persistence_timeout: int | None = Field(None, ge=1)
    persistence_granularity: str | None = None
    # Directors that are also DR real servers loop unless packets are marked (field notes).
    # true: apply the fwmark + MAC-match fix exactly when that topology is detected.
    director_fix: bool = True
    # one-arm LVS-NAT (real servers on the clients' subnet, no route back through the director):
    # the director also masquerades the client (iptables -m ipvs ... -j MASQUERADE, vs.conntrack=1),
    # so real servers reply to the director, which un-NATs. Only with lb_kind: NAT.
    snat: bool = False
    real_servers: list[RealServer] = Field(min_length=1)

    @model_validator(mode="after")
    def _rules(self):
        if self.vip is None and self.fwmark is None:
            raise FieldProblem(("vip",), "a virtual server needs vip (or fwmark)",
                               "add vip: A.B.C.D")
        if self.vip is not None:
            _check_ip(self.vip)
        if self.persistence_granularity is not None:
            try:
                ipaddress.IPv4Network(f"0.0.0.0/{self.persistence_granularity}")
            except ValueError:
                raise FieldProblem(("persistence_granularity",),
                                   f"{self.persistence_granularity!r} is not a netmask",
                                   "use a dotted netmask such as 255.255.255.0") from None
        if self.snat and self.lb_kind != "NAT":
            raise FieldProblem(("snat",), f"snat is for one-arm LVS-NAT, not lb_kind {self.lb_kind}",
                               "drop snat, or use lb_kind: NAT")
        if self.lb_kind == "DR":
            for i, rs in enumerate(self.real_servers):
                if rs.port is not None and rs.port != self.port:
                    raise FieldProblem(("real_servers", i, "port"),
                                       f"LVS-DR cannot remap ports: real server port {rs.port} "
                                       f"differs from virtual port {self.port}",
                                       f"set port: {self.port} (or drop it), or use lb_kind: NAT")
        return self


class SyncDaemon(Strict):
    interface: str
    syncid: int = Field(1, ge=0, le=255)
    # keepalived: lvs_sync_daemon in global_defs; keepalived's VRRP process flips master/backup
    #   itself. Hazard (caught by the kernel tier, Debian 12's 6.1 kernel + keepalived 2.2.7): a
    #   node that is MASTER for only a moment (3 directors, graceful failover: both backups take
    #   over, the lower one yields at once) stops a sync thread the kernel has not run yet; the
    #   kernel answers -EINTR with no netlink ACK and the VRRP process waits for ever, holding
    #   the VIP (split brain).
    # notify: keepalived's `notify` runs /usr/local/sbin/lbtk-ipvs-sync, which flips the daemons
    #   outside the VRRP process: serialized, newest state wins, every ipvsadm call under timeout.
    #   Recommended with 3 or more directors.
    # static: the toolkit runs ipvsadm --start-daemon with the role VRRP gives, as the seed does.
    mode: Literal["keepalived", "notify", "static"] = "keepalived"
    vrrp_instance: str | None = None


class Nginx(Strict):
    port: int = Field(80, ge=1, le=65535)
    page: str = "<h1>{node}</h1>\n<p>served by {node} ({host})</p>\n"


class GlobalDefs(Strict):
    router_id: str = "{node}"
    enable_script_security: bool = True
    script_user: str | None = "root"


class Install(Strict):
    # apt: the install phase apt-installs what is missing; detect: only report (the lab's
    # nodes have no route out, so they must already carry the packages)
    method: Literal["apt", "detect"] = "apt"


class Lab(Strict):
    bridge: str = "lbtk-br0"
    gateway: str = "10.189.0.1/24"
    # true: the kernel tier — the nodes run inside a qemu VM on Debian's kernel (real IPVS),
    # reached through `bridge` (fabfile/lab/kernel.py); false: systemd nodes on this host's kernel
    kernel: bool = False
    # a client network namespace on the lab bridge (lbtk-kclient) that `inv verify` sends real
    # requests from, through each VIP: order, counts per real server, IPVS counters
    client: str | None = None

    _client_ip = field_validator("client")(lambda v: v if v is None else _check_ip(v))


class Inventory(Strict):
    cluster: str
    defaults: Defaults = Defaults()
    nodes: list[Node] = Field(min_length=1)
    global_defs: GlobalDefs = GlobalDefs()
    multi_master: bool = False
    vrrp_scripts: dict[str, VrrpScript] = {}
    vrrp_instances: list[VrrpInstance] = Field(min_length=1)
    virtual_servers: list[VirtualServer] = []
    sync_daemon: SyncDaemon | None = None
    nginx: Nginx = Nginx()
    install: Install = Install()
    lab: Lab | None = None
    # a directory of Jinja2 templates that replace ours by name (keepalived.conf.j2 ...);
    # relative to inventories/. Whatever it renders is still checked by keepalived -t.
    templates_dir: str | None = None

    @model_validator(mode="after")
    def _cross_rules(self):
        _unique(self.nodes, "name", ("nodes",))
        _unique(self.nodes, "host", ("nodes",))
        _unique(self.nodes, "priority", ("nodes",),
                fix="give every node its own priority so the MASTER is deterministic")
        _unique(self.vrrp_instances, "virtual_router_id", ("vrrp_instances",),
                fix="each VRRP instance on a segment needs its own virtual_router_id")
        if self.multi_master:  # instance i of N uses virtual_router_id .. + N-1
            used: dict[int, int] = {}
            for i, vi in enumerate(self.vrrp_instances):
                for k in range(len(self.nodes)):
                    vrid = vi.virtual_router_id + k
                    if vrid > 255 or vrid in used:
                        raise FieldProblem(("vrrp_instances", i, "virtual_router_id"),
                                           f"multi_master needs virtual_router_id {vi.virtual_router_id}.."
                                           f"{vi.virtual_router_id + len(self.nodes) - 1}, "
                                           + ("past 255" if vrid > 255 else f"{vrid} is taken by vrrp_instances[{used[vrid]}]"),
                                           "leave a gap of one id per node between instances")
                    used[vrid] = i
        names = {n.name for n in self.nodes}
        for i, vi in enumerate(self.vrrp_instances):
            loc = ("vrrp_instances", i)
            for j, s in enumerate(vi.track_script):
                if s not in self.vrrp_scripts:
                    raise FieldProblem(loc + ("track_script", j), f"unknown vrrp_script {s!r}",
                                       f"define it under vrrp_scripts (known: {sorted(self.vrrp_scripts) or 'none'})")
            if vi.owner is not None and vi.owner not in names:
                raise FieldProblem(loc + ("owner",), f"unknown node {vi.owner!r}",
                                   f"use one of {sorted(names)}")
            if vi.nopreempt:
                for k, n in enumerate(self.nodes):
                    if n.state == "MASTER":
                        raise FieldProblem(("nodes", k, "state"),
                                           "nopreempt is silently cleared with state MASTER "
                                           f"(vrrp_instances[{i}] sets nopreempt)",
                                           "set state: BACKUP on every node when using nopreempt")
            for j, vip in enumerate(vi.vips):
                if not any(ipaddress.IPv4Address(vip) in n.network for n in self.nodes):
                    raise FieldProblem(loc + ("virtual_ipaddress", j),
                                       f"VIP {vip} is outside every node's subnet",
                                       "use an address in the nodes' subnet (or fix nodes[].prefixlen)")
            if self.multi_master and len(vi.vips) != len(self.nodes):
                raise FieldProblem(loc + ("virtual_ipaddress",),
                                   f"multi_master needs one VIP per node ({len(self.nodes)}), got {len(vi.vips)}",
                                   "list exactly one VIP per node; VIP i is owned by node i")
        for i, vs in enumerate(self.virtual_servers):
            for j, rs in enumerate(vs.real_servers):
                if rs.node is not None and rs.node not in names:
                    raise FieldProblem(("virtual_servers", i, "real_servers", j, "node"),
                                       f"unknown node {rs.node!r}", f"use one of {sorted(names)}")
            if self.director_fix_applies(vs):
                for k, n in enumerate(self.nodes):
                    if n.mac is None:
                        raise FieldProblem(("nodes", k, "mac"),
                                           f"{n.name} is a director and a DR real server of "
                                           f"virtual_servers[{i}]: the fwmark fix needs its MAC",
                                           "add mac: (from `ip link show`) or set director_fix: false")
        if self.sync_daemon and self.sync_daemon.vrrp_instance:
            if self.sync_daemon.vrrp_instance not in {v.name for v in self.vrrp_instances}:
                raise FieldProblem(("sync_daemon", "vrrp_instance"),
                                   f"unknown vrrp_instance {self.sync_daemon.vrrp_instance!r}",
                                   "name one of vrrp_instances[].name")
        if self.sync_daemon and self.sync_daemon.mode == "notify":
            name = self.sync_daemon.vrrp_instance or self.vrrp_instances[0].name
            i, vi = next((i, v) for i, v in enumerate(self.vrrp_instances) if v.name == name)
            if vi.notify:
                raise FieldProblem(("vrrp_instances", i, "notify"),
                                   "sync_daemon mode notify uses this instance's notify for lbtk-ipvs-sync",
                                   "call your script from notify_master/notify_backup/notify_fault, "
                                   "or set sync_daemon.mode: keepalived")
        return self

    # -- derived facts, one place each -------------------------------------------------

    @property
    def templates_path(self) -> str | None:
        if self.templates_dir is None:
            return None
        from pathlib import Path
        p = Path(self.templates_dir)
        return str(p if p.is_absolute() else Path(__file__).resolve().parent.parent / "inventories" / p)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def interface_of(self, node: Node, vi: VrrpInstance | None = None) -> str:
        return (vi and vi.interface) or node.interface or self.defaults.interface

    def ssh_of(self, node: Node) -> SSH:
        return node.ssh or self.defaults.ssh

    def real_server_address(self, rs: RealServer) -> str:
        return self.node(rs.node).host if rs.node else rs.address

    def director_fix_applies(self, vs: VirtualServer) -> bool:
        """DR virtual server whose real servers include the directors themselves."""
        if not vs.director_fix or vs.lb_kind != "DR" or vs.vip is None:
            return False
        return any(rs.node is not None for rs in vs.real_servers)

    def fwmark_of(self, index: int) -> int | None:
        vs = self.virtual_servers[index]
        if vs.fwmark is not None:
            return vs.fwmark
        return index + 1 if self.director_fix_applies(vs) else None


def _unique(items, attr: str, loc: tuple, fix: str | None = None) -> None:
    seen: dict = {}
    for i, it in enumerate(items):
        v = getattr(it, attr)
        if v in seen:
            raise FieldProblem(loc + (i, attr),
                               f"duplicate {attr} {v!r} (also {loc[-1]}[{seen[v]}])",
                               fix or f"give each entry its own {attr}")
        seen[v] = i
