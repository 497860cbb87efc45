"""`ip -j addr` (iproute2 JSON) -> list[Interface]; VIP lookups on the result.

    ip -j addr                      parse_ip_addr(text) -> list[Interface]
    ip -j -4 addr show dev eth0     parse_ip_addr(text) -> [Interface] (or [] if it has no IPv4)
    holds(ifaces, ip)               True if any interface has the address
    address_owner(ifaces, ip)       names of the interfaces holding the address (ip -j order)

Real behaviour (iproute2 6.1, tests/fixtures/ip_addr/):
- With -4/-6, iproute2 leaves out the link fields: no "address" (MAC), no "link_type", so
  Interface.mac is None there. With -4, an interface without IPv4 addresses is left out
  entirely: `ip -j -4 addr show dev eth1` prints `[]`.
- A missing device prints nothing on stdout (stderr: `Device "eth9" does not exist.`, exit 1):
  empty text raises ParseError.
- keepalived-style VIPs on the interface's subnet are "secondary"; an address added with
  a finite valid_lft is "dynamic"; a label like eth0:vip is per address.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from fabfile.parsers import ParseError, excerpt, same_ip


@dataclass(frozen=True)
class Address:
    family: str                      # inet | inet6
    local: str                       # "10.190.0.100"
    prefixlen: int
    scope: str                       # global | host | link
    label: str | None = None         # IPv4 only: "eth0", "eth0:vip", "lo"
    dynamic: bool = False            # finite lifetime (DHCP/SLAAC or valid_lft given)
    secondary: bool = False
    tentative: bool = False          # IPv6 DAD not finished

    @property
    def cidr(self) -> str:
        return f"{self.local}/{self.prefixlen}"


@dataclass(frozen=True)
class Interface:
    name: str
    ifindex: int
    state: str                       # operstate: UP | DOWN | UNKNOWN (lo) | LOWERLAYERDOWN | ...
    mac: str | None                  # None when ip ran with -4/-6
    addresses: list[Address] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)   # BROADCAST, MULTICAST, UP, LOWER_UP, ...
    mtu: int | None = None
    link_type: str | None = None     # ether | loopback | None (with -4/-6)

    @property
    def up(self) -> bool:
        return "UP" in self.flags

    def has(self, ip: str) -> bool:
        return any(same_ip(a.local, ip) for a in self.addresses)


def parse_ip_addr(text: str) -> list[Interface]:
    """`ip -j [-4|-6] addr [show dev X]` -> list[Interface]."""
    if not text.strip():
        raise ParseError("empty output from ip -j addr (device missing?)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ParseError(f"ip -j addr: not JSON ({e.msg} at char {e.pos}): {excerpt(text)}") from None
    if not isinstance(data, list):
        raise ParseError(f"ip -j addr: expected a JSON list, got {type(data).__name__}")
    out = []
    for i, d in enumerate(data):
        try:
            addrs = [Address(a["family"], a["local"], int(a["prefixlen"]), a.get("scope", ""),
                             a.get("label"), bool(a.get("dynamic")), bool(a.get("secondary")),
                             bool(a.get("tentative")))
                     for a in d.get("addr_info", []) if "local" in a]
            out.append(Interface(d["ifname"], int(d["ifindex"]), d.get("operstate", "UNKNOWN"),
                                 d.get("address"), addrs, list(d.get("flags", [])), d.get("mtu"),
                                 d.get("link_type")))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ParseError(f"ip -j addr: entry {i} lacks or mistypes {e}") from None
    return out


def holds(ifaces: list[Interface], ip: str) -> bool:
    """Does any interface carry `ip`? (Address spelling does not matter.)"""
    return any(i.has(ip) for i in ifaces)


def address_owner(ifaces: list[Interface], ip: str) -> list[str]:
    """Names of the interfaces carrying `ip`, e.g. ['lo'] on a DR real server, ['eth0'] on the
    VRRP master; two names (lo and eth0) on a director that is also a real server."""
    return [i.name for i in ifaces if i.has(ip)]


def interface(ifaces: list[Interface], name: str) -> Interface | None:
    return next((i for i in ifaces if i.name == name), None)


__all__ = ["Address", "Interface", "parse_ip_addr", "holds", "address_owner", "interface"]


def link_kind(text: str) -> str:
    """`ip -j -d link show dev X` -> its kind: 'bridge', 'veth', ... ('' for a plain device)."""
    try:
        data = json.loads(text)
        return (data[0].get("linkinfo") or {}).get("info_kind", "") if data else ""
    except (ValueError, AttributeError, IndexError, TypeError):
        raise ParseError(f"ip -j -d link: not an interface list: {excerpt(text or 'empty output')}") from None
