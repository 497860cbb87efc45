"""The inventory as a typed model.

Keys are keepalived.conf's own names (virtual_router_id, advert_int, lb_algo, ...), so an
operator reads an inventory without a manual. Everything here is pure: no I/O except the
secret look-up, which lives in fabfile.secrets. Rules that span several fields (duplicate
priorities, DR port remapping, VIP outside every subnet ...) are model validators that raise
`FieldProblem` so the loader can name the exact field path in its one-line error.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal, get_args

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr, field_validator,
                      model_validator)

# every scheduler keepalived 2.2.7 accepts (checked with keepalived -t; IPVS modules ip_vs_NAME)
LB_ALGOS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos")
LB_KINDS = ("NAT", "DR", "TUN")
IFNAMSIZ = 16               # Linux: an interface name is at most 15 bytes
VIP_OPTIONS = ("dev", "label", "brd", "scope")   # what may follow an address in virtual_ipaddress
# keepalived ends a word at whitespace, '#' and '!' (the rest of the line is a comment), and
# takes '{' '}' as words of their own; '"' opens a quoted string
WORD_BREAKERS = set(' \t#!{}"\'\\')


class FieldProblem(ValueError):
    """A cross-field rule broken at `loc` (a tuple path into the inventory)."""

    def __init__(self, loc: tuple, message: str, fix: str):
        super().__init__(message)
        self.loc, self.message, self.fix = loc, message, fix


class FieldProblems(ValueError):
    """Several rules broken at once: every one is reported, one line each."""

    def __init__(self, problems: list[FieldProblem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def keepalived_word(v: str, what: str = "value") -> str:
    """A value keepalived must read as ONE word (names, router_id, paths): no whitespace,
    '#', '!', braces or quotes, printable ASCII only."""
    bad = sorted({c for c in v if c in WORD_BREAKERS or not (c.isascii() and c.isprintable())})
    if not v:
        raise ValueError(f"empty {what}")
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise ValueError(f"{what} {v!r} contains {shown}: keepalived would split it or cut it at a comment")
    return v


def quoted_string(v: str, what: str = "command") -> str:
    """A command keepalived reads in double quotes (vrrp_script script, notify*): no '"', no
    newline, no '#' or '!' (keepalived strips comments before it reads the quotes)."""
    bad = sorted({c for c in v if c in '"#!\n\r' or not c.isprintable()})
    if not v.strip():
        raise ValueError(f"empty {what}")
    if bad:
        raise ValueError(f"{what} {v!r} contains {' '.join(repr(c) for c in bad)}: keepalived cannot read it "
                         "inside its quotes — put the command in a script file and name that")
    return v


def check_ifname(v: str | None) -> str | None:
    """Linux's rule for interface names (dev_valid_name): 1 to 15 bytes, no '/', ':' or whitespace."""
    if v is None:
        return v
    if not v or len(v.encode()) >= IFNAMSIZ or v in (".", "..") or any(c in "/: \t\n" for c in v) \
            or not v.isascii() or not v.isprintable() or any(c in WORD_BREAKERS for c in v):
        raise ValueError(f"{v!r} is not a valid interface name (1 to {IFNAMSIZ - 1} characters, no '/', ':', "
                         "spaces, or '#', '!', quotes and braces, which keepalived would cut)")
    return v


def parse_vip(spec: str) -> tuple[str, int | None, dict[str, str]]:
    """'10.0.0.100/24 dev eth0 label eth0:vip' -> ('10.0.0.100', 24, {'dev': 'eth0', ...}).
    Raises ValueError with one readable sentence."""
    words = spec.split()
    if not words:
        raise ValueError("empty VIP")
    addr, _, prefix = words[0].partition("/")
    _check_ip(addr)
    plen = None
    if prefix:
        if not (prefix.isascii() and prefix.isdigit()) or not 0 <= int(prefix) <= 32:
            raise ValueError(f"prefix /{prefix} is impossible for IPv4 (0 to 32)")
        plen = int(prefix)
    opts: dict[str, str] = {}
    rest = words[1:]
    if len(rest) % 2:
        raise ValueError(f"{rest[-1]!r} needs a value (options: {', '.join(VIP_OPTIONS)})")
    for k, v in zip(rest[::2], rest[1::2]):
        if k not in VIP_OPTIONS:
            raise ValueError(f"unknown option {k!r} (keepalived takes {', '.join(VIP_OPTIONS)} here)")
        keepalived_word(v, k)
        if k == "dev":
            check_ifname(v)
        opts[k] = v
    return addr, plen, opts


class Strict(BaseModel):
    # extra="forbid" turns every typo in the inventory into an "unknown key" error.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


IPv4 = Annotated[str, Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}$")]


def _is_ipv4(v: str) -> bool:
    try:
        ipaddress.IPv4Address(v)
        return True
    except ValueError:
        return False


def _check_ip(v: str) -> str:
    ipaddress.IPv4Address(v)  # raises ValueError with a readable message
    return v


class Gateway(Strict):
    """A bastion every connection goes through (Fabric's gateway, ProxyJump's equivalent). Its host
    key is checked against known_hosts like every node's."""
    host: str
    user: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    key_filename: str | None = None
    known_hosts: str | None = None


class SSH(Strict):
    """How to reach a node. Unset fields come from ssh_config (~/.ssh/config, or config_file), then
    Fabric's defaults: the inventory overrides only what it states. A node's own `ssh:` is merged
    field by field over defaults.ssh."""
    user: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    key_filename: str | None = None
    known_hosts: str | None = None
    connect_timeout: float | None = Field(None, gt=0)
    config_file: str | None = None            # an ssh_config to read instead of ~/.ssh/config
    become: Literal["sudo"] | None = None     # run every command and write every file through sudo
    become_password_env: str | None = None    # sudo's password from this environment variable, else
    become_password_file: str | None = None   # ... from this file (relative to inventories/, 0600)
    gateway: Gateway | None = None            # a bastion
    retries: int | None = Field(None, ge=0, le=10)   # connection attempts after a transient failure

    def merged(self, over: "SSH | None") -> "SSH":
        """self with every field `over` states replacing ours."""
        if over is None:
            return self
        return self.model_copy(update={k: getattr(over, k) for k in over.model_fields_set})


CONNECT_TIMEOUT, RETRIES = 5.0, 2

# The Debian releases the lab builds nodes of (fabfile/lab/rootfs.py builds each; a unit test keeps
# the two lists equal). Only the lab reads it: deploy and verify take what differs between
# releases from each node's own facts (dpkg versions), never from here.
Release = Literal["bookworm", "trixie"]
DEFAULT_RELEASE = "bookworm"


class NodeLab(Strict):
    """A node's own lab settings, over the inventory's `lab:` section (a mixed cluster)."""
    release: Release | None = None


class Defaults(Strict):
    interface: str = "eth0"
    ssh: SSH = SSH()

    _if = field_validator("interface")(check_ifname)


class Node(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    host: str                     # how SSH reaches it: an address, a DNS name or an ssh_config alias
    address: str | None = None    # its IPv4 address on the VRRP segment (default: host, when an address)
    priority: int = Field(ge=1, le=254)
    state: Literal["MASTER", "BACKUP"] | None = None
    interface: str | None = None
    prefixlen: int = Field(24, ge=8, le=32)   # the node's subnet, for the VIP-in-subnet rule
    mac: str | None = Field(None, pattern=r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
    ssh: SSH | None = None
    lab: NodeLab | None = None    # lab inventories only: e.g. {release: trixie} for this node

    _if = field_validator("interface")(check_ifname)
    _addr = field_validator("address")(lambda v: v if v is None else _check_ip(v))

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not v or any(c.isspace() for c in v) or not v.isascii():
            raise ValueError(f"{v!r} is not a host: an address, a DNS name or an ssh_config alias")
        if re.fullmatch(r"[0-9.]+", v):
            _check_ip(v)          # looks like an address: it must be one
        return v

    @model_validator(mode="after")
    def _has_address(self):
        if self.address is None and not _is_ipv4(self.host):
            raise FieldProblem(("address",), f"host {self.host!r} is a name: keepalived needs {self.name}'s "
                               "address (unicast peers, the VIP's subnet)", "add address: A.B.C.D")
        return self

    @property
    def ip(self) -> str:
        """The address keepalived, IPVS and the checks use."""
        return self.address or self.host

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.ip_interface(f"{self.ip}/{self.prefixlen}").network


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

    _script = field_validator("script")(lambda v: quoted_string(v, "script"))
    _user = field_validator("user")(lambda v: v if v is None else keepalived_word(v, "user"))


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

    _if = field_validator("interface")(check_ifname)
    _notify = field_validator("notify_master", "notify_backup", "notify_fault", "notify")(
        lambda v: v if v is None else quoted_string(v, "notify command"))
    _tracks = field_validator("track_script")(lambda v: [keepalived_word(x, "track_script") for x in v])

    @field_validator("virtual_ipaddress")
    @classmethod
    def _vips(cls, v: list[str]) -> list[str]:
        for k, a in enumerate(v):
            try:
                parse_vip(a)
            except ValueError as e:
                raise FieldProblem((k,), f"{a!r}: {e}", "write A.B.C.D, A.B.C.D/N or A.B.C.D/N dev IFACE") from None
        return v

    @model_validator(mode="after")
    def _rules(self):
        if self.nopreempt and self.preempt_delay is not None:
            raise FieldProblem(("preempt_delay",), "nopreempt cannot be combined with preempt_delay",
                               "keep one of them (keepalived ignores preempt_delay under nopreempt)")
        if self.vrrp_version == 2 and self.advert_int != int(self.advert_int):
            raise FieldProblem(("advert_int",), f"advert_int {self.advert_int} is fractional, VRRPv2 "
                               "takes whole seconds", "use a whole number, or set vrrp_version: 3")
        if self.vrrp_version == 3:
            if not 0.01 <= self.advert_int <= 40.95:
                raise FieldProblem(("advert_int",), f"advert_int {self.advert_int} is outside VRRPv3's range "
                                   "(its advert carries centiseconds in 12 bits)",
                                   "use a value from 0.01 to 40.95")
            if round(self.advert_int * 100, 6) != int(round(self.advert_int * 100, 6)):
                raise FieldProblem(("advert_int",), f"advert_int {self.advert_int} is finer than VRRPv3's "
                                   "centiseconds", "use at most two decimals")
            if self.authentication is not None:
                raise FieldProblem(("authentication",), "VRRPv3 has no authentication (keepalived ignores it)",
                                   "drop authentication, or use vrrp_version: 2")
        return self

    @property
    def vips(self) -> list[str]:
        return [a.split()[0].split("/")[0] for a in self.virtual_ipaddress]


class TcpCheck(Strict):
    connect_timeout: PositiveInt = 3
    retry: int = Field(3, ge=0)
    delay_before_retry: PositiveInt = 3
    connect_port: int | None = Field(None, ge=1, le=65535)


HTTP_PATH = r"^/[^\s#!{}\"'\\]*$"   # an HTTP_GET path: keepalived reads it as one word


class HttpGet(Strict):
    path: str = Field("/", pattern=HTTP_PATH)
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
    lb_algo: Literal["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
                     "twos"] = "rr"
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
        if all(rs.weight == 0 for rs in self.real_servers):
            raise FieldProblem(("real_servers",), "every real server has weight 0: the service would take no "
                               "traffic (keepalived warns its quorum exceeds the total weight)",
                               "give at least one real server weight 1 or more (`inv drain` takes one out at run time)")
        if self.snat and self.lb_kind != "NAT":
            raise FieldProblem(("snat",), f"snat is for one-arm LVS-NAT, not lb_kind {self.lb_kind}",
                               "drop snat, or use lb_kind: NAT")
        if self.lb_kind in ("DR", "TUN"):
            for i, rs in enumerate(self.real_servers):
                if rs.port is not None and rs.port != self.port:
                    raise FieldProblem(("real_servers", i, "port"),
                                       f"LVS-{self.lb_kind} cannot remap ports: real server port {rs.port} "
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

    _if = field_validator("interface")(check_ifname)


NGINX_SITES = "/etc/nginx/sites-enabled"   # nginx.conf includes every file here (Debian)
NGINX_SITE = "lbtk.conf"                    # the toolkit's own site in it (fabfile/render/nginx.py)


def site_name(v: str) -> str:
    """A file name in /etc/nginx/sites-enabled/ the toolkit may remove: a plain name, never a path,
    never the toolkit's own site."""
    if not v or v in (".", "..") or "/" in v or not v.isascii() or not v.isprintable() \
            or any(c.isspace() for c in v):
        raise FieldProblem((), f"{v!r} is not a plain file name in {NGINX_SITES}/ (no '/', no spaces)",
                           f"name the file as `ls {NGINX_SITES}` shows it, e.g. default")
    if v == NGINX_SITE:
        raise FieldProblem((), f"{v!r} is the toolkit's own site: the nginx phase writes it",
                           "take it out of remove_sites")
    return v


class Nginx(Strict):
    port: int = Field(80, ge=1, le=65535)
    page: str = "<h1>{node}</h1>\n<p>served by {node} ({host})</p>\n"
    # Files in /etc/nginx/sites-enabled/ the nginx phase removes (and keeps removed). The phase owns
    # only what it renders: any other site is the operator's and is left alone unless named here
    # (e.g. [default]: Debian's default site claims default_server on :80 as lbtk.conf does, and
    # nginx -t refuses two).
    remove_sites: list[Annotated[str, AfterValidator(site_name)]] = []

    _page = field_validator("page")(lambda v: format_fields(v, ("node", "host", "cluster"), "page"))

    @field_validator("remove_sites")
    @classmethod
    def _once(cls, v: list[str]) -> list[str]:
        twice = sorted({x for x in v if v.count(x) > 1})
        if twice:
            raise FieldProblem((), f"{', '.join(twice)} listed more than once", "name each site once")
        return v


class GlobalDefs(Strict):
    router_id: str = "{node}"
    enable_script_security: bool = True
    script_user: str | None = "root"

    @field_validator("router_id")
    @classmethod
    def _router_id(cls, v: str) -> str:
        format_fields(v, ("node", "NODE"), "router_id")
        keepalived_word(v.replace("{node}", "x").replace("{NODE}", "X"), "router_id")
        return v

    _user = field_validator("script_user")(lambda v: v if v is None else keepalived_word(v, "script_user"))


FACILITIES = tuple(f"local{i}" for i in range(8))


class Logging(Strict):
    """keepalived's own log file, as the seed sets it up: keepalived logs to syslog `facility`
    (`--log-facility`, `--log-detail` with detail, in /etc/default/keepalived) and an rsyslog rule
    writes that facility to `file` only (not also to /var/log/syslog). The journal keeps it too."""
    facility: str = "local0"
    file: str = "/var/log/keepalived.log"
    detail: bool = False       # keepalived --log-detail: more lines per event (the seed turns it on)

    @field_validator("facility")
    @classmethod
    def _facility(cls, v: str) -> str:
        if v not in FACILITIES:
            # keepalived also takes daemon and user, but every other daemon logs there too: an rsyslog
            # rule for them would take (and `& stop` would hide from /var/log/syslog) foreign lines
            raise FieldProblem((), f"{v!r} is not a syslog facility keepalived can have to itself",
                               "use one of local0 .. local7 that nothing else on the nodes logs to")
        return v

    @field_validator("file")
    @classmethod
    def _file(cls, v: str) -> str:
        # rsyslog reads the path inside double quotes, logrotate as one word: neither may be cut
        bad = sorted({c for c in v if c.isspace() or c in "\"'\\{}#;" or not (c.isascii() and c.isprintable())})
        if bad:
            raise FieldProblem((), f"{v!r} contains {' '.join(repr(c) for c in bad)}: rsyslog and logrotate "
                               "would read another path", "use a path without whitespace, quotes, braces, '#' or ';'")
        if not v.startswith("/") or v.endswith("/") or any(p in (".", "..") for p in v.split("/")[1:]):
            raise FieldProblem((), f"{v!r} is not an absolute path to a file",
                               "write the full path, e.g. /var/log/keepalived.log")
        return v


class Install(Strict):
    # apt: the install phase apt-installs what is missing; detect: only report (the lab's
    # nodes have no route out, so they must already carry the packages)
    method: Literal["apt", "detect"] = "apt"


class LabBastion(Strict):
    """A production-shaped lab: the directors sit on `inner_bridge`, which the host has no address
    on (it cannot reach them), and one more node, the bastion, has a leg on both bridges."""
    name: str = "bastion"
    host: str                            # on `bridge`, reached from the host
    inner: str                           # its address/prefix on inner_bridge, e.g. 10.189.0.94/27
    mac: str | None = None
    inner_mac: str | None = None

    _ip = field_validator("host")(lambda v: _check_ip(v))


class LabUsers(Strict):
    """Who logs in: root login refused, `name` with sudo (NOPASSWD, except on `sudo_password_nodes`,
    whose password lab.up writes to `password_file`, relative to inventories/)."""
    name: str = "ops"
    sudo_password_nodes: list[str] = []
    password_file: str | None = None


class Lab(Strict):
    bridge: str = "lbtk-br0"
    gateway: str = "10.189.0.1/24"
    inner_bridge: str | None = None      # with bastion: the directors' own segment
    bastion: LabBastion | None = None
    users: LabUsers | None = None        # None: root logs in (the plain lab)
    ssh_config: str | None = None        # where lab.up writes the ssh_config naming every node
    release: Release = DEFAULT_RELEASE   # the nodes' Debian release; a node's own lab.release overrides
    # the kernel tier: the nodes run inside a qemu VM on Debian's kernel (real IPVS), reached
    # through `bridge` (fabfile/lab/kernel.py): true boots Debian 12's (bookworm's) kernel, a release
    # name that release's (`kernel: trixie`: Debian 13's); false: systemd nodes on this host's kernel
    kernel: bool | Release = False
    # a client network namespace on the lab bridge (lbtk-kclient) that `inv verify` sends real
    # requests from, through each VIP: order, counts per real server, IPVS counters
    client: str | None = None

    _client_ip = field_validator("client")(lambda v: v if v is None else _check_ip(v))

    @field_validator("kernel", mode="before")
    @classmethod
    def _kernel(cls, v):
        if isinstance(v, bool) or v in get_args(Release):
            return v
        raise ValueError("neither true/false nor a Debian release the kernel tier boots "
                         f"({', '.join(get_args(Release))})")

    @property
    def kernel_release(self) -> str | None:
        """The Debian release whose kernel the kernel tier boots; None: not the kernel tier."""
        if self.kernel is False:
            return None
        return DEFAULT_RELEASE if self.kernel is True else self.kernel


class Probe(Strict):
    """Where HTTP probes through a VIP start (verify's GET, the failover drill's probe): this
    machine, or the SSH gateway (a bastion that can reach the VIPs when this machine cannot)."""
    via: Literal["local", "gateway"] = "local"


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
    probe: Probe = Probe()
    logging: Logging | None = None      # keepalived's own log file (rsyslog); None: the journal only
    # a directory of Jinja2 templates that replace ours by name (keepalived.conf.j2 ...);
    # relative to inventories/. Whatever it renders is still checked by keepalived -t.
    templates_dir: str | None = None
    _source: str = PrivateAttr("<inventory>")   # the file it was read from, for one-line errors

    @property
    def source(self) -> str:
        return self._source

    @field_validator("vrrp_scripts")
    @classmethod
    def _script_names(cls, v: dict) -> dict:
        for name in v:
            try:
                keepalived_word(name, "vrrp_script name")
            except ValueError as e:
                raise FieldProblem((name,), str(e), "use letters, digits, '_', '-' and '.' in the name") from None
        return v

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, v: str) -> str:
        if not v.strip() or "\n" in v or not v.isprintable():
            raise ValueError(f"cluster {v!r} must be one printable line")
        return v

    @model_validator(mode="after")
    def _cross_rules(self):
        problems = list(cross_problems(self))
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise FieldProblems(problems)
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

    def lab_release_of(self, node: Node) -> str:
        """The Debian release the lab builds `node` of: its own lab.release, else lab.release."""
        if node.lab is not None and node.lab.release is not None:
            return node.lab.release
        return self.lab.release if self.lab is not None else DEFAULT_RELEASE

    def interface_of(self, node: Node, vi: VrrpInstance | None = None) -> str:
        return (vi and vi.interface) or node.interface or self.defaults.interface

    def ssh_of(self, node: Node) -> SSH:
        """defaults.ssh with the node's own ssh: fields over it (field by field)."""
        return self.defaults.ssh.merged(node.ssh)

    def real_server_address(self, rs: RealServer) -> str:
        return self.node(rs.node).ip if rs.node else rs.address

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


def lab_problems(inv: "Inventory"):
    """A node's lab settings need a lab inventory."""
    for k, n in enumerate(inv.nodes):
        if n.lab is not None and inv.lab is None:
            yield FieldProblem(("nodes", k, "lab"), f"{n.name} has lab settings but the inventory has no "
                               "`lab:` section (only lab inventories build nodes)",
                               "remove the node's lab:, or add a lab: section")


def cross_problems(inv: "Inventory"):
    """Every rule that spans fields, each broken one yielded as a FieldProblem (all are reported)."""
    yield from _unique(inv.nodes, "name", ("nodes",))
    yield from _unique(inv.nodes, "host", ("nodes",))
    yield from _unique([n for n in inv.nodes if n.address], "address", ("nodes",))
    yield from _unique(inv.nodes, "priority", ("nodes",),
            fix="give every node its own priority so the MASTER is deterministic")
    yield from _unique(inv.vrrp_instances, "name", ("vrrp_instances",),
                       fix="give each vrrp_instance its own name (keepalived: \"already defined\")")
    yield from vrid_problems(inv)
    if inv.multi_master:  # instance i of N uses virtual_router_id .. + N-1
        used: dict[int, int] = {}
        for i, vi in enumerate(inv.vrrp_instances):
            for k in range(len(inv.nodes)):
                vrid = vi.virtual_router_id + k
                if vrid > 255 or vrid in used:
                    yield FieldProblem(("vrrp_instances", i, "virtual_router_id"),
                                       f"multi_master needs virtual_router_id {vi.virtual_router_id}.."
                                       f"{vi.virtual_router_id + len(inv.nodes) - 1}, "
                                       + ("past 255" if vrid > 255 else f"{vrid} is taken by vrrp_instances[{used[vrid]}]"),
                                       "leave a gap of one id per node between instances")
                used[vrid] = i
    yield from lab_problems(inv)
    names = {n.name for n in inv.nodes}
    for i, vi in enumerate(inv.vrrp_instances):
        loc = ("vrrp_instances", i)
        for j, s in enumerate(vi.track_script):
            if s not in inv.vrrp_scripts:
                yield FieldProblem(loc + ("track_script", j), f"unknown vrrp_script {s!r}",
                                   f"define it under vrrp_scripts (known: {sorted(inv.vrrp_scripts) or 'none'})")
        if vi.owner is not None and vi.owner not in names:
            yield FieldProblem(loc + ("owner",), f"unknown node {vi.owner!r}",
                               f"use one of {sorted(names)}")
        if vi.nopreempt:
            for k, n in enumerate(inv.nodes):
                if n.state == "MASTER":
                    yield FieldProblem(("nodes", k, "state"),
                                       "nopreempt is silently cleared with state MASTER "
                                       f"(vrrp_instances[{i}] sets nopreempt)",
                                       "set state: BACKUP on every node when using nopreempt")
        for j, vip in enumerate(vi.vips):
            if not any(ipaddress.IPv4Address(vip) in n.network for n in inv.nodes):
                yield FieldProblem(loc + ("virtual_ipaddress", j),
                                   f"VIP {vip} is outside every node's subnet",
                                   "use an address in the nodes' subnet (or fix nodes[].prefixlen)")
        if inv.multi_master and len(vi.vips) != len(inv.nodes):
            yield FieldProblem(loc + ("virtual_ipaddress",),
                               f"multi_master needs one VIP per node ({len(inv.nodes)}), got {len(vi.vips)}",
                               "list exactly one VIP per node; VIP i is owned by node i")
    for i, vs in enumerate(inv.virtual_servers):
        for j, rs in enumerate(vs.real_servers):
            if rs.node is not None and rs.node not in names:
                yield FieldProblem(("virtual_servers", i, "real_servers", j, "node"),
                                   f"unknown node {rs.node!r}", f"use one of {sorted(names)}")
        if inv.director_fix_applies(vs):
            for k, n in enumerate(inv.nodes):
                if n.mac is None:
                    yield FieldProblem(("nodes", k, "mac"),
                                       f"{n.name} is a director and a DR real server of "
                                       f"virtual_servers[{i}]: the fwmark fix needs its MAC",
                                       "add mac: (from `ip link show`) or set director_fix: false")
    if inv.sync_daemon and inv.sync_daemon.vrrp_instance:
        if inv.sync_daemon.vrrp_instance not in {v.name for v in inv.vrrp_instances}:
            yield FieldProblem(("sync_daemon", "vrrp_instance"),
                               f"unknown vrrp_instance {inv.sync_daemon.vrrp_instance!r}",
                               "name one of vrrp_instances[].name")
    if inv.sync_daemon and inv.sync_daemon.mode == "notify":
        name = inv.sync_daemon.vrrp_instance or inv.vrrp_instances[0].name
        i, vi = next(((i, v) for i, v in enumerate(inv.vrrp_instances) if v.name == name), (None, None))
        if vi is not None and vi.notify:
            yield FieldProblem(("vrrp_instances", i, "notify"),
                               "sync_daemon mode notify uses this instance's notify for lbtk-ipvs-sync",
                               "call your script from notify_master/notify_backup/notify_fault, "
                               "or set sync_daemon.mode: keepalived")

    yield from address_problems(inv)


def vrid_problems(inv: "Inventory"):
    """Two instances on the same interface need different virtual_router_ids (on different
    interfaces the same id is legal: they are different segments)."""
    seen: dict[tuple[int, str], int] = {}
    for i, vi in enumerate(inv.vrrp_instances):
        ifaces = {inv.interface_of(n, vi) for n in inv.nodes}
        for iface in sorted(ifaces):
            key = (vi.virtual_router_id, iface)
            if key in seen and seen[key] != i:
                yield FieldProblem(("vrrp_instances", i, "virtual_router_id"),
                                   f"duplicate virtual_router_id {vi.virtual_router_id} on {iface} "
                                   f"(also vrrp_instances[{seen[key]}])",
                                   "each VRRP instance on a segment needs its own virtual_router_id")
                break
            seen.setdefault(key, i)


def address_problems(inv: "Inventory"):
    """VIPs that keepalived would take but that break the cluster, and addresses that collide."""
    hosts = {n.ip: k for k, n in enumerate(inv.nodes)}
    vip_at: dict[str, tuple] = {}
    for i, vi in enumerate(inv.vrrp_instances):
        for j, spec in enumerate(vi.virtual_ipaddress):
            loc = ("vrrp_instances", i, "virtual_ipaddress", j)
            addr, plen, _ = parse_vip(spec)
            ip = ipaddress.IPv4Address(addr)
            if addr in hosts:
                n = inv.nodes[hosts[addr]]
                yield FieldProblem(loc, f"VIP {addr} is {n.name}'s own address (nodes[{hosts[addr]}]): "
                                   f"keepalived would delete it from {n.name} whenever it turns BACKUP",
                                   "use a free address in the subnet for the VIP")
            for n in inv.nodes:
                net = n.network
                if net.prefixlen <= 30 and ip in (net.network_address, net.broadcast_address):
                    what = "network" if ip == net.network_address else "broadcast"
                    yield FieldProblem(loc, f"VIP {addr} is the {what} address of {net} ({n.name}'s subnet)",
                                       "use a host address inside the subnet")
                    break
            if plen is not None and plen < 32:
                vnet = ipaddress.ip_interface(f"{addr}/{plen}").network
                if plen <= 30 and ip in (vnet.network_address, vnet.broadcast_address):
                    yield FieldProblem(loc, f"VIP {addr}/{plen} is the network or broadcast address of {vnet}",
                                       "use a host address, or /32")
            if addr in vip_at:
                yield FieldProblem(loc, f"VIP {addr} is listed twice (also {dotted(vip_at[addr])})",
                                   "a VIP belongs to exactly one vrrp_instance, once")
            else:
                vip_at[addr] = loc
    seen_vs: dict[tuple, int] = {}
    for i, vs in enumerate(inv.virtual_servers):
        loc = ("virtual_servers", i)
        key = ("fwmark", vs.fwmark, vs.protocol) if vs.fwmark and not vs.vip else (vs.vip, vs.port, vs.protocol)
        if key in seen_vs:
            yield FieldProblem(loc, f"virtual server {vs.vip or 'fwmark ' + str(vs.fwmark)}:{vs.port}/{vs.protocol} "
                               f"is listed twice (also virtual_servers[{seen_vs[key]}])",
                               "merge their real_servers into one entry")
        else:
            seen_vs[key] = i
        if vs.vip is not None and vs.vip not in vip_at:
            yield FieldProblem(loc + ("vip",), f"{vs.vip} is not a VIP of any vrrp_instance: no director "
                               "would hold it", "add it to a vrrp_instance's virtual_ipaddress, or fix vip")
        seen_rs: dict[tuple, int] = {}
        for j, rs in enumerate(vs.real_servers):
            rloc = loc + ("real_servers", j)
            addr = inv.real_server_address(rs) if (rs.address or rs.node in {n.name for n in inv.nodes}) else None
            if addr is None:
                continue
            if addr in vip_at:
                yield FieldProblem(rloc, f"real server {addr} is a VIP ({dotted(vip_at[addr])}): IPVS would "
                                   "send the VIP's traffic to itself", "name a node or a real server's own address")
            rkey = (addr, rs.port or vs.port)
            if rkey in seen_rs:
                yield FieldProblem(rloc, f"real server {addr}:{rkey[1]} is listed twice in this virtual server "
                                   f"(also real_servers[{seen_rs[rkey]}])", "list each real server once")
            else:
                seen_rs[rkey] = j


def dotted(loc: tuple) -> str:
    """('vrrp_instances', 0, 'advert_int') -> 'vrrp_instances[0].advert_int'; a free key that is no
    plain name (a vrrp_script called 'chk nginx') is quoted: vrrp_scripts['chk nginx']."""
    out = ""
    for x in loc:
        if isinstance(x, int):
            out += f"[{x}]"
        elif not str(x).replace("_", "a").replace("-", "a").isalnum() or not str(x).isascii():
            out += f"[{str(x)!r}]"
        else:
            out += f".{x}" if out else str(x)
    return out or "(top level)"


def format_fields(v: str, allowed: tuple[str, ...], what: str) -> str:
    """A user string filled with str.format: only {NAME} placeholders from `allowed`; a literal
    brace is written {{ or }}."""
    import string
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(v) if f is not None]
    except ValueError as e:
        raise ValueError(f"{what} {v!r}: {e} (write a literal brace as {{{{ or }}}})") from None
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"{what} {v!r}: unknown placeholder {{{bad[0]}}} — use "
                         f"{', '.join('{' + a + '}' for a in allowed)}, or write a literal brace as {{{{ or }}}}")
    return v


def _unique(items, attr: str, loc: tuple, fix: str | None = None):
    seen: dict = {}
    for i, it in enumerate(items):
        v = getattr(it, attr)
        if v in seen:
            yield FieldProblem(loc + (i, attr),
                               f"duplicate {attr} {v!r} (also {loc[-1]}[{seen[v]}])",
                               fix or f"give each entry its own {attr}")
        else:
            seen[v] = i
