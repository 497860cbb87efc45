"""Virtual-server-level keepalived options, the virtual_server_group, and directors whose VIPs
something other than VRRP brings to them (BGP/ECMP): the model's side.

keepalived 2.2.7 and 2.3.3 (keepalived -t, both) take every keyword here; what they silently
reset or skip is refused below, one FieldProblem each:
  - `ops` on a service that is not UDP ("one packet scheduling requires UDP - resetting");
  - `ha_suspend` with a fwmark ("cannot use ha_suspend with fwmarks - clearing ha_suspend");
  - `quorum` above the real servers' total weight ("reducing quorum"), `hysteresis` >= `quorum`;
  - a sorry server of the other family ("skipping sorry server"), or on another port with DR/TUN
    forwarding ("sorry server ports don't match - resetting").
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from fabfile.model.fields import FieldProblem, Strict, _check_any_ip, family_of, keepalived_word, quoted_string

if TYPE_CHECKING:
    from fabfile.model.schema import Inventory, VirtualServer

LVS_METHODS = ("NAT", "DR", "TUN")
GROUP_RANGE_MAX = 256        # addresses one range of a virtual_server_group may expand to (one IPVS service each)


def _command(v: str | None) -> str | None:
    return v if v is None else quoted_string(v, "command")


class SorryServer(Strict):
    """keepalived's sorry_server: what IPVS holds instead of the real servers when the quorum is
    lost (every real server down, with the default quorum)."""
    address: str = Field(description="The sorry server's address, of the virtual server's family.")
    port: int | None = Field(None, ge=1, le=65535, description="Its port; unset: the virtual server's (only NAT "
                             "may differ: keepalived resets a DR or TUN sorry server's port).")

    _addr = field_validator("address")(_check_any_ip)


class RealServerOptions(Strict):
    """A real server's keepalived options beside its weight and health checks."""
    inhibit_on_failure: bool = Field(False, description="A failing real server stays in IPVS with weight 0 "
                                     "(its connections live on) instead of being removed.")
    notify_up: str | None = Field(None, description="Command keepalived runs when the real server's checks pass "
                                  "again (read in double quotes: no \", # or !).")
    notify_down: str | None = Field(None, description="Command keepalived runs when its checks fail.")
    uthreshold: int | None = Field(None, ge=0, le=2**31 - 1, description="IPVS upper connection threshold: no new "
                                   "connections above it (0 or unset: none).")
    lthreshold: int | None = Field(None, ge=0, le=2**31 - 1, description="IPVS lower threshold: new connections "
                                   "again once below it; below uthreshold.")

    _notify = field_validator("notify_up", "notify_down")(_command)

    @model_validator(mode="after")
    def _thresholds(self):
        if self.lthreshold is not None and self.lthreshold > 0 and not self.uthreshold:
            raise FieldProblem(("lthreshold",), "lthreshold without uthreshold means nothing to IPVS",
                               "set uthreshold (the upper bound), or drop lthreshold")
        if self.lthreshold and self.uthreshold and self.lthreshold >= self.uthreshold:
            raise FieldProblem(("lthreshold",), f"lthreshold {self.lthreshold} is not below uthreshold "
                               f"{self.uthreshold} (keepalived takes it; IPVS would never reopen the server)",
                               "make lthreshold smaller than uthreshold")
        return self


class VirtualServerOptions(Strict):
    """A virtual server's keepalived options beside its address, scheduler and real servers."""
    group: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", description="`virtual_server group NAME`: the "
                              "service is every member of that virtual_server_groups entry (no vip, fwmark or port "
                              "of its own).")
    vip_managed_by: Literal["vrrp", "external"] = Field("vrrp", description="vrrp: a vrrp_instance holds the vip; "
                                                        "external: something else routes it to every director (BGP/"
                                                        "ECMP), lbtk puts it on lo of each, and verify expects no VRRP "
                                                        "for it.")
    sorry_server: SorryServer | None = Field(None, description="The server IPVS holds instead of the real servers "
                                             "when the quorum is lost; unset: none.")
    sorry_server_inhibit: bool = Field(False, description="The sorry server stays in IPVS with weight 0 while the "
                                       "real servers serve (inhibit_on_failure for it); needs sorry_server.")
    sorry_server_lvs_method: Literal["NAT", "DR", "TUN"] | None = Field(None, description="How IPVS forwards to "
                                                                        "the sorry server; unset: lb_kind.")
    quorum: int | None = Field(None, ge=1, description="The total weight of live real servers the service needs; "
                               "below it the sorry server replaces them and quorum_down runs; unset: keepalived's 1.")
    hysteresis: int | None = Field(None, ge=0, description="Weight units tolerated around quorum before it counts "
                                   "as lost or gained (a flap dampener); below quorum; unset: 0.")
    quorum_up: str | None = Field(None, description="Command run when the quorum is gained (double quotes: no \", "
                                  "# or !).")
    quorum_down: str | None = Field(None, description="Command run when the quorum is lost.")
    alpha: bool = Field(False, description="At start-up every real server counts as down until its first check "
                        "passes.")
    omega: bool = Field(False, description="At shutdown run the quorum_down and notify_down commands.")
    ha_suspend: bool = Field(False, description="Suspend the health checks while this node does not hold the vip "
                             "(not with fwmark: keepalived clears it).")
    virtualhost: str | None = Field(None, description="The Host header HTTP_GET checks send by default.")
    ops: bool = Field(False, description="One-packet scheduling: each UDP datagram scheduled on its own "
                      "(ipvsadm -o); UDP only.")
    persistence_engine: Literal["sip"] | None = Field(None, description="IPVS persistence engine (sip: by SIP "
                                                      "Call-ID); UDP with persistence_timeout only.")

    _cmds = field_validator("quorum_up", "quorum_down")(_command)
    _host = field_validator("virtualhost")(lambda v: v if v is None else keepalived_word(v, "virtualhost"))


def option_problems(vs: "VirtualServer"):
    """The rules between a virtual server's options and the rest of it (keepalived -t resets or
    skips each silently)."""
    if vs.ops and vs.protocol != "UDP":
        yield FieldProblem(("ops",), f"ops (one-packet scheduling) is for UDP; keepalived resets it for "
                           f"{vs.protocol}", "drop ops, or use protocol: UDP")
    if vs.persistence_engine is not None:
        if vs.protocol != "UDP":
            yield FieldProblem(("persistence_engine",), "the sip persistence engine reads UDP datagrams only",
                               "use protocol: UDP, or drop persistence_engine")
        if vs.persistence_timeout is None:
            yield FieldProblem(("persistence_engine",), "a persistence engine works on a persistent service",
                               "set persistence_timeout, or drop persistence_engine")
    if vs.ha_suspend and vs.fwmark is not None:
        yield FieldProblem(("ha_suspend",), "keepalived clears ha_suspend on a fwmark service (no address to "
                           "wait for)", "drop ha_suspend")
    total = sum(rs.weight for rs in vs.real_servers)
    if vs.quorum is not None and vs.quorum > total:
        yield FieldProblem(("quorum",), f"quorum {vs.quorum} exceeds the real servers' total weight {total} "
                           "(keepalived lowers it)", f"use a quorum of at most {total}")
    if vs.hysteresis and vs.hysteresis >= (vs.quorum or 1):
        yield FieldProblem(("hysteresis",), f"hysteresis {vs.hysteresis} is not below quorum {vs.quorum or 1} "
                           "(keepalived sets it to 0)", "make hysteresis smaller than quorum")
    s = vs.sorry_server
    if s is None:
        for k in ("sorry_server_inhibit", "sorry_server_lvs_method"):
            if getattr(vs, k):     # (by value: an inventory dumped and read again states every field)
                yield FieldProblem((k,), f"{k} without sorry_server means nothing", f"add sorry_server, or drop {k}")
        return
    if family_of(s.address) != vs.family:
        yield FieldProblem(("sorry_server", "address"), f"sorry server {s.address} is not of the virtual server's "
                           "family (keepalived skips it)", "give an address of the virtual server's family")
    method = vs.sorry_server_lvs_method or vs.lb_kind
    if method != "NAT" and s.port is not None and vs.port is not None and s.port != vs.port:
        yield FieldProblem(("sorry_server", "port"), f"LVS-{method} cannot remap ports: sorry server port {s.port} "
                           f"differs from virtual port {vs.port} (keepalived resets it)",
                           f"set port: {vs.port} (or drop it), or sorry_server_lvs_method: NAT")
    if vs.group is not None and s.port is None and method == "NAT":
        yield FieldProblem(("sorry_server", "port"), "a group's NAT sorry server needs its own port (the group's "
                           "members carry theirs)", "set sorry_server.port")


def sorry_problems(inv: "Inventory"):
    """A sorry server that is also one of the service's real servers (same address and port) shares
    its IPVS entry: keepalived then overrides sorry_server_inhibit with that real server's
    inhibit_on_failure ("matches sorry server, but inhibit setting differs", check_data.c)."""
    for i, vs in enumerate(inv.virtual_servers):
        s = vs.sorry_server
        if s is None:
            continue
        for j, rs in enumerate(vs.real_servers):
            same = (inv.real_server_address(rs, vs), rs.port or vs.port) == (s.address, s.port or vs.port)
            if same and rs.inhibit_on_failure != vs.sorry_server_inhibit:
                yield FieldProblem(("virtual_servers", i, "sorry_server_inhibit"), f"the sorry server is also "
                                   f"real_servers[{j}], whose inhibit_on_failure differs: keepalived uses the real "
                                   "server's (\"inhibit setting differs\")", f"make sorry_server_inhibit and "
                                   f"real_servers[{j}].inhibit_on_failure the same")


# ------------------------------------------------------------------ virtual_server_group
@dataclass(frozen=True)
class GroupMember:
    """One line of a virtual_server_group: addresses on a port (a range is several), or a fwmark."""
    addresses: tuple[str, ...] = ()
    port: int | None = None
    fwmark: int | None = None
    ip_family: str | None = None     # a fwmark line's `inet` / `inet6`

    @property
    def family(self) -> int | None:
        if self.addresses:
            return family_of(self.addresses[0])
        return None if self.ip_family is None else (6 if self.ip_family == "inet6" else 4)


def parse_member(spec: str) -> GroupMember:
    """'10.0.0.1 80', '10.0.0.1-10 80' (the last part of the address runs to 10; IPv6: the last
    group, hex) or 'fwmark 7 [inet|inet6]' -> GroupMember. ValueError with one sentence."""
    words = spec.split()
    if words and words[0] == "fwmark":
        if len(words) not in (2, 3) or not (words[1].isascii() and words[1].isdigit()) \
                or not 1 <= int(words[1]) <= 2**32 - 1:
            raise ValueError(f"{spec!r}: write fwmark N (1 to 4294967295), optionally inet or inet6")
        if len(words) == 3 and words[2] not in ("inet", "inet6"):
            raise ValueError(f"{spec!r}: a fwmark's family is inet or inet6")
        return GroupMember(fwmark=int(words[1]), ip_family=words[2] if len(words) == 3 else None)
    if len(words) != 2:
        raise ValueError(f"{spec!r} is not ADDRESS PORT, FIRST-LAST PORT or fwmark N (lbtk wants the port: "
                         "a member without one is every port)")
    where, port = words
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise ValueError(f"{spec!r}: port {port!r} is not 1 to 65535")
    if "/" in where:
        raise ValueError(f"{spec!r}: not supported: a prefix as a range (write FIRST-LAST)")
    first, dash, last = where.partition("-")
    first = _check_any_ip(first)
    if not dash:
        return GroupMember((first,), int(port))
    six = family_of(first) == 6
    if "." in last or ":" in last:
        raise ValueError(f"{spec!r}: not supported: a range across the address's last part (write "
                         f"{first}-N, N the last {'group' if six else 'octet'})")
    start = ipaddress.ip_address(first)
    try:
        end_part = int(last, 16 if six else 10)
    except ValueError:
        raise ValueError(f"{spec!r}: {last!r} is not a number") from None
    low = int(start) & (0xFFFF if six else 0xFF)
    if not low < end_part <= (0xFFFF if six else 255):
        raise ValueError(f"{spec!r}: the range's end {last} is not above its start")
    if end_part - low + 1 > GROUP_RANGE_MAX:
        raise ValueError(f"{spec!r}: {end_part - low + 1} addresses, above lbtk's {GROUP_RANGE_MAX} "
                         "(each is an IPVS service verify checks)")
    return GroupMember(tuple(str(start + k) for k in range(end_part - low + 1)), int(port))


class VirtualServerGroup(Strict):
    """keepalived's virtual_server_group: addresses, ranges and fwmarks one virtual_server serves
    alike (`virtual_server group NAME`)."""
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="The group's name, unique; virtual_servers[].group "
                      "names it.")
    members: list[str] = Field(min_length=1, description="`ADDRESS PORT`, `FIRST-LAST PORT` (192.168.1.1-10 80: "
                               "the last octet, IPv6 the last group) or `fwmark N [inet|inet6]`, one family a group.")

    @field_validator("members")
    @classmethod
    def _members(cls, v: list[str]) -> list[str]:
        fams = []
        for k, m in enumerate(v):
            try:
                fams.append(parse_member(m).family)
            except ValueError as e:
                raise FieldProblem((k,), str(e), "e.g. 10.0.0.5 443, 192.168.1.1-10 80 or fwmark 7") from None
        known = [f for f in fams if f is not None]
        for k, f in enumerate(fams):
            if f is not None and f != known[0]:
                raise FieldProblem((k,), "a group holds one family (keepalived mixes them only for tunnelled "
                                   "real servers)", "put the other family's members in a group of their own")
        return v

    @property
    def parsed(self) -> list[GroupMember]:
        return [parse_member(m) for m in self.members]

    @property
    def family(self) -> int | None:
        return next((m.family for m in self.parsed if m.family is not None), None)


def group_problems(inv: "Inventory", vip_at: dict):
    """virtual_server_groups against the virtual servers naming them, and VIPs that no vrrp_instance
    holds unless the virtual server says something else brings them (vip_managed_by: external).
    `vip_at`: {VIP address: its vrrp_instances location}."""
    from fabfile.model.schema import _unique
    yield from _unique(inv.virtual_server_groups, "name", ("virtual_server_groups",))
    groups = {g.name: g for g in inv.virtual_server_groups}
    used: dict[tuple, int] = {}
    for i, vs in enumerate(inv.virtual_servers):
        loc = ("virtual_servers", i)
        external = vs.vip_managed_by == "external"
        if external and vs.vip is not None and vs.vip in vip_at:
            yield FieldProblem(loc + ("vip_managed_by",), f"{vs.vip} is a VIP of a vrrp_instance, yet "
                               "vip_managed_by says external", "drop vip_managed_by, or take the VIP out of the "
                               "vrrp_instance")
        if external and vs.vip is None and vs.group is None:
            yield FieldProblem(loc + ("vip_managed_by",), "a fwmark service without vip has no address to put on lo",
                               "drop vip_managed_by (your own rules mark the packets)")
        if vs.group is None:
            continue
        g = groups.get(vs.group)
        if g is None:
            yield FieldProblem(loc + ("group",), f"unknown virtual_server_group {vs.group!r}",
                               f"define it under virtual_server_groups (known: {sorted(groups) or 'none'})")
            continue
        fam = g.family
        if fam is not None and fam != vs.family:
            yield FieldProblem(loc + ("group",), f"group {g.name} is IPv{fam}, the virtual server's real servers "
                               f"IPv{vs.family}", "set ip_family to the group's family and give real servers of it")
        if vs.ha_suspend and any(m.fwmark for m in g.parsed):
            yield FieldProblem(loc + ("ha_suspend",), f"group {g.name} holds a fwmark: keepalived clears ha_suspend",
                               "drop ha_suspend, or the group's fwmark")
        key = (vs.group, vs.protocol)
        if key in used:
            yield FieldProblem(loc + ("group",), f"group {g.name} already serves {vs.protocol} "
                               f"(virtual_servers[{used[key]}]): keepalived's rule is one virtual server per "
                               "protocol a group", "merge them")
        used.setdefault(key, i)
        if not external:
            for k, m in enumerate(g.parsed):
                lost = [a for a in m.addresses if a not in vip_at]
                if lost:
                    gi = next(j for j, x in enumerate(inv.virtual_server_groups) if x.name == g.name)
                    yield FieldProblem(("virtual_server_groups", gi, "members", k),
                                       f"{', '.join(lost[:3])}{' ...' if len(lost) > 3 else ''} not a VIP of any "
                                       f"vrrp_instance: no director would hold it (virtual_servers[{i}])",
                                       "add it to a vrrp_instance's virtual_ipaddress, or set vip_managed_by: "
                                       "external on the virtual server")
    if not inv.vrrp_instances and not any(vs.vip_managed_by == "external" for vs in inv.virtual_servers):
        yield FieldProblem(("vrrp_instances",), "no vrrp_instance: nothing brings a VIP to the directors",
                           "add a vrrp_instance, or set vip_managed_by: external on the virtual servers a router "
                           "brings to every director (BGP/ECMP)")
    if not inv.vrrp_instances and inv.sync_daemon is not None:
        yield FieldProblem(("sync_daemon",), "the sync daemons take their roles from a vrrp_instance's state, and "
                           "there is none", "drop sync_daemon (directors behind a router each keep their own "
                           "connections), or add a vrrp_instance")


