"""keepalived.conf files (one per node) -> an inventory: the pure heart of `inv import`.

Inventory keys are keepalived's own names, so most of the mapping is generic: a statement inside a
block becomes the field of the same name of the block's model (fabfile/model/schema.py), typed by
that field (a bare keyword is a flag, a block of lines is a list, a nested block a section). The
few places where the inventory says a thing differently are spelled out below, each with why:

- `vrrp_instance NAME`, `vrrp_script NAME`, `vrrp_sync_group NAME`, `virtual_server IP PORT`,
  `real_server IP PORT`: the block's arguments become fields (name, vip + port, address + port).
- What differs per node (priority, state, unicast_src_ip, router_id) lands on `nodes[]`; the
  other nodes' addresses (unicast_peer) are not written at all: lbtk derives every node's peers
  from the nodes, so a peer that is no node is reported.
- `authentication { auth_pass }`: the password goes to a secret file, never into the YAML.
- `virtual_ipaddress_excluded` joins `virtual_ipaddress` (lbtk puts every VIP after the first
  there itself).
- lbtk's own renders: `virtual_server fwmark N` under lbtk's comment `# fwmark N = TCP VIP:PORT,
  marked by lbtk-fwmark.service` is the service VIP:PORT (with the director fix when the comment
  says so): the mark is lbtk's, numbered by lbtk (NodeConfig.text carries the comment the parser
  drops); `notify /usr/local/sbin/lbtk-ipvs-sync` is sync_daemon mode notify (its interface and
  syncid live in the script: noted); `mcast_src_ip` with each node's address is the flag; equal
  priorities in one instance are said (equal_priorities), as lbtk asks.
- Where keepalived's default differs from lbtk's (lb_kind NAT, delay_loop 60, a checker's retry
  1 ...), the imported inventory states keepalived's value: the adopted cluster keeps doing what
  it did.

Values that must agree on every node (virtual_router_id, advert_int, VIPs, the secret) and do not
are the split-brain risk they are: reported as conflicts, never merged. A keyword the model does
not have is reported with its file:line; `partial` leaves it out and says what a deploy would
then remove. Nothing here reads a file or a node: the caller hands in parsed configs
(fabfile.parsers.keepalived_conf) and writes what comes back.
"""
from __future__ import annotations

import ipaddress
import re
import types
import typing
from dataclasses import dataclass, field

from pydantic import BaseModel

from fabfile.model.fields import family_of
from fabfile.model.keepalived_keywords import BLOCKS as KEEPALIVED, VERSIONS
from fabfile.core.render import ipvs_sync, monitoring
from fabfile.model.schema import Inventory, Node, RealServer, SyncDaemon, VirtualServer, VrrpInstance
from fabfile.parsers.keepalived_conf import Conf, Stmt

# keepalived's defaults where lbtk's differ ((model, field) -> keepalived's value): an imported
# inventory states them, or the first deploy would change what the cluster does
KEEPALIVED_DEFAULTS: dict[tuple[str, str], object] = {
    ("VirtualServer", "lb_kind"): "NAT",          # check_data.c: forwarding_method IP_VS_CONN_F_MASQ
    ("VirtualServer", "lb_algo"): "wlc",          # ipvswrapper.h IPVS_DEF_SCHED
    ("VirtualServer", "delay_loop"): 60,          # check_data.h KEEPALIVED_DEFAULT_DELAY
    ("TcpCheck", "connect_timeout"): 5,
    ("TcpCheck", "retry"): 1,
    ("TcpCheck", "delay_before_retry"): 1,
    ("HttpGet", "connect_timeout"): 5,
    ("HttpGet", "retry"): 1,
    ("VrrpScript", "interval"): 1,
    ("GlobalDefs", "enable_script_security"): False,
}
# keepalived names that mean the same as a current one (read them, write the current one)
LEGACY = {"lvs_sched": "lb_algo", "lvs_method": "lb_kind", "nb_get_retry": "retry", "lvs_id": "router_id"}
# keepalived keywords the inventory spells otherwise, per block ((model, keyword) -> field)
RENAMES = {("VrrpInstance", "version"): "vrrp_version"}
# a keyword written bare where the model wants a value: keepalived's meaning of it ((model, field) -> value)
BARE = {("VrrpTrackProcess", "param_match"): "exact"}     # track_process.c: no argument is exact
# statements handled by the mapping itself, not by the generic walk
PER_NODE_INSTANCE = {"state", "priority", "unicast_src_ip", "unicast_peer", "mcast_src_ip"}
# named top-level blocks -> the inventory's mapping of them by name (`vrrp_script chk {` -> vrrp_scripts.chk)
NAMED_SECTIONS = {"vrrp_script": "vrrp_scripts", "vrrp_track_process": "vrrp_track_processes",
                  "track_file": "track_files"}
# top-level blocks that belong to one node (each node keeps its own): the node's field of that name
NODE_SECTIONS = {"static_ipaddress", "static_routes", "static_rules"}
# what lbtk always writes where it applies (a unicast instance's check_unicast_src): read as implied;
# a config without it learns it from the first deploy (a note says so)
IMPLIED_INSTANCE = {"check_unicast_src"}


@dataclass(frozen=True)
class Finding:
    """One thing the import cannot carry over (or that disagrees between nodes): where, what, why."""
    where: str              # FILE:LINE
    keyword: str
    why: str

    def line(self) -> str:
        return f"{self.where}: {self.keyword}: {self.why}"


@dataclass
class NodeConfig:
    """One node's config as the import sees it: its parsed keepalived.conf, the node's name, how
    SSH reaches it (None from --file) and its address when the config does not say it."""
    name: str
    conf: Conf
    host: str | None = None
    address: str | None = None
    file: str = "keepalived.conf"
    addresses: dict[str, str] = field(default_factory=dict)    # interface -> the node's address there
    # the main file's text as written: the parser drops comments, and lbtk's own comments say what
    # keepalived.conf cannot (the VIP:PORT a director-fix fwmark stands for)
    text: str | None = None
    mac: str | None = None       # its VRRP interface's MAC (`ip link`; the director fix needs it)


@dataclass
class Imported:
    inventory: dict                                   # YAML-ready, validated by the caller
    secrets: dict[str, str] = field(default_factory=dict)          # secret file name -> password
    unsupported: list[Finding] = field(default_factory=list)
    conflicts: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)    # what the first deploy adds or changes
    meaning: list[str] = field(default_factory=list)  # per node: keepalived.conf keeps its meaning, or how not


class ImportRefused(ValueError):
    """Nothing can be written: the findings say why, one line each."""

    def __init__(self, findings: list[Finding]):
        super().__init__("; ".join(f.line() for f in findings))
        self.findings = findings


# ---------------------------------------------------------------- typing helpers

def _unwrap(annotation):
    """(origin, args) of a field's type with Optional / Annotated peeled off."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
            return typing.Union, args
        return origin, typing.get_args(annotation) if origin else annotation


def _is_model(t) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _scalar(t, words: list[str], where: str, keyword: str):
    """A statement's words as a value of type t (int, float, bool, str, Literal)."""
    if t is bool:
        if not words:
            return True
        w = words[0].lower()
        if w in ("on", "true", "yes", "1"):
            return True
        if w in ("off", "false", "no", "0"):
            return False
        raise ValueError(f"{words[0]!r} is not a flag value")
    if not words:
        raise ValueError("needs a value")
    if t is int:
        return int(words[0])
    if t is float:
        v = float(words[0])
        return int(v) if v.is_integer() else v
    if typing.get_origin(t) is typing.Literal:
        choices = typing.get_args(t)
        for c in choices:
            if str(c) == words[0] or (isinstance(c, int) and words[0].isdigit() and int(words[0]) == c):
                return c
        raise ValueError(f"{words[0]!r} is not one of {', '.join(map(str, choices))}")
    return " ".join(words)


def convert(model: type[BaseModel], stmt_children: list[Stmt], file: str, out_findings: list[Finding],
            skip: set[str] = frozenset(), path: str = "", notes: list[str] | None = None) -> dict:
    """The generic walk: each statement in a block -> the model's field of that name. `path` is
    the block's place in keepalived's grammar (virtual_server/real_server/TCP_CHECK): a keyword
    keepalived does not know there is one it ignores ("Unknown keyword"), left out with a note."""
    data: dict = {}
    fields = model.model_fields
    known = KEEPALIVED.get(path)
    for s in stmt_children:
        where = f"{file}:{s.line}"
        if known is not None and s.keyword not in known and f"{path}/{s.keyword}" not in KEEPALIVED:
            if notes is not None:
                notes.append(f"{where}: {s.keyword}: keepalived {VERSIONS[0]} does not know it in {path} and "
                             "ignores it (Unknown keyword): left out, which changes nothing keepalived does")
            continue
        key = RENAMES.get((model.__name__, s.keyword), LEGACY.get(s.keyword, s.keyword))
        if key in skip:
            continue
        if key == "url" and key not in fields and s.children is not None and "path" in fields:
            # one url block where the model keeps path/digest/status_code on the checker itself
            data.update(convert(model, s.children, file, out_findings, path=f"{path}/url", notes=notes))
            continue
        if key not in fields:
            out_findings.append(Finding(where, s.keyword, f"not supported in {_block_name(model)} (lbtk's "
                                        "inventory has no such key)"))
            continue
        if not s.args and s.children is None and (model.__name__, key) in BARE:
            data[key] = BARE[(model.__name__, key)]
            continue
        flags = _trailing_flags(model, s)
        if flags:            # `weight 5 reverse`: the words after the value name flags of the block
            data.update(flags)
            s = Stmt(s.keyword, s.args[:-len(flags)], s.line, s.children, s.file)
        try:
            value = _value(fields[key].annotation, s, file, out_findings, f"{path}/{s.keyword}".lstrip("/"), notes)
        except (ValueError, TypeError) as e:
            out_findings.append(Finding(where, s.keyword, str(e)))
            continue
        origin, _ = _unwrap(fields[key].annotation)
        if origin is list and key in data:
            data[key] = data[key] + value        # a keyword repeated (several checker blocks)
        else:
            data[key] = value
    return data


def _flag_fields(model: type[BaseModel]) -> set[str]:
    return {n for n, f in model.model_fields.items() if _unwrap(f.annotation) == (None, bool)}


def _trailing_flags(model: type[BaseModel], s: Stmt) -> dict:
    """{flag: True} for the words ending a statement that name bool fields of the block (not the
    statement's own): FILE_CHECK's `weight 5 reverse`."""
    flags = _flag_fields(model) - {s.keyword}
    out = {}
    for w in reversed(s.args[1:]):
        if w not in flags:
            break
        out[w] = True
    return out


def _block_name(model: type[BaseModel]) -> str:
    return {"VrrpInstance": "vrrp_instance", "VrrpScript": "vrrp_script", "VirtualServer": "virtual_server",
            "RealServer": "real_server", "GlobalDefs": "global_defs"}.get(model.__name__, model.__name__)


def _value(annotation, s: Stmt, file: str, findings: list[Finding], path: str = "",
           notes: list[str] | None = None):
    origin, args = _unwrap(annotation)
    if origin is typing.Union:                 # one of several shapes: a section first, then a list
        models = [a for a in args if _is_model(a)]
        if models and s.children is not None:
            return _value(models[0], s, file, findings, path, notes)
        lists = [a for a in args if typing.get_origin(a) is list]
        if lists:
            return _value(lists[0], s, file, findings, path, notes)
        errors = []
        for a in args:                      # scalars: the first type the words read as (200, or 200-299)
            try:
                return _value(a, s, file, findings, path, notes)
            except (ValueError, TypeError) as e:
                errors.append(e)
        raise errors[0]
    if origin is list:
        (item,) = args or (str,)
        if _is_model(item) and s.children and all(c.children is None and c.keyword not in item.model_fields
                                                  for c in s.children):
            # a block of lines, each an item in keepalived's own words (track_script's `chk weight -30`):
            # the model reads the line itself
            return [" ".join([c.keyword, *c.args]) for c in s.children]
        if _is_model(item):
            return [convert(item, s.children or [], file, findings, path=path, notes=notes)]
        if s.children is not None:             # a block of lines: each line one item
            return [_scalar(item, [c.keyword, *c.args], f"{file}:{c.line}", s.keyword) for c in s.children]
        return [_scalar(item, [w], f"{file}:{s.line}", s.keyword) for w in s.args]
    if origin is None and _is_model(args):
        if s.children is None:       # a section keepalived writes on one line: its words, in field order
            return _positional(args, s, file)
        return convert(args, s.children, file, findings, path=path, notes=notes)
    if s.children is not None:
        raise ValueError("is a block here; lbtk reads it as one value")
    return _scalar(args if origin is None else annotation, s.args, f"{file}:{s.line}", s.keyword)


def _positional(model: type[BaseModel], s: Stmt, file: str) -> dict:
    """`sorry_server 192.168.200.200 1358`, `smtp_server HOST PORT`: the words fill the model's
    fields in their order; `lvs_timeouts tcp 900 udp 300`: the words name the fields."""
    names = list(model.model_fields)
    if s.args and s.args[0] in names:
        # keepalived's NAME VALUE pairs (`lvs_timeouts tcp 900 udp 300`)
        pairs = dict(zip(s.args[::2], s.args[1::2]))
        if len(s.args) % 2 or not set(pairs) <= set(names):
            raise ValueError(f"reads NAME VALUE pairs of {', '.join(names)}")
        return {n: _scalar(_unwrap(model.model_fields[n].annotation)[1], [w], f"{file}:{s.line}", s.keyword)
                for n, w in pairs.items()}
    if len(s.args) > len(names):
        raise ValueError(f"takes at most {len(names)} words ({' '.join(names)})")
    flags = _flag_fields(model)
    out = {w: True for w in s.args if w in flags}      # `init_file 5 overwrite`
    for name, word in zip(names, [w for w in s.args if w not in flags]):
        origin, t = _unwrap(model.model_fields[name].annotation)
        out[name] = _scalar(t if origin is None else model.model_fields[name].annotation, [word],
                            f"{file}:{s.line}", s.keyword)
    return out


# ---------------------------------------------------------------- one node's config

@dataclass
class _NodeView:
    """What one node's config says, before the nodes are merged."""
    cfg: NodeConfig
    router_id: str | None = None
    instances: dict[str, dict] = field(default_factory=dict)       # name -> inventory instance dict
    per_node: dict[str, dict] = field(default_factory=dict)        # instance -> {state, priority, src, peers}
    secrets: dict[str, str] = field(default_factory=dict)          # instance -> auth_pass
    named: dict[str, dict[str, dict]] = field(default_factory=dict)   # vrrp_scripts ... -> name -> section
    node_fields: dict = field(default_factory=dict)                  # static_ipaddress ... of this node
    sync_groups: list[dict] = field(default_factory=list)
    virtual_servers: list[dict] = field(default_factory=list)
    vs_groups: list[dict] = field(default_factory=list)
    global_defs: dict = field(default_factory=dict)
    sync_daemon: dict | None = None
    where: dict[str, str] = field(default_factory=dict)             # instance -> FILE:LINE
    notes: list[str] = field(default_factory=list)


def read_node(cfg: NodeConfig, findings: list[Finding]) -> _NodeView:
    view = _NodeView(cfg)
    f = cfg.file
    for s in cfg.conf.top:
        where = f"{f}:{s.line}"
        if s.keyword == "global_defs":
            _global_defs(view, s, findings)
        elif s.keyword in NAMED_SECTIONS:
            if not s.args:
                findings.append(Finding(where, s.keyword, "has no name"))
                continue
            key = NAMED_SECTIONS[s.keyword]
            model = typing.get_args(Inventory.model_fields[key].annotation)[1]
            view.named.setdefault(key, {})[s.args[0]] = _with_keepalived_defaults(model, convert(
                model, s.children or [], f, findings, path=s.keyword, notes=view.notes))
        elif s.keyword in NODE_SECTIONS:
            try:
                view.node_fields[s.keyword] = _value(Node.model_fields[s.keyword].annotation, s, f, findings,
                                                     s.keyword, view.notes)
            except (ValueError, TypeError) as e:
                findings.append(Finding(where, s.keyword, str(e)))
        elif s.keyword == "vrrp_instance":
            _instance(view, s, findings)
        elif s.keyword == "vrrp_sync_group":
            group = s.first("group")
            data = convert(_model("VrrpSyncGroup"), [c for c in s.children or [] if c.keyword != "group"], f, findings,
                           path="vrrp_sync_group", notes=view.notes)
            view.sync_groups.append({"name": s.args[0] if s.args else "", **data,
                                     "group": group.words() if group else []})
        elif s.keyword == "virtual_server_group":
            view.vs_groups.append({"name": s.args[0] if s.args else "",
                                   "members": [" ".join([c.keyword, *c.args]) for c in s.children or []]})
        elif s.keyword == "virtual_server":
            vs = _virtual_server(view, s, findings)
            if vs is not None:
                view.virtual_servers.append(vs)
        else:
            findings.append(Finding(where, s.keyword, "not supported at the top level of keepalived.conf"))
    return view


def _model(name: str) -> type[BaseModel]:
    import fabfile.model.schema as schema
    return getattr(schema, name)


def _with_keepalived_defaults(model: type[BaseModel], data: dict) -> dict:
    """data with keepalived's own value stated wherever it is silent and lbtk's default differs."""
    for (m, key), value in KEEPALIVED_DEFAULTS.items():
        if m == model.__name__ and key in model.model_fields and key not in data:
            data[key] = value
    return data


def _global_defs(view: _NodeView, s: Stmt, findings: list[Finding]) -> None:
    f = view.cfg.file
    rest = []
    for c in s.children or []:
        key = LEGACY.get(c.keyword, c.keyword)
        if key == "router_id":
            view.router_id = " ".join(c.args)
        elif key == "lvs_sync_daemon":
            # lvs_sync_daemon IFACE INSTANCE [id N] ...
            words = c.args
            sd: dict = {"interface": words[0] if words else "", "mode": "keepalived"}
            if len(words) > 1:
                sd["vrrp_instance"] = words[1]
            if "id" in words[2:-1]:
                sd["syncid"] = int(words[words.index("id", 2) + 1])
            view.sync_daemon = sd
        else:
            rest.append(c)
    gd = _with_keepalived_defaults(_model("GlobalDefs"), convert(_model("GlobalDefs"), rest, f, findings,
                                                                 path="global_defs", notes=view.notes))
    gd.setdefault("script_user", None)     # keepalived: unset runs scripts as keepalived_script / root
    view.global_defs = gd


def _instance(view: _NodeView, s: Stmt, findings: list[Finding]) -> None:
    f = view.cfg.file
    name = s.args[0] if s.args else ""
    body = [c for c in s.children or [] if c.keyword not in PER_NODE_INSTANCE | IMPLIED_INSTANCE
            and c.keyword not in ("authentication", "virtual_ipaddress_excluded")]
    if s.first("unicast_peer") is not None and s.first("check_unicast_src") is None:
        view.notes.append(f"vrrp_instance {name}: the first deploy adds check_unicast_src (adverts from an "
                          "address that is no peer are dropped)")
    data = convert(VrrpInstance, body, f, findings, skip={"name"}, path="vrrp_instance", notes=view.notes)
    vips = list(data.get("virtual_ipaddress", []))
    excluded = s.first("virtual_ipaddress_excluded")
    if excluded is not None:
        vips += [" ".join([c.keyword, *c.args]) for c in excluded.children or []]
    seen: dict[str, str] = {}
    for spec in vips:                   # an address listed twice: 2.2.7 adds it once, 2.3.3 refuses the file
        addr = spec.split()[0].split("/")[0]
        if addr in seen:
            view.notes.append(f"vrrp_instance {name}: {spec!r} repeats VIP {addr} ({seen[addr]!r} kept)")
        else:
            seen[addr] = spec
    data["virtual_ipaddress"] = list(seen.values())
    auth = s.first("authentication")
    if auth is not None:
        data["authentication"] = {"auth_type": auth.value("auth_type", "PASS")}
        if auth.value("auth_pass") is not None:
            view.secrets[name] = auth.value("auth_pass")
    mine: dict = {}
    if s.value("state"):
        mine["state"] = s.value("state")
    if s.value("priority"):
        mine["priority"] = int(s.value("priority"))
    else:
        mine["priority"] = 100          # keepalived's default priority
    if s.value("unicast_src_ip"):
        mine["src"] = s.value("unicast_src_ip")
    if s.value("mcast_src_ip"):
        mine["src"] = s.value("mcast_src_ip")
        mine["mcast_src_ip"] = True
    peers = s.first("unicast_peer")
    data["unicast"] = peers is not None
    mine["peers"] = [c.keyword for c in (peers.children or [])] if peers is not None else []
    mine["interface"] = data.pop("interface", None)
    vips = data["virtual_ipaddress"]
    mine["family"] = family_of(vips[0].split()[0].split("/")[0]) if vips else 4
    view.instances[name] = data
    view.per_node[name] = mine
    view.where[name] = f"{f}:{s.line}"


def _virtual_server(view: _NodeView, s: Stmt, findings: list[Finding]) -> dict | None:
    f = view.cfg.file
    where = f"{f}:{s.line}"
    head: dict = {}
    if s.args[:1] == ["fwmark"] and len(s.args) == 2:
        head["fwmark"] = int(s.args[1])
    elif s.args[:1] == ["group"] and len(s.args) == 2:
        head["group"] = s.args[1]
    elif len(s.args) == 2:
        head["vip"], head["port"] = s.args[0], int(s.args[1])
    else:
        findings.append(Finding(where, "virtual_server " + " ".join(s.args), "lbtk reads `virtual_server IP PORT` "
                                "or `virtual_server fwmark N`"))
        return None
    lbtk_mark = _lbtk_fwmarks(view.cfg.text).get(head.get("fwmark"))
    if lbtk_mark is not None:
        head = _service_of_lbtk_mark(head, lbtk_mark)
    body = [c for c in s.children or [] if c.keyword != "real_server"]
    data = _with_keepalived_defaults(VirtualServer, {**head, **convert(VirtualServer, body, f, findings,
                                                                       path="virtual_server", notes=view.notes)})
    rss = []
    for c in s.find("real_server"):
        if len(c.args) < 1:
            findings.append(Finding(f"{f}:{c.line}", "real_server", "needs an address"))
            continue
        rs = {"address": c.args[0], **({"port": int(c.args[1])} if len(c.args) > 1 else {})}
        rs.update(convert(RealServer, c.children or [], f, findings, path="virtual_server/real_server",
                          notes=view.notes))
        for key in list(rs):
            model = _checker_model(key)
            if model is not None:
                rs[key] = [_with_keepalived_defaults(model, x) for x in rs[key]] if isinstance(rs[key], list) \
                    else _with_keepalived_defaults(model, rs[key])
                if isinstance(rs[key], list) and len(rs[key]) == 1:
                    rs[key] = rs[key][0]          # one checker of a kind: written as one object
        rss.append(rs)
    data["real_servers"] = rss
    if lbtk_mark is not None:
        data.pop("ip_family", None)         # the VIP says the family
        _ports_of_lbtk_mark(data)
    if "fwmark" in head and "port" not in data and "group" not in head:
        # lbtk keeps a port on every service: a fwmark one's is its real servers'
        data["port"] = next((rs["port"] for rs in rss if "port" in rs), 80)
    return data


# lbtk's own comment above a virtual_server it renders as a fwmark (fabfile/core/render/keepalived.conf.j2):
# `# fwmark 1 = TCP 10.0.0.100:80, marked by lbtk-fwmark.service[ only for ... (director fix)]`
_LBTK_FWMARK = re.compile(r"^# fwmark (\d+) = (\w+) (\[[^\]\s]+\]|[^\s\[\]]+):(\d+), marked by "
                          r"lbtk-fwmark\.service( only for)?", re.M)


def _lbtk_fwmarks(text: str | None) -> dict[int, dict]:
    """{fwmark: {protocol, vip, port, director_fix}} from lbtk's comments in a config lbtk rendered.
    A special case of the import: the mark is lbtk's (its rules in lbtk-fwmark.service set it for
    VIP:PORT), so the service the inventory states is VIP:PORT, and the director fix when the comment
    says so; the parser drops comments, hence the raw text."""
    if not text:
        return {}
    return {int(m[1]): {"protocol": m[2], "vip": m[3].strip("[]"), "port": int(m[4]), "director_fix": bool(m[5])}
            for m in _LBTK_FWMARK.finditer(text)}


def _service_of_lbtk_mark(head: dict, mark: dict) -> dict:
    """`virtual_server fwmark N` lbtk rendered -> the service the inventory said: VIP:PORT and the
    director fix (lbtk numbers the mark itself), or VIP:PORT with the inventory's own fwmark."""
    out = {"vip": mark["vip"], "port": mark["port"]}
    if mark["protocol"] != "TCP":
        out["protocol"] = mark["protocol"]
    return {**out, "director_fix": True} if mark["director_fix"] else {**head, **out}


def _ports_of_lbtk_mark(vs: dict) -> None:
    """A fwmark service's real servers carry no port (the service's, as lbtk renders it) and lbtk
    writes that port into their checkers (connect_port): the checker goes back without it."""
    for rs in vs["real_servers"]:
        for key in list(rs):
            if _checker_model(key) is None:
                continue
            for check in rs[key] if isinstance(rs[key], list) else [rs[key]]:
                if check.get("connect_port") == vs["port"]:
                    del check["connect_port"]


def _checker_model(key: str) -> type[BaseModel] | None:
    ann = RealServer.model_fields[key].annotation if key in RealServer.model_fields else None
    if ann is None:
        return None
    origin, args = _unwrap(ann)
    if origin is None and _is_model(args):
        return args
    if origin is list and args and _is_model(args[0]):
        return args[0]
    if origin is typing.Union:
        models = [a for a in args if _is_model(a)]
        return models[0] if models else None
    return None


# ---------------------------------------------------------------- the nodes together

def import_configs(configs: list[NodeConfig], cluster: str, secret_file: str,
                   partial: bool = False) -> Imported:
    """Every node's config -> one inventory. Raises ImportRefused (unless partial: then the
    unsupported items are left out and listed) when something cannot be carried over; conflicts
    between nodes always refuse."""
    unsupported: list[Finding] = []
    views = [read_node(c, unsupported) for c in configs]
    conflicts: list[Finding] = []
    first = views[0]
    nodes = [_node(v, conflicts) for v in views]
    names = {v.cfg.name for v in views}
    _agree(views, "instances", conflicts, lambda v: set(v.instances), "the set of vrrp_instances")
    instances = []
    for name, data in first.instances.items():
        for v in views[1:]:
            other = v.instances.get(name)
            if other is None:
                continue
            for key in sorted(set(data) | set(other)):
                if data.get(key) != other.get(key):
                    a, b = data.get(key), other.get(key)
                    if key == "virtual_ipaddress" and a is not None and b is not None and set(a) == set(b):
                        continue
                    conflicts.append(Finding(v.where[name], f"vrrp_instance {name} {key}",
                                             f"{first.cfg.name} says {a!r}, {v.cfg.name} {b!r}: every node must "
                                             "agree (split-brain risk); make them agree before importing"))
        secrets = {v.secrets.get(name) for v in views}
        if len(secrets) > 1:
            conflicts.append(Finding(first.where[name], f"vrrp_instance {name} auth_pass",
                                     "the nodes hold different passwords (split-brain risk: adverts of one are "
                                     "dropped by the other); make them agree before importing"))
        inst = {"name": name, **data}
        ifaces = {v.cfg.name: v.per_node[name].get("interface") for v in views if name in v.per_node}
        node_if = {n["name"]: n.get("interface") for n in nodes}
        if any(ifaces[k] != node_if[k] for k in ifaces):
            if len(set(ifaces.values())) == 1:
                inst["interface"] = next(iter(ifaces.values()))
            else:
                conflicts.append(Finding(first.where[name], f"vrrp_instance {name} interface",
                                         "runs on different interfaces per node, none of them the node's first "
                                         "instance's: lbtk names one interface an instance (or the node's own)"))
        if name in first.secrets:
            inst["authentication"] = {**inst.get("authentication", {}), "auth_pass_file": secret_file}
        _per_node_priorities(views, name, inst, nodes)
        if all(v.per_node.get(name, {}).get("mcast_src_ip") for v in views):
            inst["mcast_src_ip"] = True      # lbtk's flag: each node's own address, written as mcast_src_ip
        known = {a for n in nodes for a in _all_addresses(n)}
        for v in views:
            for peer in v.per_node.get(name, {}).get("peers", []):
                if peer not in known:
                    unsupported.append(Finding(v.where[name], f"unicast_peer {peer}",
                                               "is no node of the import: lbtk makes every node the others' peers "
                                               "(import that node too, or drop the peer)"))
        instances.append(inst)
    inv: dict = {"cluster": cluster, "nodes": nodes, "global_defs": _global_defs_merged(views, conflicts),
                 "vrrp_instances": instances}
    for key in NAMED_SECTIONS.values():
        if first.named.get(key):
            inv[key] = first.named[key]
    if first.sync_groups:
        inv["vrrp_sync_groups"] = first.sync_groups
    if first.virtual_servers:
        inv["virtual_servers"] = [_real_servers_to_nodes(vs, nodes) for vs in first.virtual_servers]
        for vs in inv["virtual_servers"]:
            if vs.get("director_fix") is False:
                first.notes.append(f"virtual_server {vs.get('vip') or 'group ' + str(vs.get('group'))}:{vs.get('port')}: the directors are also its DR real "
                                   "servers, which loops; imported as it runs (director_fix: false). Set "
                                   "director_fix: true (and nodes[].mac) to have lbtk mark packets by MAC")
    if first.vs_groups:
        inv["virtual_server_groups"] = first.vs_groups
        six = {g["name"] for g in first.vs_groups if any(":" in m.split()[0] for m in g["members"])}
        for vs in inv.get("virtual_servers", []):      # the model takes a group service's family from ip_family
            if vs.get("group") in six:
                vs.setdefault("ip_family", "inet6")
    _vips_from_elsewhere(inv, first.notes)
    if first.sync_daemon:
        inv["sync_daemon"] = first.sync_daemon
    _sync_daemon_by_notify(inv, first.notes)
    _publish_by_fifo(inv, first.notes)
    _agree(views, "virtual_servers", conflicts, lambda v: v.virtual_servers, "the virtual servers")
    for key in NAMED_SECTIONS.values():
        _agree(views, key, conflicts, lambda v: v.named.get(key), f"the {key}")
    del names
    _drop_ignored(inv, notes := [])
    out = Imported(inv, secrets={secret_file: next(iter(first.secrets.values()))} if first.secrets else {},
                   unsupported=unsupported, conflicts=conflicts,
                   notes=list(dict.fromkeys([*notes, *(n for v in views for n in v.notes)])))
    if conflicts or (unsupported and not partial):
        raise ImportRefused(conflicts + ([] if partial else unsupported))
    return out


def _sync_daemon_by_notify(inv: dict, notes: list[str]) -> None:
    """An instance whose `notify` is lbtk's own lbtk-ipvs-sync is sync_daemon mode notify (lbtk
    writes that notify itself, so the instance does not state it). The sync interface and syncid
    live in the script, not in keepalived.conf: the import takes the instance's interface and
    lbtk's default syncid, and the note says to check them against the script."""
    for k, vi in enumerate(inv["vrrp_instances"]):
        if vi.get("notify") != ipvs_sync.SCRIPT:
            continue
        del vi["notify"]
        if inv.get("sync_daemon"):
            continue              # lvs_sync_daemon too: keepalived runs both; the model says one
        iface = vi.get("interface") or inv["nodes"][0].get("interface")
        sd = {"mode": "notify", "interface": iface or "eth0"}
        if k:
            sd["vrrp_instance"] = vi["name"]
        inv["sync_daemon"] = sd
        notes.append(f"vrrp_instance {vi['name']}: notify {ipvs_sync.SCRIPT} is lbtk's sync_daemon mode notify; "
                     f"its sync interface and syncid are in that script, not in keepalived.conf: imported as "
                     f"interface {sd['interface']}, syncid {SyncDaemon.model_fields['syncid'].default} "
                     "(check SYNC_IF and SYNCID in the script)")


def _publish_by_fifo(inv: dict, notes: list[str]) -> None:
    """lbtk's own vrrp_notify_fifo (its publisher's transition hook) is monitoring.publish: lbtk writes
    that FIFO itself. node_exporter's listening address and the timer's period are not in
    keepalived.conf: the import takes the defaults, and the note says where to check them."""
    gd = inv.get("global_defs", {})
    if gd.get("vrrp_notify_fifo") != monitoring.FIFO:
        return
    gd.pop("vrrp_notify_fifo")
    gd.pop("vrrp_notify_fifo_script", None)
    inv["monitoring"] = {"publish": True}
    notes.append(f"global_defs: vrrp_notify_fifo {monitoring.FIFO} is lbtk's metrics publisher "
                 f"(monitoring.publish): node_exporter's address and the refresh period are not in keepalived.conf, "
                 f"imported as the defaults (check {monitoring.DEFAULTS} and {monitoring.TIMER})")


def _vips_from_elsewhere(inv: dict, notes: list[str]) -> None:
    """A virtual server whose address no vrrp_instance holds gets it from elsewhere (a router, BGP/
    ECMP, a hand-made address): keepalived only checks and balances it. lbtk says so
    (vip_managed_by: external) and puts that address on lo of each director, which the note says."""
    held = {spec.split()[0].split("/")[0] for vi in inv.get("vrrp_instances", []) for spec in vi["virtual_ipaddress"]}
    groups = {g["name"]: g["members"] for g in inv.get("virtual_server_groups", [])}
    for vs in inv.get("virtual_servers", []):
        members = groups.get(vs.get("group"), [])
        addrs = [a for m in members if m.split()[0] != "fwmark" for a in _range_addresses(m.split()[0])]
        unheld = (vs.get("vip") and vs["vip"] not in held) or any(a not in held for a in addrs)
        if unheld and "vip_managed_by" in VirtualServer.model_fields:
            vs["vip_managed_by"] = "external"
            notes.append(f"virtual_server {vs.get('vip') or 'group ' + str(vs.get('group'))}:{vs.get('port')}: "
                         "no vrrp_instance holds its address: "
                         "imported as vip_managed_by: external (the first deploy puts it on lo of each director)")


def _range_addresses(text: str) -> list[str]:
    """A virtual_server_group member's addresses: `10.0.0.110-112` is .110 to .112 (keepalived's
    range: the last byte of IPv4, the last group, hex, of IPv6)."""
    base, sep, end = text.rpartition("-")
    if not sep or not valid_address(base):
        return [text]
    first = ipaddress.ip_address(base)
    try:
        last = int(end, 16 if first.version == 6 else 10)
    except ValueError:
        return [text]
    low = int(first) & (0xFFFF if first.version == 6 else 0xFF)
    return [str(first + k) for k in range(max(last - low, 0) + 1)]


def _drop_ignored(inv: dict, notes: list[str]) -> None:
    """Settings keepalived ignores, which the model refuses as the mistakes they usually are, go
    with a note: leaving them out changes nothing keepalived does."""
    gd = inv.get("global_defs", {})
    if not gd.get("smtp_server") or not gd.get("notification_email"):
        where = [("global_defs", gd)] + [(f"vrrp_instance {i['name']}", i) for i in inv["vrrp_instances"]]
        for what, section in where:
            if section.pop("smtp_alert", None):
                notes.append(f"{what}: smtp_alert left out: without smtp_server and notification_email "
                             "keepalived sends no mail")
        for key in ("notification_email_from", "smtp_connect_timeout"):
            if not gd.get("smtp_server") and gd.pop(key, None) is not None:
                notes.append(f"global_defs: {key} left out: without smtp_server keepalived sends no mail")


def _agree(views, what: str, conflicts: list[Finding], key, words: str) -> None:
    base = key(views[0])
    for v in views[1:]:
        if key(v) != base:
            conflicts.append(Finding(f"{v.cfg.file}:1", what, f"{views[0].cfg.name} and {v.cfg.name} differ in "
                                     f"{words}: every node must hold the same; make them agree before importing"))


def _all_addresses(node: dict) -> set[str]:
    out = {node.get("host"), node.get("address"), node.get("address6")}
    out |= {a for e in node.get("interfaces", {}).values() for a in e.values() if isinstance(a, str)}
    return {a for a in out if a}


def _addr_of(node: dict) -> str | None:
    return node.get("address") or node.get("host")


def _node(view: _NodeView, conflicts: list[Finding]) -> dict:
    """The node's entry: its address on its VRRP interface (the first instance's), its IPv6 one,
    and its addresses on other interfaces (nodes[].interfaces), from the instances' source
    addresses; --address when the config names none."""
    cfg = view.cfg
    mine = list(view.per_node.values())
    primary = next((m["interface"] for m in mine if m.get("interface")), None)
    node: dict = {"name": cfg.name}
    addrs: dict[int, str] = {}
    others: dict[str, dict] = {}
    for m in mine:
        src, iface = m.get("src"), m.get("interface")
        if not src:
            continue
        fam = family_of(src)
        if iface in (None, primary):
            addrs.setdefault(fam, src)
        else:
            _add_address(others.setdefault(iface, {}), src)
    if cfg.address:
        addrs.setdefault(family_of(cfg.address), cfg.address)
    if cfg.host and valid_address(cfg.host):    # SSH reaches it there: its address of that family too
        addrs.setdefault(family_of(cfg.host), cfg.host)
    for iface, a in cfg.addresses.items():      # --address IFACE=IP: where the config names none
        if iface in (None, primary):
            addrs.setdefault(family_of(a), a)
        elif any(m.get("interface") == iface for m in mine):
            _add_address(others.setdefault(iface, {}), a)
    address = addrs.get(4) or addrs.get(6)
    if cfg.host:
        node["host"] = cfg.host
        if address and address != cfg.host:
            node["address"] = address
    elif address:
        node["host"] = address
    if 4 in addrs and 6 in addrs:
        node["address6"] = addrs[6]
    if primary:
        node["interface"] = primary
    if cfg.mac:
        node["mac"] = cfg.mac
    node.update(view.node_fields)
    if others:
        node["interfaces"] = others
    # the first instance's priority: the node's own (instances that order the nodes otherwise say
    # so themselves, as per-instance priorities)
    node["priority"] = mine[0]["priority"] if mine else 100
    return node


def _add_address(entry: dict, a: str) -> None:
    """One more address of a node's interfaces entry: `address` first (IPv4 or IPv6), `address6`
    for an IPv6 one beside an IPv4 address; one already there, or a second of a family, is not."""
    if a in entry.values():
        return
    if "address" not in entry:
        entry["address"] = a
    elif family_of(a) == 6 and family_of(entry["address"]) == 4:
        entry.setdefault("address6", a)


def _per_node_priorities(views, name: str, inst: dict, nodes: list[dict]) -> None:
    """Priorities and states: on the node when one instance (or all agree in order), else per
    instance (the instance's own priority / state maps, when the model has them)."""
    prios = {v.cfg.name: v.per_node[name]["priority"] for v in views if name in v.per_node}
    states = {v.cfg.name: v.per_node[name].get("state") for v in views if name in v.per_node}
    node_prio = {n["name"]: n["priority"] for n in nodes}
    if prios != {k: node_prio[k] for k in prios}:
        if "priority" in VrrpInstance.model_fields:
            inst["priority"] = prios
    if len(set(prios.values())) < len(prios) and "equal_priorities" in VrrpInstance.model_fields:
        # keepalived runs a tie (the higher address wins); lbtk wants it said
        inst["equal_priorities"] = True
    # keepalived's own default state is BACKUP; lbtk's is MASTER on the highest priority: the
    # instance states its map only where the two differ
    states = {k: v or "BACKUP" for k, v in states.items()}
    top = max(prios, key=lambda k: prios[k]) if prios else None
    lbtk_default = {k: "BACKUP" if inst.get("nopreempt") else ("MASTER" if k == top else "BACKUP") for k in states}
    shared_top = prios and list(prios.values()).count(max(prios.values())) > 1   # lbtk breaks it by address
    if states == lbtk_default and not shared_top:
        return
    if "state" in VrrpInstance.model_fields:
        inst["state"] = states
    else:
        for n in nodes:
            n["state"] = states.get(n["name"], "BACKUP")


def _global_defs_merged(views, conflicts: list[Finding]) -> dict:
    gd = dict(views[0].global_defs)
    ids = [v.router_id for v in views]
    if all(r is None for r in ids):
        gd["router_id"] = "{node}"
    elif all(r == v.cfg.name for r, v in zip(ids, views)):
        gd["router_id"] = "{node}"
    elif len(set(ids)) == 1:
        gd["router_id"] = ids[0]
    else:
        upper = [v.cfg.name.upper() for v in views]
        prefix = _common_template(ids, [v.cfg.name for v in views], upper)
        gd["router_id"] = prefix or "{node}"
    return gd


def _common_template(ids, names, upper) -> str | None:
    for token, values in (("{node}", names), ("{NODE}", upper)):
        tpl = {r.replace(n, token) if r and n in r else None for r, n in zip(ids, values)}
        if len(tpl) == 1 and None not in tpl:
            return tpl.pop()
    return None


def _real_servers_to_nodes(vs: dict, nodes: list[dict]) -> dict:
    """A real server at a node's address is that node (`node: NAME`): lbtk then knows the
    director is also a real server (the DR loop fix, the VIP on lo)."""
    by_addr = {a: n["name"] for n in nodes for a in (_addr_of(n), n.get("address6")) if a}
    rss = []
    for rs in vs["real_servers"]:
        name = by_addr.get(rs.get("address"))
        if name is not None:
            rs = {"node": name, **{k: v for k, v in rs.items() if k != "address"}}
        if rs.get("port") == vs.get("port"):
            rs = {k: v for k, v in rs.items() if k != "port"}
        rss.append(rs)
    out = {**vs, "real_servers": rss}
    if out.get("lb_kind") == "DR" and "fwmark" not in out and "director_fix" not in out \
            and any("node" in rs for rs in rss):
        # the seed's topology: directors that are also DR real servers loop (the backups re-balance
        # what the MASTER sent them). The cluster runs without lbtk's fix today; adopting it changes
        # nothing, and turning the fix on is a decision of its own (a note says how)
        out["director_fix"] = False
    return out


def valid_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def node_name(text: str) -> str:
    """A node name lbtk accepts, made from a router_id or a host name."""
    name = _NAME.sub("-", text).strip("-.") or "node"
    return name if name[0].isalnum() else f"n{name}"


def validate(imported: Imported) -> Inventory:
    """The imported inventory through the model (the caller reports a refusal in one line)."""
    return Inventory.model_validate(imported.inventory)


__all__ = ["Finding", "ImportRefused", "Imported", "NodeConfig", "import_configs", "node_name", "read_node",
           "validate", "KEEPALIVED_DEFAULTS", "LEGACY"]
_ = Node
