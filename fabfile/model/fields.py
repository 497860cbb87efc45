"""The inventory's building blocks: the base model every section derives from, the error a
cross-field rule raises, and the validators of keepalived's words, interface names and addresses.

Every model module (fabfile.model.schema and the sections beside it) builds on these; nothing
here knows an inventory's shape.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

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


IFNAME_CHARS = re.compile(r"[A-Za-z0-9_.@+-]+")


def check_ifname(v: str | None) -> str | None:
    """Linux's rule for interface names (dev_valid_name): 1 to 15 bytes, no '/', ':' or whitespace;
    and ours: only letters, digits and . _ @ + - (Linux also takes `$(...)`, backticks, ';' and
    quotes, which a shell on the node, keepalived or a unit file would act on)."""
    if v is None:
        return v
    if not v or len(v.encode()) >= IFNAMSIZ or v in (".", "..") or not IFNAME_CHARS.fullmatch(v):
        raise ValueError(f"{v!r} is not a valid interface name (1 to {IFNAMSIZ - 1} characters: letters, digits "
                         "and . _ @ + -; a shell, keepalived or systemd would act on anything else)")
    return v


def parse_vip(spec: str) -> tuple[str, int | None, dict[str, str]]:
    """'10.0.0.100/24 dev eth0 label eth0:vip' -> ('10.0.0.100', 24, {'dev': 'eth0', ...});
    an IPv6 VIP ('fd00::100/64 dev eth0') comes back in its canonical form (fd00::100).
    Raises ValueError with one readable sentence."""
    words = spec.split()
    if not words:
        raise ValueError("empty VIP")
    addr, _, prefix = words[0].partition("/")
    addr = _check_any_ip(addr)
    plen = None
    if prefix:
        top, name = (128, "IPv6") if family_of(addr) == 6 else (32, "IPv4")
        if not (prefix.isascii() and prefix.isdigit()) or not 0 <= int(prefix) <= top:
            raise ValueError(f"prefix /{prefix} is impossible for {name} (0 to {top})")
        plen = int(prefix)
    if family_of(addr) == 6:
        _check_vip6(addr)
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
    # extra="forbid" turns every typo in the inventory into an "unknown key" error; strict=True takes
    # a number only as a number and a word only as text (no "80" for 80, no true for 1, no 1 for
    # true), and the loader reads YAML's 0x10, 010, 1e3, yes and on as text (fabfile.model.loading)
    # defer_build: the validators are built on first use, not at import; most imports (inv --list,
    # a view, a parser test) never validate an inventory, and the build costs ~70 ms per process
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True,
                              defer_build=True)


IPv4 = Annotated[str, Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}$")]


def _check_ip(v: str) -> str:
    ipaddress.IPv4Address(v)  # raises ValueError with a readable message
    return v


def family_of(addr: str) -> int:
    """4 or 6: the family of an address literal (already checked)."""
    return 6 if ":" in addr else 4


def _check_ipv6(v: str) -> str:
    """An IPv6 literal, canonical."""
    if ":" not in v:
        raise ValueError(f"{v!r} is not an IPv6 address")
    return _check_any_ip(v)


def _check_any_ip(v: str) -> str:
    """An IPv4 or IPv6 literal; IPv6 comes back canonical (lower case, compressed: as `ip addr`
    and ipvsadm print it, so the checks compare strings). IPv4 keeps its own messages."""
    if ":" not in v:
        return _check_ip(v)
    if "%" in v:
        raise ValueError(f"{v!r} carries a zone (%...): keepalived and IPVS take plain addresses")
    a = ipaddress.IPv6Address(v)   # raises ValueError with a readable message
    if a.ipv4_mapped is not None:
        raise ValueError(f"{v!r} is an IPv4-mapped IPv6 address: write it as IPv4 ({a.ipv4_mapped})")
    return str(a)


def _check_vip6(addr: str) -> None:
    """IPv6 addresses a VIP can never be (the subnet rules come later, in address_problems)."""
    a = ipaddress.IPv6Address(addr)
    if a.is_link_local:
        raise ValueError(f"{addr} is link-local (fe80::/10): no client off the link can reach it "
                         "(keepalived adds its own link-local source for VRRPv3)")
    for bad, what in ((a.is_multicast, "multicast"), (a.is_unspecified, "the unspecified address"),
                      (a.is_loopback, "the loopback address")):
        if bad:
            raise ValueError(f"{addr} is {what}, never a host's address")


def _ip_field(v: str | None) -> str | None:
    return v if v is None else _check_any_ip(v)


def _canonical_vip(spec: str) -> str:
    """The VIP spec with an IPv6 address written canonically (an IPv4 spec is kept as written)."""
    first = spec.split()[0]
    addr, slash, prefix = first.partition("/")
    if ":" not in addr:
        return spec
    canon = _check_any_ip(addr)
    return spec.replace(first, canon + slash + prefix, 1) if canon != addr else spec
