"""What a keepalived.conf MEANS, as one comparable value, and the differences between two.

Two configs that keepalived runs the same way have equal meanings: layout, comments, quoting,
the order of VIPs, peers, real servers and checkers, legacy keyword names (lvs_sched/lvs_method,
nb_get_retry, lvs_id) and values left at keepalived's documented defaults (`weight 1` and no
weight) do not count. Settings a virtual server or real server gives its checkers are pushed
down to each checker (man keepalived.conf: "the virtual server setting is the default for real
servers, and the real server setting is the default for checkers"). A VRRP password is kept as
a hash of the 8 characters keepalived uses, never in clear.

The value is plain data: dicts keyed by keepalived's own words (`meaning["vrrp_instance"]["VI_1"]
["priority"]`), strings for values, frozensets for what keepalived reads in any order, True for
a flag. Keywords this module has no rule for are kept as written (never dropped), so an unknown
difference still shows. `diff(a, b)` gives one readable line per difference; an importer reads
the same value to build an inventory, and a render of that inventory is checked by comparing
meanings.
"""
from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
from decimal import Decimal, InvalidOperation

from fabfile.model.keepalived_keywords import BLOCKS
from fabfile.parsers.keepalived_conf import Conf, Stmt

Meaning = dict

# legacy keyword -> the name meanings use (keepalived 2.2.7 still reads both)
ALIASES = {"lvs_sched": "lb_algo", "lvs_method": "lb_kind", "nb_get_retry": "retry", "lvs_id": "router_id",
           "nb_sock_retry": "retry"}
CHECKERS = ("HTTP_GET", "SSL_GET", "TCP_CHECK", "SMTP_CHECK", "DNS_CHECK", "MISC_CHECK", "BFD_CHECK",
            "UDP_CHECK", "PING_CHECK", "FILE_CHECK")
# what a virtual server, then a real server, hands down to its checkers
INHERITED_BY_CHECKERS = ("connect_timeout", "retry", "delay_before_retry", "warmup", "delay_loop", "virtualhost")
NO_CONNECTION_OPTIONS = ("MISC_CHECK", "BFD_CHECK", "FILE_CHECK")
NUMBERS = {"priority", "advert_int", "virtual_router_id", "weight", "delay_loop", "connect_timeout", "retry",
           "delay_before_retry", "warmup", "quorum", "hysteresis", "persistence_timeout", "interval", "fall",
           "rise", "timeout", "garp_master_delay", "preempt_delay", "misc_timeout", "connect_port", "version",
           "status_code_", "smtp_connect_timeout", "uthreshold", "lthreshold"}
VRRP_DEFAULTS = {"priority": "100", "advert_int": "1", "state": "BACKUP", "garp_master_delay": "5"}
SCRIPT_DEFAULTS = {"interval": "1", "weight": "0", "rise": "1", "fall": "1"}
VS_DEFAULTS = {"lb_algo": "wlc", "lb_kind": "NAT", "protocol": "TCP", "quorum": "1", "hysteresis": "0"}
CHECKER_DEFAULTS = {"connect_timeout": "5", "retry": "1", "delay_before_retry": "1", "delay_loop": "60"}
PER_CHECKER = {"HTTP_GET": {"delay_before_retry": "3"}, "SSL_GET": {"delay_before_retry": "3"},
               "DNS_CHECK": {"retry": "3", "type": "SOA", "name": "."}, "MISC_CHECK": {"retry": "0"}}
URL_DEFAULTS = {"status_code": "200-299"}


# -- values ----------------------------------------------------------------------------------

def number(text: str) -> str:
    """'1.0' and '1' alike; what is not a number stays as written."""
    try:
        d = Decimal(text).normalize()
    except (InvalidOperation, ValueError):
        return text
    return format(d, "f")


def address(text: str) -> str:
    """An address (or address/prefix) written canonically; anything else as written."""
    try:
        return str(ipaddress.ip_interface(text)) if "/" in text else str(ipaddress.ip_address(text))
    except ValueError:
        return text


def vip(words: list[str], interface: str | None) -> str:
    """A virtual_ipaddress line: the address with its prefix (keepalived's default /32, /128),
    `dev` left out when it is the instance's own interface."""
    head, rest = words[0], words[1:]
    try:
        head = str(ipaddress.ip_interface(head))
    except ValueError:
        pass
    if "dev" in rest[:-1] and rest[rest.index("dev") + 1] == interface:
        k = rest.index("dev")
        rest = rest[:k] + rest[k + 2:]
    return " ".join([head, *rest])


def command(args: list[str]) -> str:
    """A script or notify command: its words, blanks collapsed (`"/bin/x  a"` and `/bin/x a` alike)."""
    return " ".join(" ".join(args).split())


def secret(value: str) -> str:
    """A password's meaning: keepalived uses its first 8 characters; never kept in clear."""
    return "sha256:" + hashlib.sha256(value[:8].encode()).hexdigest()[:16]


def line_of(s: Stmt) -> str:
    return " ".join([s.keyword, *s.args])


def _value(s: Stmt):
    if s.children is not None:
        if all(c.children is None for c in s.children):
            return frozenset(line_of(c) for c in s.children)
        return generic(s.children)
    if not s.args:
        return True
    key = ALIASES.get(s.keyword, s.keyword)
    return number(s.args[0]) if key in NUMBERS and len(s.args) == 1 else " ".join(s.args)


def generic(stmts: list[Stmt]) -> dict:
    """A block as written: keyword -> value (a repeated keyword's values as a frozenset)."""
    out: dict = {}
    for s in stmts:
        key, val = ALIASES.get(s.keyword, s.keyword), _value(s)
        if key in out:
            prev = out[key]
            out[key] = (prev if isinstance(prev, frozenset) else frozenset([_hashable(prev)])) | {_hashable(val)}
        else:
            out[key] = val
    return out


def _hashable(v):
    return tuple(sorted((k, _hashable(x)) for k, x in v.items())) if isinstance(v, dict) else v


def _with_defaults(d: dict, defaults: dict) -> dict:
    return {**defaults, **d}


# -- the parts -------------------------------------------------------------------------------

def vrrp_script(s: Stmt) -> dict:
    d = _with_defaults(generic(s.children or []), SCRIPT_DEFAULTS)
    if s.first("script"):
        d["script"] = command(s.first("script").args)
    return d


def vrrp_instance(s: Stmt, scripts: dict, vrrp_version: str) -> dict:
    d = _with_defaults(generic(s.children or []), VRRP_DEFAULTS)
    iface = s.value("interface")
    for key in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
        d[key] = frozenset(vip([c.keyword, *c.args], iface) for b in s.find(key) for c in b.children or [])
    if "unicast_peer" in d:
        d["unicast_peer"] = frozenset(" ".join([address(c.keyword), *c.args])
                                      for b in s.find("unicast_peer") for c in b.children or [])
    for key in ("unicast_src_ip", "mcast_src_ip"):
        if key in d:
            d[key] = address(d[key])
    six = any(":" in v.split("/")[0] for v in d["virtual_ipaddress"])
    d.setdefault("version", "3" if six else vrrp_version)
    auth = s.first("authentication")
    if auth:
        d["authentication"] = {"auth_type": (auth.value("auth_type") or "").upper(),
                               "auth_pass": secret(auth.value("auth_pass") or "")}
    if s.first("track_script"):
        d["track_script"] = frozenset(_tracked(c, scripts.get(c.keyword, {}).get("weight", "0"))
                                      for b in s.find("track_script") for c in b.children or [])
    if s.first("track_interface"):
        d["track_interface"] = frozenset(_tracked(c, "0") for b in s.find("track_interface")
                                         for c in b.children or [])
    for key in [k for k in d if k.startswith("notify")]:
        d[key] = command(s.first(key).args) if s.first(key) and s.first(key).children is None else d[key]
    return d


def _tracked(c: Stmt, default_weight: str) -> str:
    """A track_script / track_interface line with its weight made explicit."""
    rest = c.args
    weight = rest[rest.index("weight") + 1] if "weight" in rest[:-1] else default_weight
    others = [w for i, w in enumerate(rest) if w != "weight" and (i == 0 or rest[i - 1] != "weight")]
    return " ".join([c.keyword, "weight", number(weight), *others])


def vs_key(s: Stmt) -> str:
    args = s.args
    if args and args[0] in ("fwmark", "group"):
        head = " ".join(args[:2])
    else:
        head = " ".join([address(args[0]) if args else "", args[1] if len(args) > 1 else "0"])
    return f"{head} {(s.value('protocol') or 'TCP').upper()}"


def virtual_server(s: Stmt) -> dict:
    d = _with_defaults(generic([c for c in s.children or [] if c.keyword != "real_server"]), VS_DEFAULTS)
    d["protocol"], d["lb_kind"] = d["protocol"].upper(), d["lb_kind"].upper()
    if d.get("persistence_timeout") is True:
        d["persistence_timeout"] = "360"            # "default 6 minutes"
    if "sorry_server" in d:
        ss = d["sorry_server"].split()
        d["sorry_server"] = " ".join([address(ss[0]), *ss[1:]])
    handed = {k: d.pop(k) for k in INHERITED_BY_CHECKERS if k in d}
    vs_port = s.args[1] if len(s.args) > 1 and s.args[0] not in ("fwmark", "group") else None
    d["real_server"] = {}
    for r in s.find("real_server"):
        key, rs = real_server(r, d, handed, vs_port)
        d["real_server"][key] = rs
    return d


def real_server(r: Stmt, vs: dict, handed: dict, vs_port: str | None) -> tuple[str, dict]:
    addr = address(r.args[0]) if r.args else ""
    port = r.args[1] if len(r.args) > 1 else (vs_port or "0")
    d = generic([c for c in r.children or [] if c.keyword not in CHECKERS])
    d.setdefault("weight", "1")
    d["lb_kind"] = str(d.get("lb_kind", vs["lb_kind"])).upper()
    if "inhibit_on_failure" in vs or "inhibit_on_failure" in d:
        d["inhibit_on_failure"] = _bool(d.get("inhibit_on_failure", vs.get("inhibit_on_failure")))
    handed = {**handed, **{k: d.pop(k) for k in INHERITED_BY_CHECKERS if k in d}}
    found = sorted((kc for c in r.children or [] if c.keyword in CHECKERS for kc in checkers_of(c, handed, addr, port)),
                   key=lambda kc: (kc[0], repr(sorted(kc[1].items(), key=str))))
    kinds = [k for k, _ in found]
    d["checkers"] = {(k if kinds.count(k) == 1 else f"{k}[{kinds[:i].count(k)}]"): c
                     for i, (k, c) in enumerate(found)}
    return f"{addr} {port}", d


# a checker's connection options (keepalived's conn_opts_t): what an SMTP host block brings of its own
CONNECTION_OPTIONS = ("connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "fwmark", "connect_timeout")


def checkers_of(c: Stmt, handed: dict, addr: str, port: str) -> list[tuple[str, dict]]:
    """The checkers one block makes. An SMTP_CHECK with (deprecated) host blocks is several
    (check_smtp.c, smtp_check_end_handler): itself when it sets a connection option of its own,
    then one per host, with the block's other settings and only the host's connection options."""
    hosts = c.find("host") if c.keyword == "SMTP_CHECK" else []
    if not hosts:
        return [checker(c, handed, addr, port)]
    rest = [x for x in c.children or [] if x.keyword != "host"]
    own = any(x.keyword in CONNECTION_OPTIONS for x in rest)
    common = [x for x in rest if x.keyword not in CONNECTION_OPTIONS]
    made = [Stmt(c.keyword, c.args, c.line, [*common, *(h.children or [])]) for h in hosts]
    if own:
        made.insert(0, Stmt(c.keyword, c.args, c.line, rest))
    return [checker(m, handed, addr, port) for m in made]


def checker(c: Stmt, handed: dict, addr: str, port: str) -> tuple[str, dict]:
    kind = c.keyword
    d = generic([x for x in c.children or [] if x.keyword != "url"])
    if kind not in NO_CONNECTION_OPTIONS:
        d = {**CHECKER_DEFAULTS, **PER_CHECKER.get(kind, {}), **handed, **d}
        d.setdefault("connect_ip", addr)
        d.setdefault("connect_port", port)
        d["connect_ip"] = address(d["connect_ip"])
        if kind == "DNS_CHECK" and "delay_before_retry" not in handed and c.first("delay_before_retry") is None:
            d["delay_before_retry"] = d["delay_loop"]
    else:
        d = {**PER_CHECKER.get(kind, {}), **{k: v for k, v in handed.items() if k == "delay_loop"}, **d}
    if "misc_path" in d and c.first("misc_path"):
        d["misc_path"] = command(c.first("misc_path").args)
    if c.first("url"):
        d["url"] = frozenset(_url(u) for u in c.find("url"))
    return kind, d


def _url(u: Stmt) -> str:
    d = _with_defaults(generic(u.children or []), URL_DEFAULTS)
    d["status_code"] = " ".join(sorted(str(d["status_code"]).split()))
    return " ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: kv[0]))


def _bool(v) -> bool:
    return v is True or str(v).lower() in ("true", "yes", "on", "1")


# -- the whole -------------------------------------------------------------------------------

def known_only(stmts: list[Stmt], path: str = "") -> list[Stmt]:
    """The statements keepalived acts on: one its grammar (model/keepalived_keywords.BLOCKS) does
    not know in its block it ignores ("Unknown keyword": the seed's nat_mask, nb_get_retry inside
    TCP_CHECK), so it means nothing. Blocks the grammar does not list are kept whole."""
    known = BLOCKS.get(path)
    out = []
    for s in stmts:
        if known is not None and s.keyword not in known and f"{path}/{s.keyword}".lstrip("/") not in BLOCKS:
            continue
        if s.children is not None:
            sub = f"{path}/{s.keyword}".lstrip("/")
            s = dataclasses.replace(s, children=known_only(s.children, sub) if sub in BLOCKS else s.children)
        out.append(s)
    return out


def meaning_of(conf: Conf) -> Meaning:
    """What `conf` means (module docstring): keyword -> name -> the block's settings, of the
    statements keepalived acts on (known_only)."""
    conf = dataclasses.replace(conf, top=known_only(conf.top))
    gd = generic([c for g in conf.find("global_defs") for c in g.children or []])
    scripts = {s.args[0]: vrrp_script(s) for s in conf.find("vrrp_script") if s.args}
    out: Meaning = {"global_defs": gd, "vrrp_script": scripts,
                    "vrrp_sync_group": {}, "vrrp_instance": {}, "virtual_server_group": {}, "virtual_server": {}}
    for s in conf.find("vrrp_sync_group"):
        d = generic(s.children or [])
        out["vrrp_sync_group"][s.args[0] if s.args else ""] = d
    for s in conf.find("vrrp_instance"):
        out["vrrp_instance"][s.args[0] if s.args else ""] = vrrp_instance(s, scripts, str(gd.get("vrrp_version", "2")))
    for s in conf.find("virtual_server_group"):
        out["virtual_server_group"][s.args[0] if s.args else ""] = frozenset(
            " ".join([address(c.keyword), *c.args]) for c in s.children or [])
    for s in conf.find("virtual_server"):
        out["virtual_server"][vs_key(s)] = virtual_server(s)
    for s in conf.top:                       # keywords with no rule here: as written
        if s.keyword not in out:
            out.setdefault("other", {})
            prev = out["other"].get(s.keyword)
            val = _hashable(_value(s))
            out["other"][s.keyword] = val if prev is None else frozenset(
                (prev if isinstance(prev, frozenset) else {prev}) | {val})
    return out


# what an adoption must keep: per VRRP instance these, and its VIPs as one set (lbtk moves every VIP
# after the first to virtual_ipaddress_excluded); every virtual server and group whole
INSTANCE_BEHAVIOUR = ("virtual_router_id", "priority", "state", "interface", "advert_int", "nopreempt",
                      "preempt_delay", "authentication", "track_script", "track_interface")


def behaviour(m: Meaning) -> dict:
    """The part of a meaning that decides what keepalived does with the traffic: the VRRP
    instances (INSTANCE_BEHAVIOUR and the VIP set) and the virtual servers, whole. global_defs
    (router_id, script security, mail) and the formatting are left out."""
    insts = {}
    for name, vi in m["vrrp_instance"].items():
        vips = {v.split()[0].split("/")[0] for v in vi.get("virtual_ipaddress", frozenset())
                | vi.get("virtual_ipaddress_excluded", frozenset())}
        insts[name] = {k: vi.get(k) for k in INSTANCE_BEHAVIOUR} | {"vips": frozenset(vips)}
    return {"vrrp_instance": insts, "virtual_server": m["virtual_server"],
            "virtual_server_group": m["virtual_server_group"]}


def diff(a: Meaning, b: Meaning) -> list[str]:
    """One line per difference from `a` to `b`: `PATH: OLD -> NEW`, `+ PATH [VALUE]` (only in b),
    `- PATH [VALUE]` (only in a), `PATH: - ITEM, + ITEM` (a set: VIPs, peers, tracked scripts)."""
    return _diff(a, b, [])


def _diff(a, b, path: list[str]) -> list[str]:
    where = " ".join(path)
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                out.append(f"+ {' '.join([*path, str(k)])}{_show(b[k])}")
            elif k not in b:
                out.append(f"- {' '.join([*path, str(k)])}{_show(a[k])}")
            else:
                out += _diff(a[k], b[k], [*path, str(k)])
        return out
    if isinstance(a, frozenset) and isinstance(b, frozenset):     # one line for the whole set
        change = [f"- {_flat(x)}" for x in sorted(a - b, key=str)] + [f"+ {_flat(x)}" for x in sorted(b - a, key=str)]
        return [f"{where}: {', '.join(change)}"] if change else []
    return [] if a == b else [f"{where}: {_flat(a)} -> {_flat(b)}"]


def _show(v) -> str:
    return "" if v is True else f" {_flat(v)}"


def _flat(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} {_flat(x)}" for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))) + "}"
    if isinstance(v, (frozenset, set)):
        return "{" + ", ".join(sorted(_flat(x) for x in v)) + "}"
    if isinstance(v, tuple):
        return "{" + ", ".join(f"{k} {_flat(x)}" if isinstance(x, (str, bool)) else _flat(x) for k, x in v) + "}" \
            if all(isinstance(x, tuple) and len(x) == 2 for x in v) else " ".join(map(str, v))
    return str(v)


__all__ = ["Meaning", "meaning_of", "diff", "number", "address", "secret", "command"]
