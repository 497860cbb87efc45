"""vrrp_instance and vrrp_sync_group options beyond the basics: per-instance priority and state,
deliberately equal priorities, multicast sources, VMACs, virtual routes and rules, and the
node's static addresses, routes and rules.

Pure: the validators of route and rule lines (keepalived's own syntax, the words of `ip route` /
`ip rule`), the election facts the model and the VRRP plan share (each node's priority in an
instance, the address its adverts come from), and the cross-field rules, each a FieldProblem.
"""
from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from fabfile.model.fields import FieldProblem, check_ifname, family_of, keepalived_word

if TYPE_CHECKING:
    from fabfile.model.schema import Inventory, Node, VrrpInstance

OWNER_PRIORITY = 255      # VRRP's "address owner" (RFC 3768 5.3.4): keepalived's VRRP_PRIO_OWNER
ROUTE_TYPES = ("blackhole", "unreachable", "prohibit", "throw")
SCOPES = ("host", "link", "global", "nowhere", "site")
U32 = 2**32 - 1


# -- route and rule lines ------------------------------------------------------------------

def _prefix(word: str, what: str) -> int:
    """An address or ADDRESS/N; its family."""
    addr, slash, plen = word.partition("/")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise ValueError(f"{what} {word!r} is not an address or ADDRESS/PREFIX") from None
    if "%" in addr:
        raise ValueError(f"{what} {word!r} carries a zone (%...)")
    if slash:
        top = 32 if ip.version == 4 else 128
        if not (plen.isascii() and plen.isdigit()) or int(plen) > top:
            raise ValueError(f"{what} {word!r}: prefix /{plen} is impossible for IPv{ip.version} (0 to {top})")
        try:
            ipaddress.ip_network(word)
        except ValueError:
            raise ValueError(f"{what} {word!r} has host bits set (write the network, e.g. "
                             f"{ipaddress.ip_interface(word).network})") from None
    return ip.version


def _address(word: str, what: str) -> int:
    if "/" in word:
        raise ValueError(f"{what} {word!r} takes a plain address, no /prefix")
    return _prefix(word, what)


def _number(word: str, what: str, top: int = U32) -> None:
    if not (word.isascii() and word.isdigit()) or int(word) > top:
        raise ValueError(f"{what} {word!r} is not a number from 0 to {top}")


def _table(word: str) -> None:
    """A routing table: a number (1 .. 2^32-1), or one of the names every iproute2 knows (a name
    from rt_tables would have to exist on each node)."""
    if word in ("main", "local", "default"):
        return
    _number(word, "table")
    if int(word) == 0:
        raise ValueError("table 0 is not a table (1 .. 4294967295, or main/local/default)")


def _check_family(families: dict[str, int], spec: str) -> int | None:
    if len(set(families.values())) > 1:
        shown = ", ".join(f"{k} IPv{v}" for k, v in families.items())
        raise ValueError(f"{spec!r} mixes families ({shown})")
    return next(iter(families.values()), None)


def parse_route(spec: str) -> int | None:
    """A virtual_routes / static_routes line as keepalived reads it (`[TYPE] [src ADDR] [to]
    PREFIX [via|gw ADDR] [dev IF] [scope S] [table T] [metric|priority|preference N]
    [protocol P] [mtu N] [onlink] [no_track]`); its family. Raises ValueError, one sentence.
    keepalived tracks a route (restores it, else FAULT) unless no_track: a tracked route needs a
    dev (2.2.7: "cannot track route ... with no interface") and protocol keepalived."""
    words = spec.split()
    if not words:
        raise ValueError("empty route")
    fam: dict[str, int] = {}
    k = 0
    if words[0] in ROUTE_TYPES:
        k = 1
    if k < len(words) and words[k] == "src":
        if k + 1 >= len(words):
            raise ValueError("src needs an address")
        fam["src"] = _address(words[k + 1], "src")
        k += 2
    if k < len(words) and words[k] == "to":
        k += 1
    if k >= len(words):
        raise ValueError(f"{spec!r} names no destination (ADDRESS/PREFIX)")
    fam["destination"] = _prefix(words[k], "destination")
    k += 1
    seen: set[str] = set()
    while k < len(words):
        w = words[k]
        if w in ("onlink", "no_track"):
            k += 1
            continue
        if k + 1 >= len(words):
            raise ValueError(f"{w!r} needs a value")
        v = words[k + 1]
        key = {"gw": "via", "priority": "metric", "preference": "metric"}.get(w, w)
        if key in seen:
            raise ValueError(f"{w} given twice")
        seen.add(key)
        if key == "via":
            fam[w] = _address(v, w)
        elif key == "dev":
            if not check_ifname_ok(v):
                raise ValueError(f"dev {v!r} is not a valid interface name")
        elif key == "table":
            _table(v)
        elif key == "metric":
            _number(v, w)
        elif key == "mtu":
            _number(v, w, 65535)
        elif key == "scope":
            if v not in SCOPES:
                _number(v, "scope", 255)
        elif key == "protocol":
            keepalived_word(v, "protocol")
        else:
            raise ValueError(f"not supported: {w!r} (lbtk reads src, to, via/gw, dev, scope, table, "
                             "metric/priority/preference, protocol, mtu, onlink, no_track; 2.3.3 deprecates "
                             "'or')")
        k += 2
    if words[0] in ROUTE_TYPES and ("via" in seen or "dev" in seen):
        raise ValueError(f"a {words[0]} route takes no via or dev")
    if "no_track" not in words:
        if "dev" not in seen:
            raise ValueError("keepalived tracks a route by its dev (2.2.7 warns \"cannot track route with no "
                             "interface\"): add dev IF, or no_track")
        if "protocol" in seen:
            raise ValueError("keepalived tracks only its own routes (protocol keepalived): drop protocol, "
                             "or add no_track")
    return _check_family(fam, spec)


def parse_rule(spec: str) -> int | None:
    """A virtual_rules / static_rules line (`[from PREFIX|all] [to PREFIX|all] [iif IF] [oif IF]
    [fwmark N[/M]] [tos N] preference|priority N table T|goto N [no_track]`); its family
    (None: from all/to all only). Raises ValueError, one sentence."""
    words = spec.split()
    if not words:
        raise ValueError("empty rule")
    fam: dict[str, int] = {}
    seen: set[str] = set()
    k = 0
    while k < len(words):
        w = words[k]
        if w == "no_track":
            k += 1
            continue
        if k + 1 >= len(words):
            raise ValueError(f"{w!r} needs a value")
        v = words[k + 1]
        key = {"priority": "preference", "lookup": "table"}.get(w, w)
        if key in seen:
            raise ValueError(f"{w} given twice")
        seen.add(key)
        if key in ("from", "to"):
            if v != "all":
                fam[w] = _prefix(v, w)
        elif key in ("iif", "oif"):
            if not check_ifname_ok(v):
                raise ValueError(f"{w} {v!r} is not a valid interface name")
        elif key == "fwmark":
            mark, _, mask = v.partition("/")
            for part in (mark, mask) if mask else (mark,):
                if not _int_any_base(part):
                    raise ValueError(f"fwmark {v!r} is not MARK or MARK/MASK (numbers)")
        elif key in ("tos", "preference", "goto"):
            _number(v, w, 255 if key == "tos" else U32)
        elif key == "table":
            _table(v)
        else:
            raise ValueError(f"not supported: {w!r} (lbtk reads from, to, iif, oif, fwmark, tos, "
                             "preference/priority, table/lookup, goto, no_track)")
        k += 2
    if "table" not in seen and "goto" not in seen:
        raise ValueError(f"{spec!r} has no action: give table T (or goto N)")
    if "preference" not in seen:
        raise ValueError("a rule needs a preference (keepalived: \"setting to 16384. This is probably not what "
                         "you want\"): add preference N")
    return _check_family(fam, spec)


def _int_any_base(w: str) -> bool:
    try:
        return 0 <= int(w, 0) <= U32
    except ValueError:
        return False


def check_ifname_ok(v: str) -> bool:
    try:
        check_ifname(v)
        return True
    except ValueError:
        return False


def static_address(spec: str) -> int:
    """A static_ipaddress line: VIP syntax (ADDRESS[/N] [dev IF] [label L] [brd B] [scope S]),
    with a dev (keepalived's default_interface is eth0 otherwise); its family."""
    from fabfile.model.fields import parse_vip
    addr, _, opts = parse_vip(spec)
    if "dev" not in opts:
        raise ValueError(f"{spec!r} names no dev: keepalived would put it on its default_interface (eth0)")
    return family_of(addr)


def lines_validator(parse, what: str, fix: str):
    """A field validator for a list of keepalived lines, each checked by `parse`; a bad line is a
    FieldProblem at its index."""
    def check(v: list[str]) -> list[str]:
        for k, line in enumerate(v):
            try:
                parse(line)
            except ValueError as e:
                raise FieldProblem((k,), f"{what} {line!r}: {e}", fix) from None
        return v
    return check


ROUTE_WORDS = ("`ip route` words: `[src ADDR] PREFIX [via ADDR] dev IF [table T] [metric N] [no_track] ...`, "
               "e.g. `192.168.2.0/24 via 192.168.1.100 dev eth0`.")
RULE_WORDS = ("`ip rule` words: `[from PREFIX] [to PREFIX] preference N table T`, e.g. "
              "`from 192.168.2.0/24 table 100 preference 100`.")
ROUTE_FIX = "write e.g. `192.168.2.0/24 via 192.168.1.100 dev eth0 [table N] [metric N]`"
RULE_FIX = "write e.g. `from 192.168.2.0/24 table 100 preference 100`"
ADDRESS_FIX = "write e.g. `192.168.1.1/24 dev eth1`"


def check_priorities(v: dict[str, int] | None) -> dict[str, int] | None:
    """A per-node priority map: 1 .. 255 (255: the address owner, RFC 3768 5.3.4)."""
    for name, p in (v or {}).items():
        if not 1 <= p <= OWNER_PRIORITY:
            raise FieldProblem((name,), f"{p} is out of range", f"use a value from 1 to {OWNER_PRIORITY} "
                               "(255: the address owner)")
    return v


# -- election facts, one place each ---------------------------------------------------------

def declared_priorities(inv: "Inventory", vi: "VrrpInstance") -> dict[str, int]:
    """{node: priority} as the inventory states it for `vi`: the instance's own priority map over
    each node's priority (owner and multi_master then rotate these, fabfile.core.vrrp)."""
    own = vi.priority or {}
    return {n.name: own.get(n.name, n.priority) for n in inv.nodes}


def own_address(inv: "Inventory", node: "Node", vi: "VrrpInstance") -> str | None:
    """`node`'s address on `vi`'s interface (nodes[].interfaces, else the node's own), of vi's family."""
    return inv.ip_on(node, inv.interface_of(node, vi), vi.family)


def advert_source(inv: "Inventory", node: "Node", vi: "VrrpInstance") -> str | None:
    """The address `node`'s adverts for `vi` come from, which breaks a tie of priorities (RFC 3768
    6.4.3, RFC 5798 6.4.3: the higher primary address wins): unicast_src_ip, else mcast_src_ip,
    else the interface's primary address (the node's address there). None: an IPv6 multicast
    advert, sent from a link-local address the inventory does not know."""
    if vi.unicast:
        return own_address(inv, node, vi)
    if isinstance(vi.mcast_src_ip, dict):
        if node.name in vi.mcast_src_ip:
            return vi.mcast_src_ip[node.name]
    return own_address(inv, node, vi) if vi.family == 4 else None


def mcast_src_of(inv: "Inventory", node: "Node", vi: "VrrpInstance") -> str | None:
    """The mcast_src_ip written in `node`'s instance, or None (keepalived picks the interface's)."""
    if vi.unicast or not vi.mcast_src_ip:
        return None
    if vi.mcast_src_ip is True:
        return own_address(inv, node, vi)
    return vi.mcast_src_ip.get(node.name)


def election_winner(inv: "Inventory", vi: "VrrpInstance", priorities: dict[str, int]) -> str:
    """The node VRRP elects among `priorities`: the highest priority, a tie broken by the highest
    advert source address (validation refuses a tie it cannot break)."""
    def key(n: "Node"):
        src = advert_source(inv, n, vi)
        return priorities[n.name], int(ipaddress.ip_address(src)) if src else -1
    return max(inv.nodes, key=key).name


def tied_top(priorities: dict[str, int]) -> frozenset[str]:
    """The nodes sharing the top priority: VRRP keeps the VIPs on whichever of them holds them (a
    BACKUP does not preempt an equal priority), and elects among them by address when they contend."""
    top = max(priorities.values())
    return frozenset(n for n, p in priorities.items() if p == top)


def uses_vrrp_scripts_weight(inv: "Inventory", vi: "VrrpInstance") -> list[str]:
    """The tracked vrrp_scripts of `vi` that carry a weight."""
    names = [getattr(t, "name", t) for t in vi.track_script]
    return [s for s in names if s in inv.vrrp_scripts and inv.vrrp_scripts[s].weight]


# -- cross-field rules ----------------------------------------------------------------------

def priority_problems(inv: "Inventory"):
    """Duplicate priorities make the election fall to addresses: refused unless the instance says
    equal_priorities: true. Node priorities matter where an instance reads them."""
    from fabfile.model.schema import _unique
    names = [n.name for n in inv.nodes]

    def reads_node_ladder(vi) -> bool:
        if inv.multi_master or vi.owner is not None:
            return True
        return not vi.equal_priorities and len(set(names) - set(vi.priority or {})) >= 2
    if any(reads_node_ladder(vi) for vi in inv.vrrp_instances):
        yield from _unique(inv.nodes, "priority", ("nodes",),
                           fix="give every node its own priority so the MASTER is deterministic (or set "
                               "equal_priorities: true on the instance, per-instance priority)")
    for i, vi in enumerate(inv.vrrp_instances):
        loc = ("vrrp_instances", i)
        own = vi.priority or {}
        prios = declared_priorities(inv, vi)
        if not vi.equal_priorities and own:
            first: dict[int, str] = {}
            for n in names:
                p = prios[n]
                if p in first and (n in own or first[p] in own):
                    at = n if n in own else first[p]
                    yield FieldProblem(loc + ("priority", at), f"duplicate priority {p} in {vi.name} "
                                       f"({first[p]} and {n}): VRRP then elects by address",
                                       "give each node its own priority, or set equal_priorities: true")
                first.setdefault(p, n)
        if vi.equal_priorities:
            if inv.multi_master or vi.owner is not None:
                yield FieldProblem(loc + ("equal_priorities",), "equal_priorities with "
                                   + ("multi_master" if inv.multi_master else "owner")
                                   + ": they rank the nodes by priority, one each",
                                   "drop equal_priorities, or state the priorities on the instance")
            elif len(set(prios.values())) == len(prios):
                yield FieldProblem(loc + ("equal_priorities",), f"equal_priorities: true, but every node "
                                   f"has its own priority in {vi.name}", "drop equal_priorities")
            elif vi.family == 6 and not vi.unicast:
                yield FieldProblem(loc + ("equal_priorities",), "equal priorities are broken by the adverts' "
                                   "source address; an IPv6 multicast advert comes from a link-local address "
                                   "the inventory does not know", "set unicast: true, or give each node its "
                                   "own priority")
        yield from _owner_priority_problems(inv, i, vi, prios)


def _owner_priority_problems(inv: "Inventory", i: int, vi: "VrrpInstance", prios: dict[str, int]):
    loc = ("vrrp_instances", i)
    owners = [n for n, p in (vi.priority or {}).items() if p == OWNER_PRIORITY]
    if len(owners) > 1:
        yield FieldProblem(loc + ("priority", owners[1]), f"priority 255 (the address owner) on {owners[0]} "
                           f"and {owners[1]}: keepalived lowers one at run time (\"both configured as address "
                           "owner\")", "keep 255 on one node at most")
    if owners and vi.nopreempt:
        yield FieldProblem(loc + ("nopreempt",), f"priority 255 on {owners[0]}: keepalived clears nopreempt "
                           "for the address owner", "drop nopreempt, or use a priority below 255")
    if owners:
        for s in uses_vrrp_scripts_weight(inv, vi):
            yield FieldProblem(loc + ("priority", owners[0]), f"priority 255 on {owners[0]}: keepalived drops "
                               f"the weighted track_script {s!r} (the owner's priority never changes)",
                               "use a priority below 255, or a script with weight 0")


def instance_problems(inv: "Inventory"):
    """Per-instance priority/state, mcast_src_ip, use_vmac, against the nodes and each other."""
    names = {n.name for n in inv.nodes}
    vmac_at: dict[str, int] = {}
    for i, vi in enumerate(inv.vrrp_instances):
        loc = ("vrrp_instances", i)
        for key in ("priority", "state"):
            for n in getattr(vi, key) or {}:
                if n not in names:
                    yield FieldProblem(loc + (key, n), f"unknown node {n!r}", f"use one of {sorted(names)}")
        declared = vi.priority or vi.state
        if declared and inv.multi_master:
            yield FieldProblem(loc + ("priority" if vi.priority else "state",), "per-instance priority/state "
                               "with multi_master: multi_master rotates priorities and states itself",
                               "drop multi_master (state each instance's MASTER instead), or drop these")
        elif declared and vi.owner is not None:
            yield FieldProblem(loc + ("owner",), "owner with per-instance priority/state: owner ranks the "
                               "nodes itself", "keep one: owner, or the instance's priority and state")
        if vi.nopreempt:
            for n, s in (vi.state or {}).items():
                if s == "MASTER":
                    yield FieldProblem(loc + ("state", n), "nopreempt is silently cleared with state MASTER",
                                       "set state BACKUP on every node when using nopreempt")
        yield from _mcast_problems(inv, loc, vi, names)
        if vi.use_vmac is not False:
            if vi.unicast and not vi.vmac_xmit_base:
                yield FieldProblem(loc + ("vmac_xmit_base",), "use_vmac with unicast: keepalived sets "
                                   "vmac_xmit_base itself (\"unicast with use_vmac requires vmac_xmit_base\")",
                                   "set vmac_xmit_base: true (or unicast: false)")
            if isinstance(vi.use_vmac, str):
                if vi.use_vmac in vmac_at:
                    yield FieldProblem(loc + ("use_vmac",), f"VMAC interface {vi.use_vmac} is already "
                                       f"vrrp_instances[{vmac_at[vi.use_vmac]}]'s (keepalived ignores the name)",
                                       "give each instance its own VMAC interface name")
                vmac_at.setdefault(vi.use_vmac, i)
                if any(vi.use_vmac == inv.interface_of(n, v) for n in inv.nodes for v in inv.vrrp_instances):
                    yield FieldProblem(loc + ("use_vmac",), f"{vi.use_vmac} is a VRRP interface already: "
                                       "keepalived creates the VMAC as a new macvlan", "name a new interface "
                                       "(e.g. vrrp.ID), or write use_vmac: true")
        elif vi.vmac_xmit_base:
            yield FieldProblem(loc + ("vmac_xmit_base",), "vmac_xmit_base without use_vmac: keepalived ignores it",
                               "drop it, or set use_vmac")


def _mcast_problems(inv: "Inventory", loc: tuple, vi: "VrrpInstance", names: set[str]):
    if not vi.mcast_src_ip:
        return
    if vi.unicast:
        yield FieldProblem(loc + ("mcast_src_ip",), "mcast_src_ip is for multicast instances: a unicast "
                           "one sends from unicast_src_ip (the node's address)", "set unicast: false, or drop it")
        return
    if vi.family == 6:
        yield FieldProblem(loc + ("mcast_src_ip",), "an IPv6 instance's adverts come from the interface's "
                           "link-local address (RFC 5798 5.1.1.1)", "drop mcast_src_ip")
        return
    if vi.mcast_src_ip is True:
        return
    for name, addr in vi.mcast_src_ip.items():
        if name not in names:
            yield FieldProblem(loc + ("mcast_src_ip", name), f"unknown node {name!r}", f"use one of {sorted(names)}")
            continue
        node = inv.node(name)
        if family_of(addr) != vi.family:
            yield FieldProblem(loc + ("mcast_src_ip", name), f"{addr} is IPv{family_of(addr)}, {vi.name} is "
                               f"IPv{vi.family} (keepalived: \"MUST be of the same family\")",
                               f"give {name}'s IPv{vi.family} address")
        elif addr != own_address(inv, node, vi):
            yield FieldProblem(loc + ("mcast_src_ip", name), f"{addr} is not {name}'s address on "
                               f"{inv.interface_of(node, vi)} ({own_address(inv, node, vi)})",
                               f"use {own_address(inv, node, vi)}, or mcast_src_ip: true")


IF_WORDS = ("dev", "iif", "oif")


def named_interfaces(inv: "Inventory", node: "Node") -> set[str]:
    """Interfaces node's keepalived.conf names in routes, rules and static addresses (the real
    `keepalived -t` refuses a missing one: confcheck's namespace must hold them)."""
    lines = [*node.static_ipaddress, *node.static_routes, *node.static_rules,
             *(line for vi in inv.vrrp_instances for line in (*vi.virtual_routes, *vi.virtual_rules))]
    out = set()
    for line in lines:
        words = line.split()
        out |= {words[k + 1] for k, w in enumerate(words[:-1]) if w in IF_WORDS}
    return out
