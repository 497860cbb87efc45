"""`ip -j addr` (iproute2 JSON) -> list[Interface]; VIP lookups on the result.

    ip -j addr                      parse_ip_addr(text) -> list[Interface]
    ip -j -4 addr show dev eth0     parse_ip_addr(text) -> [Interface] (or [] if it has no IPv4)
    holds(ifaces, ip)               True if any interface has the address
    address_owner(ifaces, ip)       names of the interfaces holding the address (ip -j order)
    batch_failure(stderr)           `ip -batch -` that failed -> (its failing line, the reason)

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

import functools
import re
from dataclasses import dataclass, field

from fabfile.parsers import ParseError, excerpt, json_field, load_json, same_ip


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
    """`ip -j [-4|-6] addr [show dev X]` -> list[Interface]. Every field is held to the JSON type
    iproute2 prints (a list where an object belongs, a number for a name, null for a list: a
    ParseError naming the entry), so no such value gets past the parser."""
    if not text.strip():
        raise ParseError("empty output from ip -j addr (device missing?)")
    data = load_json(text, "ip -j addr")
    if not isinstance(data, list):
        raise ParseError(f"ip -j addr: expected a JSON list, got {type(data).__name__}")
    return [_interface(d, f"ip -j addr: entry {i}") for i, d in enumerate(data)]


def _interface(d, what: str) -> Interface:
    f = functools.partial(json_field, d, what=what)
    flags = f("flags", list, default=[])
    if not all(isinstance(x, str) for x in flags):
        raise ParseError(f"{what}: 'flags' is not a list of words")
    addrs = [_address(a, f"{what} address {k}") for k, a in enumerate(f("addr_info", list, default=[]))]
    return Interface(f("ifname", str), f("ifindex", int), f("operstate", str, default="UNKNOWN"),
                     f("address", (str, type(None)), default=None), [a for a in addrs if a is not None], flags,
                     f("mtu", int, default=None), f("link_type", str, default=None))


def _address(a, what: str) -> Address | None:
    """One addr_info entry; None for one without a local address (iproute2 always prints it)."""
    f = functools.partial(json_field, a, what=what)
    if f("local", str, default=None) is None:
        return None
    return Address(f("family", str), f("local", str), f("prefixlen", int), f("scope", str, default=""),
                   f("label", str, default=None), f("dynamic", bool, default=False),
                   f("secondary", bool, default=False), f("tentative", bool, default=False))


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
        data = load_json(text, "ip -j -d link")
        return (data[0].get("linkinfo") or {}).get("info_kind", "") if data else ""
    except (ParseError, AttributeError, IndexError, TypeError, KeyError):
        raise ParseError(f"ip -j -d link: not an interface list: {excerpt(text or 'empty output')}") from None


def batch_failure(stderr: str) -> tuple[int | None, str]:
    """`ip -batch -` that failed (tests/fixtures/ip_addr/batch_*.stderr) -> (the 1-based line of its
    input that failed, or None; the reason). iproute2 prints the reason, then "Command failed -:N"."""
    line = None
    reasons = []
    for ln in stderr.splitlines():
        m = re.fullmatch(r"Command failed -:(\d+)", ln.strip())
        if m:
            line = int(m.group(1))
        elif ln.strip():
            reasons.append(ln.strip())
    return line, (reasons[0] if reasons else "failed")
