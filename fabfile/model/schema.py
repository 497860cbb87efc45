"""The inventory as a typed model.

Keys are keepalived.conf's own names (virtual_router_id, advert_int, lb_algo, ...), so an
operator reads an inventory without a manual. Everything here is pure: no I/O except the
secret look-up, which lives in fabfile.model.secrets. Rules that span several fields (duplicate
priorities, DR port remapping, VIP outside every subnet ...) are model validators that raise
`FieldProblem` so the loader can name the exact field path in its one-line error.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, Field, PositiveInt, PrivateAttr, field_validator, model_validator

from fabfile.model import extensions, global_defs
from fabfile.model.extensions import ExtensionSection
from fabfile.model.global_defs import LvsTimeouts, SmtpServer
from fabfile.model.checkers import CHECKERS, Checkers, checker_field, checker_problems
from fabfile.model.checkers import HTTP_PATH, HttpGet, TcpCheck  # noqa: F401  (the checkers' long-standing home)
from fabfile.model.fields import (FieldProblem, FieldProblems, Strict, _canonical_vip, _check_any_ip, _check_ip,
                                  _ip_field, check_ifname, family_of, keepalived_word, parse_vip, quoted_string)
from fabfile.model import instance_options as io
from fabfile.model.monitoring import Monitoring
from fabfile.model.scripts import ScriptFile, node_path, scripts_problems
from fabfile.model.virtual_servers import (RealServerOptions, VirtualServerGroup, VirtualServerOptions, group_problems,
                                           option_problems, sorry_problems)
from fabfile.model.tracking import (TrackFile, TrackFileDef, TrackInterface, TrackProcess, TrackScript,
                                    VrrpTrackProcess, tracking_problems)


class Gateway(Strict):
    """A bastion every connection goes through (Fabric's gateway, ProxyJump's equivalent). Its host
    key is checked against known_hosts like every node's."""
    host: str = Field(description="The bastion's address, DNS name or ssh_config alias.")
    user: str | None = Field(None, description="Login user on the bastion; unset: ssh_config's User, else "
                             "the local user.")
    port: int | None = Field(None, ge=1, le=65535, description="The bastion's SSH port; unset: ssh_config's Port, "
                             "else 22.")
    key_filename: str | None = Field(None, description="Private key for the bastion, the only one offered; unset: "
                                     "ssh_config's IdentityFile, the agent and ~/.ssh/id_*.")
    known_hosts: str | None = Field(None, description="known_hosts file(s) the bastion's host key is checked "
                                    "against; unset: the node's ssh.known_hosts, then ssh_config's.")


CONNECT_TIMEOUT, RETRIES = 5.0, 2    # ssh.connect_timeout (seconds) and ssh.retries when unset


class SSH(Strict):
    """How to reach a node. Unset fields come from ssh_config (~/.ssh/config, or config_file), then
    Fabric's defaults: the inventory overrides only what it states. A node's own `ssh:` is merged
    field by field over defaults.ssh."""
    user: str | None = Field(None, description="Login user; unset: ssh_config's User, else the local user.")
    port: int | None = Field(None, ge=1, le=65535, description="SSH port; unset: ssh_config's Port, else 22.")
    key_filename: str | None = Field(None, description="Private key to log in with, the only one offered; unset: "
                                     "ssh_config's IdentityFile, the agent and ~/.ssh/id_*.")
    known_hosts: str | None = Field(None, description="known_hosts file(s), space-separated, host keys are checked "
                                    "against (an unknown key is refused, never added); unset: ssh_config's "
                                    "UserKnownHostsFile, else ~/.ssh/known_hosts.")
    connect_timeout: float | None = Field(None, gt=0, description="Seconds allowed for the TCP connection, the SSH "
                                          f"banner and authentication, each; unset: {CONNECT_TIMEOUT:g} s.")
    config_file: str | None = Field(None, description="An ssh_config read instead of ~/.ssh/config (Host aliases, "
                                    "User, Port, ProxyJump ...).")
    become: Literal["sudo"] | None = Field(None, description="sudo: run every command and write every file through "
                                           "sudo (a login that is not root); unset: as the login user.")
    become_password_env: str | None = Field(None, description="Environment variable holding sudo's password; unset "
                                            "or empty: become_password_file, else NOPASSWD sudo.")
    become_password_file: str | None = Field(None, description="File holding sudo's password, relative to "
                                             "inventories/, mode 0600; read when become_password_env gives none.")
    gateway: Gateway | None = Field(None, description="A bastion every connection goes through (like ssh's "
                                    "ProxyJump); unset: direct, or ssh_config's ProxyJump.")
    retries: int | None = Field(None, ge=0, le=10, description="Connection attempts after a transient failure "
                                f"(refused, timed out, reset); unset: {RETRIES}.")
    control_persist: int | None = Field(None, ge=0, le=86400, description="Seconds a connection is kept after a "
                                        "run for the next one (OpenSSH's ControlPersist, on in Ansible by default); "
                                        "0: none kept; unset: 60. LBTK_CONTROL_PERSIST overrides it.")

    def merged(self, over: "SSH | None") -> "SSH":
        """self with every field `over` states replacing ours."""
        if over is None:
            return self
        return self.model_copy(update={k: getattr(over, k) for k in over.model_fields_set})


class Defaults(Strict):
    """What every node shares unless it states its own."""
    interface: str = Field("eth0", description="The interface VRRP runs on and the VIPs are added to (keepalived's "
                           "`interface`); a node's or an instance's own interface wins.")
    ssh: SSH = Field(default_factory=SSH, description="How every node is reached; a node's own ssh: is merged over it field by "
                     "field.")

    _if = field_validator("interface")(check_ifname)


def is_ip(v: str) -> bool:
    """An IPv4 or IPv6 address (no zone), not a name."""
    try:
        ipaddress.ip_address(v)
        return "%" not in v
    except ValueError:
        return False


FAMILY_NAME = {4: "IPv4", 6: "IPv6"}


class NodeInterface(Strict):
    """One more network a node is on, besides its VRRP segment: a two-legged NAT director's inside
    leg, a gateway pair's second segment, the second interface an instance runs on. An instance
    (or a VIP's `dev`) on this interface takes the node's address here as its unicast_src_ip and
    the other nodes' addresses here as its peers; its VIPs must lie in this subnet."""
    address: str | None = Field(None, description="The node's IPv4 (or IPv6) address on this interface.")
    address6: str | None = Field(None, description="Its IPv6 address here, when address holds the IPv4 one.")
    prefixlen: int = Field(24, ge=8, le=32, description="Prefix length of the IPv4 subnet on this interface.")
    prefixlen6: int = Field(64, ge=8, le=128, description="Prefix length of the IPv6 subnet on this interface.")

    _addr = field_validator("address")(_ip_field)

    @field_validator("address6")
    @classmethod
    def _addr6(cls, v: str | None) -> str | None:
        if v is not None and ":" not in v:
            raise ValueError("not an IPv6 address: address6 holds the IPv6 one (the IPv4 one goes in address)")
        return _ip_field(v)

    @model_validator(mode="after")
    def _some_address(self):
        if self.address is None and self.address6 is None:
            raise FieldProblem(("address",), "an interface entry needs the node's address on it",
                               "add address: A.B.C.D (or address6)")
        if self.address is not None and self.address6 is not None and family_of(self.address) == 6:
            raise FieldProblem(("address6",), "address already holds an IPv6 address",
                               "put the IPv4 address in address, or drop address6")
        return self

    @property
    def ips(self) -> dict[int, str]:
        out = {family_of(self.address): self.address} if self.address else {}
        if self.address6 is not None:
            out[6] = self.address6
        return out

    def network_of(self, family: int):
        ip = self.ips.get(family)
        if ip is None:
            return None
        return ipaddress.ip_interface(f"{ip}/{self.prefixlen6 if family == 6 else self.prefixlen}").network


class Node(Strict):
    """A director: keepalived, IPVS and nginx run on it."""
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="The node's name in tables, --node and "
                      "real_servers[].node; `{node}` in router_id and the nginx page.")
    host: str = Field(description="How SSH reaches it: an address (IPv4 or IPv6), a DNS name or an ssh_config alias.")
    address: str | None = Field(None, description="Its address on the VRRP segment, IPv4 or IPv6 (unicast_src_ip, "
                                "the peers' unicast_peer, a real server's address); unset: host, when an address.")
    address6: str | None = Field(None, description="A dual-stack node's IPv6 address on the VRRP segment, for IPv6 "
                                 "instances and services (address or host holds the IPv4 one).")
    priority: int = Field(ge=1, le=254, description="VRRP priority, the highest node is MASTER (each node its own, "
                          "so the election is deterministic); owner and multi_master rotate it per instance.")
    state: Literal["MASTER", "BACKUP"] | None = Field(None, description="keepalived's initial state, at start-up "
                                                      "only; unset: MASTER on the highest priority (or the owner), "
                                                      "BACKUP elsewhere; nopreempt makes it BACKUP everywhere.")
    interface: str | None = Field(None, description="This node's VRRP interface, when not defaults.interface; an "
                                  "instance's own interface wins.")
    interfaces: dict[str, NodeInterface] = Field({}, description="More networks this node is on, by interface "
                                                 "name (`eth1: {address: 192.168.10.11, prefixlen: 24}`): an "
                                                 "instance on one of them uses these addresses.")
    prefixlen: int = Field(24, ge=8, le=32, description="Prefix length of the node's IPv4 subnet: a VIP must lie "
                           "inside a node's subnet.")
    prefixlen6: int = Field(64, ge=8, le=128, description="Prefix length of the node's IPv6 subnet, for the same "
                            "rule.")
    mac: str | None = Field(None, pattern=r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$", description="MAC address of its "
                            "VRRP interface (`ip link show`): needed when directors are also DR real servers "
                            "(director_fix).")
    ssh: SSH | None = Field(None, description="How this node is reached: each field it states replaces "
                            "defaults.ssh's.")
    lab: Annotated[Any, ExtensionSection("node")] = Field(None, description="Lab inventories only: this node's own "
                                                           "lab settings (its Debian release).")
    static_ipaddress: list[str] = Field([], description="keepalived's static_ipaddress: addresses keepalived keeps "
                                        "on this node whatever its VRRP state, `ADDRESS[/N] dev IF [label L] [brd B] "
                                        "[scope S]`, e.g. `192.168.1.1/24 dev eth1`.")
    static_routes: list[str] = Field([], description="keepalived's static_routes on this node, " + io.ROUTE_WORDS)
    static_rules: list[str] = Field([], description="keepalived's static_rules on this node, " + io.RULE_WORDS)

    _if = field_validator("interface")(check_ifname)
    _addr = field_validator("address")(_ip_field)
    _static_addr = field_validator("static_ipaddress")(
        io.lines_validator(io.static_address, "static_ipaddress", io.ADDRESS_FIX))
    _static_routes = field_validator("static_routes")(io.lines_validator(io.parse_route, "route", io.ROUTE_FIX))
    _static_rules = field_validator("static_rules")(io.lines_validator(io.parse_rule, "rule", io.RULE_FIX))

    @field_validator("interfaces")
    @classmethod
    def _ifnames(cls, v: dict) -> dict:
        for name in v:
            check_ifname(name)
        return v

    @field_validator("address6")
    @classmethod
    def _addr6(cls, v: str | None) -> str | None:
        if v is not None and ":" not in v:
            raise ValueError("not an IPv6 address: address6 holds the node's IPv6 address "
                             "(its IPv4 one goes in address)")
        return _ip_field(v)

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not v or any(c.isspace() for c in v) or not v.isascii():
            raise ValueError(f"{v!r} is not a host: an address, a DNS name or an ssh_config alias")
        if re.fullmatch(r"[0-9.]+", v):
            _check_ip(v)          # looks like an address: it must be one
        elif re.fullmatch(r"[0-9A-Fa-f:.%]+", v) and v.count(":") >= 2:
            _check_any_ip(v)      # looks like an IPv6 address: it must be one
        return v

    @model_validator(mode="after")
    def _has_address(self):
        if self.address is None and not is_ip(self.host):
            raise FieldProblem(("address",), f"host {self.host!r} is a name: keepalived needs {self.name}'s "
                               "address (unicast peers, the VIP's subnet)", "add address: A.B.C.D")
        if self.address6 is not None and family_of(self.ip) == 6:
            raise FieldProblem(("address6",), f"{self.name} already has its IPv6 address {self.ip} "
                               "(a node has one address per family)",
                               "drop address6, or give address (or host) the node's IPv4 address")
        return self

    @property
    def ip(self) -> str:
        """The node's primary address (address, else host): SSH's, the page's {host}."""
        return self.address or (str(ipaddress.ip_address(self.host)) if ":" in self.host else self.host)

    @property
    def ips(self) -> dict[int, str]:
        """{family: address} on the VRRP segment: THE place that answers "this node's address of
        family F" (unicast_src_ip and peers, real servers, the VIP-in-subnet rule)."""
        out = {family_of(self.ip): self.ip}
        if self.address6 is not None:
            out[6] = self.address6
        return out

    def ip_of(self, family: int) -> str | None:
        return self.ips.get(family)

    def network_of(self, family: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        ip = self.ip_of(family)
        if ip is None:
            return None
        return ipaddress.ip_interface(f"{ip}/{self.prefixlen6 if family == 6 else self.prefixlen}").network

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return self.network_of(family_of(self.ip))


class Authentication(Strict):
    """VRRPv2's advert authentication. The password is never in the inventory: it comes from
    auth_pass_env, else auth_pass_file."""
    auth_type: Literal["PASS", "AH"] = Field("PASS", description="PASS: a password in each advert, at most 8 "
                                             "bytes (keepalived uses the first 8); AH: IPsec AH.")
    auth_pass_env: str | None = Field(None, description="Environment variable holding the VRRP password; set and "
                                      "not empty, it wins over auth_pass_file.")
    auth_pass_file: str | None = Field(None, description="File holding the VRRP password, relative to inventories/; "
                                       "mode 0600 (a file group or others may read is refused).")
    generate: bool = Field(False, description="Create auth_pass_file with a random 8-byte password (mode 0600) when "
                           "it is missing: the lab's way; a production secret is made by you.")

    @model_validator(mode="after")
    def _has_source(self):
        if not (self.auth_pass_env or self.auth_pass_file):
            raise FieldProblem(("auth_pass_env",), "no source for the VRRP secret",
                               "set auth_pass_env (an environment variable) or auth_pass_file")
        return self


class VrrpScript(Strict):
    """A check keepalived runs periodically; the instances that track it (track_script) change
    priority, or go to FAULT, with its result."""
    script: str = Field(description="The command, run every interval; exit 0 is success (keepalived reads it in "
                        "double quotes: no \", # or !).")
    interval: PositiveInt = Field(2, description="Seconds between two runs (keepalived's own default: 1).")
    weight: int = Field(0, ge=-253, le=253, description="Added to a tracking instance's priority while the script "
                        "succeeds (> 0), or subtracted while it fails (< 0); 0: the instance goes to FAULT on failure.")
    fall: PositiveInt | None = Field(None, description="Consecutive failures before the script counts as failed; "
                                     "unset: keepalived's 1.")
    rise: PositiveInt | None = Field(None, description="Consecutive successes before it counts as good again; "
                                     "unset: keepalived's 1.")
    timeout: PositiveInt | None = Field(None, description="Seconds after which a run counts as failed; unset: "
                                        "keepalived uses interval.")
    user: str | None = Field(None, description="The user the script runs as; unset: global_defs.script_user.")

    _script = field_validator("script")(lambda v: quoted_string(v, "script"))
    _user = field_validator("user")(lambda v: v if v is None else keepalived_word(v, "user"))


class VrrpInstance(Strict):
    """A set of VIPs that moves between the nodes as one, by VRRP."""
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="The instance's name, unique (multi_master adds "
                      "_NODE, one instance per node).")
    virtual_router_id: int = Field(ge=1, le=255, description="The VRID, the same on every node, unique per interface "
                                   "and family on the segment (multi_master also takes the next N-1).")
    advert_int: float = Field(1, gt=0, le=255, description="Seconds between the MASTER's adverts; backups take over "
                              "after about 3 missed (VRRPv2: whole seconds, VRRPv3: 0.01 to 40.95).")
    vrrp_version: Literal[2, 3] = Field(2, description="The VRRP version: 3 for sub-second advert_int; an IPv6 "
                                        "instance always runs 3 (unset there: 3).")
    interface: str | None = Field(None, description="The interface this instance runs on; unset: the node's "
                                  "interface, else defaults.interface.")
    nopreempt: bool = Field(False, description="A higher-priority node that comes back does not take the VIPs back; "
                            "every node is then written state BACKUP (keepalived needs it).")
    preempt_delay: int | None = Field(None, ge=0, le=1000, description="Seconds a node waits before taking over "
                                      "from a lower-priority MASTER, or at start-up; unset: keepalived's 0.")
    unicast: bool = Field(True, description="true: adverts go to the other nodes' addresses (unicast_src_ip, "
                          "unicast_peer, check_unicast_src); false: to multicast 224.0.0.18 or ff02::12.")
    authentication: Authentication | None = Field(None, description="VRRPv2 advert authentication; unset: none.")
    virtual_ipaddress: list[str] = Field(min_length=1, description="The VIPs, `ADDRESS[/N] [dev IF] [label L] "
                                         "[brd B] [scope S]`, one family an instance; the first rides the adverts, "
                                         "the rest go in virtual_ipaddress_excluded.")
    notify_master: str | None = Field(None, description="Command keepalived runs when the node becomes MASTER "
                                      "of this instance.")
    notify_backup: str | None = Field(None, description="Command run when the node becomes BACKUP.")
    notify_fault: str | None = Field(None, description="Command run when the instance goes to FAULT.")
    notify: str | None = Field(None, description="Command run on every state change, with `INSTANCE NAME STATE "
                               "PRIORITY` appended (sync_daemon mode notify uses it).")
    track_script: list[TrackScript] = Field([], description="vrrp_scripts whose result changes this instance's "
                                            "priority, or puts it in FAULT: `NAME` or `NAME weight N` "
                                            "(-253..253; unset: the script's weight).")
    track_interface: list[TrackInterface] = Field([], description="Interfaces watched besides the instance's own: "
                                                  "`IFACE` (down: FAULT) or `IFACE weight N` (-253..253: the "
                                                  "priority moves instead).")
    track_process: list[TrackProcess] = Field([], description="vrrp_track_processes followed: `NAME` or `NAME "
                                              "weight N` (-254..254; unset: the process's weight).")
    track_file: list[TrackFile] = Field([], description="track_files followed: `NAME` or `NAME weight N` "
                                        "(-254..254; unset: the file's weight).")
    dont_track_primary: bool = Field(False, description="Ignore faults of the instance's own interface (a link "
                                     "down no longer means FAULT).")
    owner: str | None = Field(None, description="The node that holds these VIPs: it gets the top priority and "
                              "MASTER, the rest keep their order; unset: the highest-priority node.")
    garp_master_delay: int | None = Field(None, ge=0, description="Seconds after becoming MASTER before the second "
                                          "set of gratuitous ARPs (0: none); unset: keepalived's 5.")
    # iptables/ip6tables rules on each node (the lbtk-fwmark unit) that drop VRRP (IP protocol 112)
    # arriving on this instance's interface from anything but the other nodes (docs/SECURITY.md)
    vrrp_firewall: bool = Field(False, description="Drop VRRP packets arriving on this instance's interface from "
                                "anything but the other nodes (iptables, lbtk-fwmark.service); needs unicast.")
    smtp_alert: bool | None = Field(None, description="Mail global_defs.notification_email on this instance's "
                                    "state changes (true) or never (false); unset: global_defs.smtp_alert.")
    priority: dict[str, int] | None = Field(None, description="This instance's "
                                                                         "priority per node, e.g. `{node1: 150, node2: "
                                                                         "100}` (keepalived's `priority` in each "
                                                                         "node's vrrp_instance): wins over nodes[]."
                                                                         "priority; 255 is the address owner (one "
                                                                         "node, never lowered).")
    state: dict[str, Literal["MASTER", "BACKUP"]] | None = Field(None, description="This instance's initial state "
                                                                 "per node, e.g. `{node1: MASTER, node2: BACKUP}`; "
                                                                 "unnamed nodes: nodes[].state, else MASTER on the "
                                                                 "elected node.")
    equal_priorities: bool = Field(False, description="lbtk's own key (keepalived has none): nodes may share a "
                                   "priority on purpose; a tie is broken by the highest advert source address (RFC "
                                   "3768/5798), and an equal-priority BACKUP never preempts the holder.")
    notify_stop: str | None = Field(None, description="Command keepalived runs when its VRRP process stops this "
                                    "instance.")
    mcast_src_ip: bool | dict[str, str] = Field(False, description="Multicast instances (unicast: false): the "
                                                "adverts' source, true: each node's own address, or a map "
                                                "`{node1: 10.0.0.11}` of the node's addresses; unset: the "
                                                "interface's primary address (IPv4 only).")
    use_vmac: bool | str = Field(False, description="keepalived's use_vmac: the VIPs and adverts go on a macvlan "
                                 "with the VRRP virtual MAC; true: keepalived names it (vrrp.ID), a string: its "
                                 "interface name.")
    vmac_xmit_base: bool = Field(False, description="With use_vmac: adverts are sent and received on the base "
                                 "interface (unicast needs it).")
    virtual_routes: list[str] = Field([], description="Routes added while MASTER, " + io.ROUTE_WORDS)
    virtual_rules: list[str] = Field([], description="Policy rules added while MASTER, " + io.RULE_WORDS)

    _if = field_validator("interface")(check_ifname)
    _notify = field_validator("notify_master", "notify_backup", "notify_fault", "notify", "notify_stop")(
        lambda v: v if v is None else quoted_string(v, "notify command"))
    _priority = field_validator("priority")(io.check_priorities)
    _vmac = field_validator("use_vmac")(lambda v: check_ifname(v) if isinstance(v, str) else v)
    _route_lines = field_validator("virtual_routes")(io.lines_validator(io.parse_route, "route", io.ROUTE_FIX))
    _rule_lines = field_validator("virtual_rules")(io.lines_validator(io.parse_rule, "rule", io.RULE_FIX))
    _mcast = field_validator("mcast_src_ip")(lambda v: {k: _check_any_ip(a) for k, a in v.items()}
                                             if isinstance(v, dict) else v)

    @field_validator("virtual_ipaddress")
    @classmethod
    def _vips(cls, v: list[str]) -> list[str]:
        for k, a in enumerate(v):
            try:
                parse_vip(a)
            except ValueError as e:
                six = ":" in (a.split() or [""])[0]
                fix = ("write an IPv6 address such as fd00::100, fd00::100/64 or fd00::100/64 dev IFACE"
                       if six else "write A.B.C.D, A.B.C.D/N or A.B.C.D/N dev IFACE")
                raise FieldProblem((k,), f"{a!r}: {e}", fix) from None
        families = [family_of(parse_vip(a)[0]) for a in v]
        for k, f in enumerate(families):
            if f != families[0]:
                first = parse_vip(v[0])[0]
                raise FieldProblem((k,), f"an instance holds one family (keepalived's rule): VIP "
                                   f"{parse_vip(v[k])[0]} is {FAMILY_NAME[f]}, {first} {FAMILY_NAME[families[0]]}",
                                   "put the IPv6 VIPs in their own vrrp_instance (a vrrp_sync_group moves "
                                   "both together)")
        return [_canonical_vip(a) for a in v]

    @model_validator(mode="after")
    def _rules(self):
        if self.family == 6:
            if "vrrp_version" not in self.model_fields_set:
                # keepalived: an IPv6 instance without `version` runs VRRPv3 (RFC 5798)
                self = self.model_copy(update={"vrrp_version": 3})
            elif self.vrrp_version == 2:
                raise FieldProblem(("vrrp_version",), "VRRPv2 is IPv4 only (RFC 3768): keepalived would send "
                                   "non-standard v2 adverts over IPv6", "drop vrrp_version (an IPv6 instance "
                                   "runs VRRPv3) or set vrrp_version: 3")
        if self.vrrp_firewall and not self.unicast:
            raise FieldProblem(("vrrp_firewall",), "vrrp_firewall admits adverts by the peers' unicast source "
                               "addresses; a multicast advert's source is whatever address the interface "
                               "picks (IPv6: a link-local one)", "set unicast: true, or drop vrrp_firewall")
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
                if self.family == 6:
                    raise FieldProblem(("authentication",), "an IPv6 instance runs VRRPv3, which has no "
                                       "authentication (keepalived ignores it)", "drop authentication")
                raise FieldProblem(("authentication",), "VRRPv3 has no authentication (keepalived ignores it)",
                                   "drop authentication, or use vrrp_version: 2")
        return self

    @property
    def vips(self) -> list[str]:
        return [a.split()[0].split("/")[0] for a in self.virtual_ipaddress]

    @property
    def family(self) -> int:
        """4 or 6: keepalived's instance family, its VIPs' (one family an instance)."""
        return family_of(self.vips[0])


class VrrpSyncGroup(Strict):
    """keepalived's vrrp_sync_group: its instances change state together (a dual-stack service is
    an IPv4 and an IPv6 instance in one group)."""
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="The group's name, unique.")
    group: list[str] = Field(min_length=1, description="The vrrp_instances that change state together: two or more, "
                             "each in one group at most.")
    notify_master: str | None = Field(None, description="Command keepalived runs when the group becomes MASTER.")
    notify_backup: str | None = Field(None, description="Command run when the group becomes BACKUP.")
    notify_fault: str | None = Field(None, description="Command run when the group goes to FAULT.")
    notify_stop: str | None = Field(None, description="Command run when keepalived's VRRP process stops.")
    notify: str | None = Field(None, description="Command run on every group state change, with `GROUP NAME STATE "
                               "PRIORITY` appended.")
    sync_group_tracking_weight: bool = Field(False, description="Let the group's instances keep differing track "
                                             "weights (keepalived otherwise sets them to 0 in a sync group).")
    global_tracking: bool = Field(False, description="keepalived's deprecated name of sync_group_tracking_weight: "
                                  "read, written as sync_group_tracking_weight.")

    _notify = field_validator("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")(
        lambda v: v if v is None else quoted_string(v, "notify command"))

    @property
    def tracking_weight(self) -> bool:
        return self.sync_group_tracking_weight or self.global_tracking


class RealServer(RealServerOptions):
    """A server IPVS forwards the service's connections to: an inventory node, or any address."""
    node: str | None = Field(None, description="An inventory node serving it (its address of the service's "
                             "family); give node or address.")
    address: str | None = Field(None, description="A real server outside the inventory, IPv4 or IPv6 of the "
                                "service's family.")
    port: int | None = Field(None, ge=1, le=65535, description="Its port; unset: the virtual server's (only NAT may "
                             "differ: DR and TUN cannot remap ports).")
    weight: int = Field(1, ge=0, le=65535, description="Its share of new connections under weighted schedulers "
                        "(wrr, wlc ...); 0 takes none.")
    smtp_alert: bool | None = Field(None, description="Mail on this real server's checker transitions "
                                    "(global_defs' smtp settings); unset: keepalived's default.")
    TCP_CHECK: Checkers["TCP_CHECK"] = checker_field("TCP_CHECK", "TCP connect health checks (one or a list); with "
                                                     "no checker the real server is always in.")
    HTTP_GET: Checkers["HTTP_GET"] = checker_field("HTTP_GET", "HTTP health checks (one or a list).")
    SSL_GET: Checkers["SSL_GET"] = checker_field("SSL_GET", "HTTPS health checks (one or a list).")
    MISC_CHECK: Checkers["MISC_CHECK"] = checker_field("MISC_CHECK", "Command health checks (one or a list).")
    DNS_CHECK: Checkers["DNS_CHECK"] = checker_field("DNS_CHECK", "DNS query health checks (one or a list).")
    SMTP_CHECK: Checkers["SMTP_CHECK"] = checker_field("SMTP_CHECK", "SMTP HELO health checks (one or a list).")
    UDP_CHECK: Checkers["UDP_CHECK"] = checker_field("UDP_CHECK", "UDP datagram health checks (one or a list).")
    PING_CHECK: Checkers["PING_CHECK"] = checker_field("PING_CHECK", "ICMP echo health checks (one or a list).")
    FILE_CHECK: Checkers["FILE_CHECK"] = checker_field("FILE_CHECK", "Track-file health checks (one or a list).")

    _addr = field_validator("address")(_ip_field)

    @model_validator(mode="after")
    def _one_target(self):
        if (self.node is None) == (self.address is None):
            raise FieldProblem(("node",), "a real server needs exactly one of node or address",
                               "name an inventory node (node: node1) or give address: A.B.C.D")
        return self

    @property
    def checkers(self) -> list[tuple[str, Any]]:
        """Every checker block, (keepalived keyword, checker), in keepalived.conf's order: the real
        server is in the pool while all of them pass."""
        return [(kind, c) for kind in CHECKERS for c in getattr(self, kind)]

    @property
    def dynamic_weight(self) -> bool:
        """keepalived sets this real server's IPVS weight at run time (a misc_dynamic exit code, a
        track file's number), so the inventory's weight is only its start."""
        return any(m.misc_dynamic for m in self.MISC_CHECK) or any(f.weight != 0 for f in self.FILE_CHECK)


class VirtualServer(VirtualServerOptions):
    """An LVS service: a VIP and port (or a firewall mark, or a virtual_server_group) balanced over
    real servers."""
    vip: str | None = Field(None, description="The service's address, IPv4 or IPv6: a VIP of some vrrp_instance "
                            "(or, with vip_managed_by: external, one a router brings).")
    fwmark: int | None = Field(None, ge=1, le=2**32 - 1, description="Balance packets carrying this firewall mark; "
                               "with vip, lbtk's rules mark vip:port, without, your own rules do.")
    ip_family: Literal["inet", "inet6"] | None = Field(None, description="The family of a fwmark service without "
                                                       "vip; unset: the vip's, else the real servers', else inet.")
    port: int | None = Field(None, ge=1, le=65535, description="The service's port, and its real servers' unless "
                             "they name one; required but with group (its members carry theirs).")
    protocol: Literal["TCP", "UDP", "SCTP"] = Field("TCP", description="The service's protocol.")
    lb_algo: Literal["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
                     "twos"] = Field("rr", validation_alias=AliasChoices("lb_algo", "lvs_sched"),
                                     description="The IPVS scheduler: rr round robin, wrr weighted, "
                                     "lc/wlc least connections, sh source hash, mh Maglev hash ... (also read as "
                                     "keepalived's lvs_sched).")
    lb_kind: Literal["NAT", "DR", "TUN"] = Field("DR", validation_alias=AliasChoices("lb_kind", "lvs_method"),
                                                 description="How IPVS forwards: DR direct routing (same "
                                                 "segment, replies skip the director), NAT rewriting, TUN IP-in-IP "
                                                 "(keepalived's own default: NAT; also read as lvs_method).")
    delay_loop: PositiveInt = Field(5, description="Seconds between two health checks of a real server "
                                    "(keepalived's own default: 60).")
    persistence_timeout: int | None = Field(None, ge=1, description="Seconds a client stays on the same real server "
                                            "after its last connection; unset: no persistence.")
    persistence_granularity: str | None = Field(None, description="Netmask of the clients that share a real server "
                                                "under persistence (IPv6: a prefix length); unset: each address "
                                                "alone.")
    # Directors that are also DR real servers loop unless packets are marked (field notes).
    # true: apply the fwmark + MAC-match fix exactly when that topology is detected.
    director_fix: bool = Field(True, description="When directors are also this DR service's real servers, mark "
                               "its packets by MAC so two directors never balance them to each other (needs "
                               "nodes[].mac); false: never.")
    # one-arm LVS-NAT (real servers on the clients' subnet, no route back through the director):
    # the director also masquerades the client (iptables -m ipvs ... -j MASQUERADE, vs.conntrack=1),
    # so real servers reply to the director, which un-NATs. Only with lb_kind: NAT.
    snat: bool = Field(False, description="One-arm LVS-NAT: the director also masquerades the client, so real "
                       "servers on the clients' subnet reply through it; lb_kind NAT only.")
    real_servers: list[RealServer] = Field(min_length=1, description="The real servers (at least one with weight "
                                           "above 0).")

    _vip = field_validator("vip")(_ip_field)

    @model_validator(mode="before")
    @classmethod
    def _port(cls, data):
        # the port is required except for a group's virtual server (its members carry theirs)
        if isinstance(data, dict) and data.get("group") is None and data.get("port") is None:
            raise FieldProblem(("port",), "required field is missing", "add port: (the service's port)")
        return data

    @field_validator("persistence_granularity", mode="before")
    @classmethod
    def _granularity(cls, v):
        # IPv6's granularity is a prefix length: `persistence_granularity: 64` reads as an int
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @property
    def family(self) -> int:
        """4 or 6: the vip's family, else ip_family, else the literal real servers', else 4 (a group's
        members are checked against it: fabfile.model.virtual_servers.group_problems)."""
        if self.vip is not None:
            return family_of(self.vip)
        if self.ip_family is not None:
            return 6 if self.ip_family == "inet6" else 4
        lits = [rs.address for rs in self.real_servers if rs.address]
        return family_of(lits[0]) if lits else 4

    @model_validator(mode="after")
    def _rules(self):
        if self.group is not None:
            for k in ("vip", "fwmark", "port"):
                if getattr(self, k) is not None:
                    raise FieldProblem((k,), f"a group's virtual server takes its addresses from the group, not {k}",
                                       f"drop {k} (list it among the group's members)")
        elif self.vip is None and self.fwmark is None:
            raise FieldProblem(("vip",), "a virtual server needs vip (or fwmark, or group)",
                               "add vip: A.B.C.D")
        if self.vip is not None and self.ip_family is not None \
                and self.ip_family != ("inet6" if family_of(self.vip) == 6 else "inet"):
            raise FieldProblem(("ip_family",), f"ip_family {self.ip_family} contradicts vip {self.vip}",
                               "drop ip_family (the vip sets the family)")
        for j, rs in enumerate(self.real_servers):
            if rs.address is not None and family_of(rs.address) != self.family:
                raise FieldProblem(("real_servers", j, "address"),
                                   f"real server {rs.address} is {FAMILY_NAME[family_of(rs.address)]}, the "
                                   f"virtual server {FAMILY_NAME[self.family]} (keepalived skips it)",
                                   f"give an {FAMILY_NAME[self.family]} address (one family a virtual server)")
        if self.persistence_granularity is not None:
            if self.family == 6:
                g = self.persistence_granularity
                if not (g.isascii() and g.isdigit() and 1 <= int(g) <= 128):
                    raise FieldProblem(("persistence_granularity",),
                                       f"{g!r} is not an IPv6 prefix length (keepalived: 1 to 128)",
                                       "use a prefix length such as 64")
            else:
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
                if self.group is not None and rs.port is not None:
                    raise FieldProblem(("real_servers", i, "port"), f"LVS-{self.lb_kind} cannot remap ports: a "
                                       "group's real servers take each member's port", "drop port")
                if rs.port is not None and rs.port != self.port:
                    raise FieldProblem(("real_servers", i, "port"),
                                       f"LVS-{self.lb_kind} cannot remap ports: real server port {rs.port} "
                                       f"differs from virtual port {self.port}",
                                       f"set port: {self.port} (or drop it), or use lb_kind: NAT")
        elif self.group is not None:
            for i, rs in enumerate(self.real_servers):
                if rs.port is None:
                    raise FieldProblem(("real_servers", i, "port"), "a group's LVS-NAT real server needs its "
                                       "port (the group's members carry theirs)", "set port")
        for p in option_problems(self):
            raise p
        return self


class SyncDaemon(Strict):
    """IPVS connection sync between directors, so established connections survive a failover
    (docs/SYNC-DAEMON.md)."""
    interface: str = Field(description="The interface the sync daemons send and listen on (multicast 224.0.0.81).")
    syncid: int = Field(1, ge=0, le=255, description="The sync id master and backup daemons share (keepalived's "
                        "own default: the instance's virtual_router_id).")
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
    mode: Literal["keepalived", "notify", "static"] = Field("keepalived", description="Who flips the daemons: "
                                                            "keepalived (its VRRP process), notify (lbtk-ipvs-sync "
                                                            "from the instance's notify; 3+ directors) or static "
                                                            "(started once at deploy).")
    vrrp_instance: str | None = Field(None, description="The instance whose MASTER runs the master daemon; unset: "
                                      "the first vrrp_instance.")

    _if = field_validator("interface")(check_ifname)


NGINX_SITES = "/etc/nginx/sites-enabled"   # nginx.conf includes every file here (Debian)
NGINX_SITE = "lbtk.conf"                    # the toolkit's own site in it (fabfile/core/render/nginx.py)


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
    """The toolkit's nginx site on every node (sites-enabled/lbtk.conf, default_server): the real
    servers' service."""
    port: int = Field(80, ge=1, le=65535, description="The port the site listens on.")
    page: str = Field("<h1>{node}</h1>\n<p>served by {node} ({host})</p>\n", description="The page it serves; "
                      "{node}, {host} and {cluster} are filled in per node ({{ and }} for a brace).")
    # Files in /etc/nginx/sites-enabled/ the nginx phase removes (and keeps removed). The phase owns
    # only what it renders: any other site is the operator's and is left alone unless named here
    # (e.g. [default]: Debian's default site claims default_server on :80 as lbtk.conf does, and
    # nginx -t refuses two).
    remove_sites: list[Annotated[str, AfterValidator(site_name)]] = Field([], description="Files in "
                                                                          "sites-enabled/ the nginx phase removes and "
                                                                          "keeps removed (e.g. default).")

    _page = field_validator("page")(lambda v: format_fields(v, ("node", "host", "cluster"), "page"))

    @field_validator("remove_sites")
    @classmethod
    def _once(cls, v: list[str]) -> list[str]:
        twice = sorted({x for x in v if v.count(x) > 1})
        if twice:
            raise FieldProblem((), f"{', '.join(twice)} listed more than once", "name each site once")
        return v


class GlobalDefs(Strict):
    """keepalived's global_defs."""
    router_id: str = Field("{node}", description="The string identifying the machine in keepalived's logs and "
                           "mails ({node}, {NODE}: the node's name; keepalived's own default: the host name). "
                           "The old name lvs_id is read as router_id.")
    enable_script_security: bool = Field(True, description="Refuse to run a script as root when a non-root user "
                                         "may write any part of its path; written whenever vrrp_scripts exist.")
    script_user: str | None = Field("root", description="The user scripts and notify commands run as (keepalived's "
                                    "own default: keepalived_script if it exists, else root); written only with "
                                    "scripts.")
    notification_email: list[str] = Field([], description="Who gets keepalived's alert mails (smtp_alert), one "
                                          "address each.")
    notification_email_from: str | None = Field(None, description="The mails' From address; unset: keepalived's "
                                                "keepalived@HOSTNAME.")
    smtp_server: SmtpServer | None = Field(None, description="The SMTP relay the mails go through: `HOST [PORT]` "
                                           "(an address or a DNS name; port 25 unset). keepalived resolves a name "
                                           "as it reads its config: `keepalived -t` fails where it does not resolve.")
    smtp_connect_timeout: int | None = Field(None, ge=1, le=4294, description="Seconds to reach smtp_server; "
                                             "unset: keepalived's 30.")
    smtp_alert: bool | None = Field(None, description="Mail on every VRRP and checker state change (true), or never "
                                    "(false); an instance's own smtp_alert wins; unset: keepalived's off.")
    vrrp_garp_interval: float | None = Field(None, ge=0.000001, le=4294, description="Seconds between the "
                                             "gratuitous ARPs of one burst on an interface (microseconds at "
                                             "most); unset: none.")
    vrrp_gna_interval: float | None = Field(None, ge=0.000001, le=4294, description="The same for IPv6 unsolicited "
                                            "neighbour advertisements.")
    vrrp_garp_master_delay: int | None = Field(None, ge=0, le=4294, description="Seconds after becoming MASTER "
                                               "before the second burst of gratuitous ARPs (0: none); unset: "
                                               "keepalived's 5; an instance's garp_master_delay wins.")
    vrrp_garp_master_repeat: int | None = Field(None, ge=1, description="Gratuitous ARPs per burst; unset: "
                                                "keepalived's 5.")
    vrrp_garp_master_refresh: int | None = Field(None, ge=0, description="Seconds between repeated bursts while "
                                                 "MASTER (0: none); unset: none.")
    vrrp_garp_master_refresh_repeat: int | None = Field(None, ge=1, description="Gratuitous ARPs per refresh "
                                                        "burst; unset: keepalived's 1.")
    vrrp_garp_lower_prio_delay: int | None = Field(None, ge=0, le=4294, description="Seconds before the second "
                                                   "burst after a lower-priority advert is seen; unset: "
                                                   "vrrp_garp_master_delay.")
    vrrp_garp_lower_prio_repeat: int | None = Field(None, ge=0, le=2**31 - 1, description="Gratuitous ARPs per "
                                                    "burst then (0: none); unset: vrrp_garp_master_repeat.")
    vrrp_skip_check_adv_addr: bool = Field(False, description="Skip comparing an advert's addresses with the "
                                           "instance's when it comes from the same MASTER as the last one.")
    vrrp_strict: bool = Field(False, description="Strict RFC 3768/5798 compliance: multicast only (unicast: false), "
                              "no authentication, no preempt_delay, no IPv6 instance, no state MASTER; keepalived "
                              "also adds firewall rules dropping traffic to the VIPs.")
    notify_fifo: str | None = Field(None, description="A FIFO keepalived creates and writes every VRRP and checker "
                                    "state change to, one line each (absolute path).")
    notify_fifo_script: str | None = Field(None, description="A command keepalived starts to read notify_fifo "
                                           "(the FIFO's path appended).")
    vrrp_notify_fifo: str | None = Field(None, description="A FIFO for VRRP state changes only.")
    vrrp_notify_fifo_script: str | None = Field(None, description="A command reading vrrp_notify_fifo.")
    lvs_notify_fifo: str | None = Field(None, description="A FIFO for virtual and real server state changes only.")
    lvs_notify_fifo_script: str | None = Field(None, description="A command reading lvs_notify_fifo.")
    max_auto_priority: int | None = Field(None, ge=-1, le=99, description="The highest realtime priority "
                                          "keepalived raises its processes to when they run late (-1: never); "
                                          "unset: keepalived's own (none).")
    lvs_timeouts: LvsTimeouts | None = Field(None, description="IPVS connection timeouts (tcp, tcpfin, udp "
                                             "seconds); unset: the kernel's.")

    _legacy = model_validator(mode="before")(
        classmethod(lambda cls, v: global_defs.read_legacy(v, global_defs.LEGACY_GLOBAL)))

    @field_validator("router_id")
    @classmethod
    def _router_id(cls, v: str) -> str:
        format_fields(v, ("node", "NODE"), "router_id")
        keepalived_word(v.replace("{node}", "x").replace("{NODE}", "X"), "router_id")
        return v

    _user = field_validator("script_user")(lambda v: v if v is None else keepalived_word(v, "script_user"))
    _emails = field_validator("notification_email")(lambda v: [global_defs.email_address(x) for x in v])
    _from = field_validator("notification_email_from")(lambda v: v if v is None else global_defs.email_address(v))
    _fifos = field_validator(*global_defs.FIFOS)(global_defs.fifo_path)
    _fifo_scripts = field_validator(*(f + "_script" for f in global_defs.FIFOS))(
        lambda v: v if v is None else quoted_string(v, "notify_fifo_script"))


FACILITIES = tuple(f"local{i}" for i in range(8))


class Logging(Strict):
    """keepalived's own log file, as the seed sets it up: keepalived logs to syslog `facility`
    (`--log-facility`, `--log-detail` with detail, in /etc/default/keepalived) and an rsyslog rule
    writes that facility to `file` only (not also to /var/log/syslog). The journal keeps it too."""
    facility: str = Field("local0", description="The syslog facility keepalived logs to, one of local0..local7 "
                          "that nothing else on the nodes uses.")
    file: str = Field("/var/log/keepalived.log", description="The file rsyslog writes that facility to (and "
                      "logrotate rotates), an absolute path.")
    detail: bool = Field(False, description="More lines per event (the seed turns it on).")

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
    """How the packages (keepalived, ipvsadm, nginx ...) get onto the nodes."""
    method: Literal["apt", "detect"] = Field("apt", description="apt: the install phase apt-installs what is "
                                             "missing; detect: it only reports it (nodes with no route to a mirror, "
                                             "as the lab's).")


class Probe(Strict):
    """Where HTTP probes through a VIP start (verify's GET, the failover drill's probe): this
    machine, or the SSH gateway (a bastion that can reach the VIPs when this machine cannot)."""
    via: Literal["local", "gateway"] = Field("local", description="local: this machine sends the probes; gateway: "
                                             "the bastion (defaults.ssh.gateway) does, when only it reaches the VIPs.")


class Inventory(Strict):
    cluster: str = Field(description="The cluster's name: in tables, the history, keepalived.conf's header and the "
                         "nginx page's {cluster}.")
    estate: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                               description="Inventories naming the same estate describe the same machines, one of "
                               "them deployed at a time (a lab reconfigured, a blue/green pair): `inv check --all` "
                               "does not compare them with each other. Unset: the inventory is an estate of its own.")
    defaults: Defaults = Field(default_factory=Defaults, description="What every node shares: the VRRP interface, SSH.")
    nodes: list[Node] = Field(min_length=1, description="The directors.")
    global_defs: GlobalDefs = Field(default_factory=GlobalDefs, description="keepalived's global settings.")
    multi_master: bool = Field(False, description="Active-active: each vrrp_instance becomes one instance per node, "
                               "VIP i owned by node i (one VIP per node, virtual_router_id + i).")
    vrrp_scripts: dict[str, VrrpScript] = Field({}, description="Health scripts by name, for track_script.")
    scripts: dict[str, ScriptFile] = Field({}, description="The files the inventory's commands run, by their path "
                                           "on the nodes: shipped from the repository (source, content) or "
                                           "present there already (present: true).")
    vrrp_track_processes: dict[str, VrrpTrackProcess] = Field({}, description="Processes watched by name "
                                                               "(keepalived's vrrp_track_process), for "
                                                               "track_process.")
    track_files: dict[str, TrackFileDef] = Field({}, description="Files holding a number, by name (keepalived's "
                                                 "track_file, formerly vrrp_track_file), for track_file.")
    vrrp_instances: list[VrrpInstance] = Field([], description="The VRRP instances: each a set of VIPs "
                                               "that moves as one; none only when every virtual server's vip is "
                                               "brought by a router (vip_managed_by: external): keepalived then "
                                               "runs the health checker only.")
    vrrp_sync_groups: list[VrrpSyncGroup] = Field([], description="Instances that change state together (a "
                                                  "dual-stack service's IPv4 and IPv6 instances).")
    virtual_servers: list[VirtualServer] = Field([], description="The LVS services.")
    virtual_server_groups: list[VirtualServerGroup] = Field([], description="keepalived's virtual_server_group: "
                                                            "addresses, ranges and fwmarks a virtual server (group: "
                                                            "NAME) serves alike.")
    sync_daemon: SyncDaemon | None = Field(None, description="IPVS connection sync between directors; unset: none.")
    nginx: Nginx = Field(default_factory=Nginx, description="The nginx site on every node.")
    install: Install = Field(default_factory=Install, description="How packages get onto the nodes.")
    lab: Annotated[Any, ExtensionSection("inventory")] = Field(None, description="Lab inventories only: the local "
                                                                "lab's settings (its own schema, fabfile/lab/).")
    probe: Probe = Field(default_factory=Probe, description="Where HTTP probes through a VIP start.")
    logging: Logging | None = Field(None, description="keepalived's own log file (rsyslog); unset: the journal only.")
    monitoring: Monitoring = Field(default_factory=Monitoring, description="The Prometheus alert rules' "
                                   "thresholds and scrape interval (`inv render --monitoring`).")
    templates_dir: str | None = Field(None, description="A directory of Jinja2 templates replacing the toolkit's by "
                                      "name (keepalived.conf.j2 ...), relative to inventories/; keepalived -t still "
                                      "checks what they render.")
    _source: str = PrivateAttr("<inventory>")   # the file it was read from, for one-line errors

    @property
    def source(self) -> str:
        return self._source

    @field_validator("vrrp_scripts", "track_files")
    @classmethod
    def _script_names(cls, v: dict) -> dict:
        for name in v:
            try:
                keepalived_word(name, "vrrp_script name")
            except ValueError as e:
                raise FieldProblem((name,), str(e), "use letters, digits, '_', '-' and '.' in the name") from None
        return v

    @field_validator("scripts")
    @classmethod
    def _script_paths(cls, v: dict) -> dict:
        for path, entry in v.items():
            try:
                node_path(path, entry)
            except FieldProblem:
                raise
            except ValueError as e:
                raise FieldProblem((path,), str(e), "write the path as one word: no spaces, quotes, '#' or '!'") \
                    from None
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
        from fabfile.model.loading import inventory_dir   # (loading imports this module)
        p = Path(self.templates_dir)
        return str(p if p.is_absolute() else inventory_dir() / p)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def interface_of(self, node: Node, vi: VrrpInstance | None = None) -> str:
        return (vi and vi.interface) or node.interface or self.defaults.interface

    def vip_interface(self, node: Node, vi: VrrpInstance, spec: str) -> str:
        """The interface a VIP goes on: its own `dev`, else its instance's."""
        return parse_vip(spec)[2].get("dev") or self.interface_of(node, vi)

    def ip_on(self, node: Node, iface: str, family: int) -> str | None:
        """THE place that answers "this node's address of family F on interface I": the entry in
        node.interfaces, else the node's own address (its VRRP segment's, as before interfaces:)."""
        entry = node.interfaces.get(iface)
        return entry.ips.get(family) if entry is not None else node.ip_of(family)

    def network_on(self, node: Node, iface: str, family: int):
        entry = node.interfaces.get(iface)
        return entry.network_of(family) if entry is not None else node.network_of(family)

    def ssh_of(self, node: Node) -> SSH:
        """defaults.ssh with the node's own ssh: fields over it (field by field)."""
        return self.defaults.ssh.merged(node.ssh)

    def real_server_address(self, rs: RealServer, vs: VirtualServer | None = None) -> str:
        """The real server's address; a node's is its address of `vs`'s family (its primary one
        when no vs is named, or when it has none of that family: validation refused that)."""
        if not rs.node:
            return rs.address
        n = self.node(rs.node)
        return (n.ip_of(vs.family) if vs is not None else None) or n.ip

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


def cross_problems(inv: "Inventory"):
    """Every rule that spans fields, each broken one yielded as a FieldProblem (all are reported)."""
    yield from _unique(inv.nodes, "name", ("nodes",))
    yield from _unique(inv.nodes, "host", ("nodes",))
    yield from _unique([n for n in inv.nodes if n.address], "address", ("nodes",))
    yield from _unique(inv.nodes, "address6", ("nodes",), skip_none=True)
    yield from interface_address_problems(inv)
    yield from io.priority_problems(inv)
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
    yield from extensions.cross_problems(inv)
    if inv.lab is None:   # a clone minting its own secret would push it to every node unasked
        for i, vi in enumerate(inv.vrrp_instances):
            if vi.authentication is not None and vi.authentication.generate:
                yield FieldProblem(("vrrp_instances", i, "authentication", "generate"),
                                   "generate: true is for lab inventories only (one with a lab: section): "
                                   "a fresh clone would mint a new secret and the next deploy install it",
                                   "drop it and copy the cluster's secret file from the teammate who holds it "
                                   "(`inv rotate-vrrp-secret` makes a new one on purpose)")
    names = {n.name for n in inv.nodes}
    for i, vi in enumerate(inv.vrrp_instances):
        loc = ("vrrp_instances", i)
        if vi.owner is not None and vi.owner not in names:
            yield FieldProblem(loc + ("owner",), f"unknown node {vi.owner!r}",
                               f"use one of {sorted(names)}")
        if vi.nopreempt:
            for k, n in enumerate(inv.nodes):
                if n.state == "MASTER" and n.name not in (vi.state or {}):
                    yield FieldProblem(("nodes", k, "state"),
                                       "nopreempt is silently cleared with state MASTER "
                                       f"(vrrp_instances[{i}] sets nopreempt)",
                                       "set state: BACKUP on every node when using nopreempt")
        lacking = [k for k, n in enumerate(inv.nodes) if inv.ip_on(n, inv.interface_of(n, vi), vi.family) is None]
        for k in lacking:
            n = inv.nodes[k]
            iface = inv.interface_of(n, vi)
            if iface in n.interfaces:
                yield FieldProblem(("nodes", k, "interfaces", iface),
                                   f"{n.name} has no {FAMILY_NAME[vi.family]} address on {iface}, and "
                                   f"vrrp_instances[{i}] ({vi.name}) runs there (unicast_src_ip, peers, its subnet)",
                                   f"add the node's {FAMILY_NAME[vi.family]} address on {iface}")
                continue
            yield FieldProblem(("nodes", k, "address6" if vi.family == 6 else "address"),
                               f"{n.name} has no {FAMILY_NAME[vi.family]} address, and vrrp_instances[{i}] "
                               f"({vi.name}) is {FAMILY_NAME[vi.family]} (unicast_src_ip, peers, its subnet)",
                               "add address6: the node's IPv6 address on the VRRP segment" if vi.family == 6
                               else "give address (or host) the node's IPv4 address")
        for j, spec in enumerate(vi.virtual_ipaddress):
            if lacking:
                break
            vip = vi.vips[j]
            nets = [inv.network_on(n, inv.vip_interface(n, vi, spec), vi.family) for n in inv.nodes]
            if not any(net is not None and ipaddress.ip_address(vip) in net for net in nets):
                yield FieldProblem(loc + ("virtual_ipaddress", j),
                                   f"VIP {vip} is outside every node's subnet"
                                   + (f" on {inv.vip_interface(inv.nodes[0], vi, spec)}"
                                      if any(n.interfaces for n in inv.nodes) else ""),
                                   "use an address in the nodes' subnet (or fix nodes[].prefixlen"
                                   + ("6" if vi.family == 6 else "") + ", or the interface's entry in "
                                   "nodes[].interfaces)")
        if inv.multi_master and len(vi.vips) != len(inv.nodes):
            yield FieldProblem(loc + ("virtual_ipaddress",),
                               f"multi_master needs one VIP per node ({len(inv.nodes)}), got {len(vi.vips)}",
                               "list exactly one VIP per node; VIP i is owned by node i")
    yield from sync_group_problems(inv)
    yield from global_defs.problems(inv)
    yield from io.instance_problems(inv)
    yield from tracking_problems(inv)
    yield from checker_problems(inv)
    for i, vs in enumerate(inv.virtual_servers):
        for j, rs in enumerate(vs.real_servers):
            if rs.node is not None and rs.node not in names:
                yield FieldProblem(("virtual_servers", i, "real_servers", j, "node"),
                                   f"unknown node {rs.node!r}", f"use one of {sorted(names)}")
            elif rs.node is not None and inv.node(rs.node).ip_of(vs.family) is None:
                k = next(k for k, n in enumerate(inv.nodes) if n.name == rs.node)
                yield FieldProblem(("nodes", k, "address6" if vs.family == 6 else "address"),
                                   f"{rs.node} is a real server of virtual_servers[{i}] "
                                   f"({FAMILY_NAME[vs.family]}) but has no {FAMILY_NAME[vs.family]} address",
                                   "add address6: the node's IPv6 address" if vs.family == 6
                                   else "give address (or host) the node's IPv4 address")
        if inv.director_fix_applies(vs):
            for k, n in enumerate(inv.nodes):
                if n.mac is None:
                    yield FieldProblem(("nodes", k, "mac"),
                                       f"{n.name} is a director and a DR real server of "
                                       f"virtual_servers[{i}]: the fwmark fix needs its MAC",
                                       "add mac: (from `ip link show`) or set director_fix: false")
    if inv.sync_daemon and any(4 not in n.ips for n in inv.nodes):
        bare = [n.name for n in inv.nodes if 4 not in n.ips]
        yield FieldProblem(("sync_daemon",), f"the IPVS sync daemon sends on IPv4 multicast (224.0.0.81) from "
                           f"its interface's IPv4 address; {', '.join(bare)} have none",
                           "give every node an IPv4 address (address or host; IPv6 connections sync over it), "
                           "or drop sync_daemon")
    if inv.sync_daemon and inv.sync_daemon.vrrp_instance:
        if inv.sync_daemon.vrrp_instance not in {v.name for v in inv.vrrp_instances}:
            yield FieldProblem(("sync_daemon", "vrrp_instance"),
                               f"unknown vrrp_instance {inv.sync_daemon.vrrp_instance!r}",
                               "name one of vrrp_instances[].name")
    if inv.sync_daemon and inv.sync_daemon.mode == "notify" and inv.vrrp_instances:
        name = inv.sync_daemon.vrrp_instance or inv.vrrp_instances[0].name
        i, vi = next(((i, v) for i, v in enumerate(inv.vrrp_instances) if v.name == name), (None, None))
        if vi is not None and vi.notify:
            yield FieldProblem(("vrrp_instances", i, "notify"),
                               "sync_daemon mode notify uses this instance's notify for lbtk-ipvs-sync",
                               "call your script from notify_master/notify_backup/notify_fault, "
                               "or set sync_daemon.mode: keepalived")

    yield from address_problems(inv)
    yield from scripts_problems(inv)


def interface_address_problems(inv: "Inventory"):
    """An address in nodes[].interfaces is one node's: not another node's, on any of its networks."""
    owner: dict[str, str] = {}
    for n in inv.nodes:
        for a in n.ips.values():
            owner.setdefault(a, n.name)
    for k, n in enumerate(inv.nodes):
        for iface, entry in n.interfaces.items():
            for family, a in entry.ips.items():
                if owner.setdefault(a, n.name) != n.name:
                    yield FieldProblem(("nodes", k, "interfaces", iface, "address6" if family == 6 and entry.address
                                        else "address"), f"{a} is {owner[a]}'s address too",
                                       "give each node its own address on every interface")
                if iface == inv.interface_of(n) and a != n.ip_of(family):
                    yield FieldProblem(("nodes", k, "interfaces", iface),
                                       f"{iface} is {n.name}'s VRRP interface, whose address is the node's own "
                                       f"({n.ip_of(family) or 'address'})", f"drop the interfaces entry for {iface} "
                                       "(address and prefixlen on the node say it)")


def sync_group_problems(inv: "Inventory"):
    """keepalived's vrrp_sync_group rules (keepalived -t): known instances, each in one group at
    most, two or more a group; ours: one owner a group (the group moves as one)."""
    yield from _unique(inv.vrrp_sync_groups, "name", ("vrrp_sync_groups",))
    known = {vi.name: vi for vi in inv.vrrp_instances}
    member_of: dict[str, int] = {}
    for g, grp in enumerate(inv.vrrp_sync_groups):
        loc = ("vrrp_sync_groups", g, "group")
        if len(grp.group) < 2:
            yield FieldProblem(loc, f"sync group {grp.name} has one instance (keepalived: \"this probably "
                               "isn't what you want\")", "list two or more instances, or drop the group")
        for j, name in enumerate(grp.group):
            if name not in known:
                yield FieldProblem(loc + (j,), f"unknown vrrp_instance {name!r}",
                                   f"name one of {sorted(known)}")
            elif name in member_of:
                yield FieldProblem(loc + (j,), f"{name} is already in vrrp_sync_groups[{member_of[name]}] "
                                   "(keepalived: an instance is in one sync group at most)",
                                   "keep it in one group")
            else:
                member_of[name] = g
        owners = {known[n].owner for n in grp.group if n in known}
        if len(owners) > 1:
            yield FieldProblem(loc, f"sync group {grp.name} moves as one, but its instances name different "
                               f"owners ({', '.join(sorted(str(o) for o in owners))})",
                               "give the group's instances one owner (or none)")


def vrid_problems(inv: "Inventory"):
    """Two instances on the same interface need different virtual_router_ids (on different
    interfaces the same id is legal: they are different segments; so are an IPv4 and an IPv6
    instance: VRRP over IPv4 and over IPv6 are separate spaces, virtual MACs 00:00:5e:00:01:ID
    and 00:00:5e:00:02:ID)."""
    seen: dict[tuple[int, str, int], int] = {}
    for i, vi in enumerate(inv.vrrp_instances):
        ifaces = {inv.interface_of(n, vi) for n in inv.nodes}
        for iface in sorted(ifaces):
            key = (vi.virtual_router_id, iface, vi.family)
            if key in seen and seen[key] != i:
                yield FieldProblem(("vrrp_instances", i, "virtual_router_id"),
                                   f"duplicate virtual_router_id {vi.virtual_router_id} on {iface} "
                                   f"(also vrrp_instances[{seen[key]}])",
                                   "each VRRP instance on a segment needs its own virtual_router_id")
                break
            seen.setdefault(key, i)


def address_problems(inv: "Inventory"):
    """VIPs that keepalived would take but that break the cluster, and addresses that collide."""
    hosts = {a: k for k, n in enumerate(inv.nodes)
             for a in [*n.ips.values(), *(x for e in n.interfaces.values() for x in e.ips.values())]}
    vip_at: dict[str, tuple] = {}
    for i, vi in enumerate(inv.vrrp_instances):
        for j, spec in enumerate(vi.virtual_ipaddress):
            loc = ("vrrp_instances", i, "virtual_ipaddress", j)
            addr, plen, _ = parse_vip(spec)
            ip = ipaddress.ip_address(addr)
            if addr in hosts:
                n = inv.nodes[hosts[addr]]
                yield FieldProblem(loc, f"VIP {addr} is {n.name}'s own address (nodes[{hosts[addr]}]): "
                                   f"keepalived would delete it from {n.name} whenever it turns BACKUP",
                                   "use a free address in the subnet for the VIP")
            for n in inv.nodes:
                net = inv.network_on(n, inv.vip_interface(n, vi, spec), ip.version)
                if net is None:
                    continue
                if ip.version == 6:
                    if net.prefixlen <= 126 and ip == net.network_address:
                        yield FieldProblem(loc, f"VIP {addr} is the subnet-router anycast address of {net} "
                                           f"({n.name}'s subnet)", "use a host address inside the subnet")
                        break
                elif net.prefixlen <= 30 and ip in (net.network_address, net.broadcast_address):
                    what = "network" if ip == net.network_address else "broadcast"
                    yield FieldProblem(loc, f"VIP {addr} is the {what} address of {net} ({n.name}'s subnet)",
                                       "use a host address inside the subnet")
                    break
            if ip.version == 4 and plen is not None and plen < 32:
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
        key = ("fwmark", vs.fwmark, vs.protocol) if vs.fwmark and not vs.vip else \
            ("group", vs.group, vs.protocol) if vs.group else (vs.vip, vs.port, vs.protocol)
        if key in seen_vs and not vs.group:   # a group used twice: group_problems says it
            yield FieldProblem(loc, f"virtual server {vs.vip or 'fwmark ' + str(vs.fwmark)}:{vs.port}/{vs.protocol} "
                               f"is listed twice (also virtual_servers[{seen_vs[key]}])",
                               "merge their real_servers into one entry")
        else:
            seen_vs[key] = i
        if vs.vip is not None and vs.vip not in vip_at and vs.vip_managed_by == "vrrp":
            yield FieldProblem(loc + ("vip",), f"{vs.vip} is not a VIP of any vrrp_instance: no director "
                               "would hold it", "add it to a vrrp_instance's virtual_ipaddress, or fix vip (a router "
                               "brings it to every director: vip_managed_by: external)")
        seen_rs: dict[tuple, int] = {}
        for j, rs in enumerate(vs.real_servers):
            rloc = loc + ("real_servers", j)
            addr = inv.real_server_address(rs, vs) if (rs.address or rs.node in {n.name for n in inv.nodes}) \
                else None
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
    yield from group_problems(inv, vip_at)
    yield from sorry_problems(inv)


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


def _unique(items, attr: str, loc: tuple, fix: str | None = None, skip_none: bool = False):
    seen: dict = {}
    for i, it in enumerate(items):
        v = getattr(it, attr)
        if skip_none and v is None:
            continue
        if v in seen:
            yield FieldProblem(loc + (i, attr),
                               f"duplicate {attr} {v!r} (also {loc[-1]}[{seen[v]}])",
                               fix or f"give each entry its own {attr}")
        else:
            seen[v] = i
