"""Find, load and validate `inventories/NAME.yaml` (the directory: $LBTK_INVENTORIES, else the repository's;
an installed `lbtk` sets $LBTK_INVENTORIES from --inventories DIR, else ./inventories: tasks/program.py).

Every problem becomes one line: `FILE: FIELD.PATH: what is wrong — how to fix it`.
The tasks print it and exit non-zero; nobody sees a traceback for bad input.
"""
from __future__ import annotations

import difflib
import fnmatch
import os
import re
import typing
from pathlib import Path

import yaml
from pydantic import ValidationError

from fabfile.errors import LbtkError
from fabfile.model import extensions, keepalived_keywords
from fabfile.model.fields import FieldProblem, FieldProblems
from fabfile.model.schema import Inventory, dotted

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES_VAR = "LBTK_INVENTORIES"


FLEET_MARKS = frozenset("*?[,")     # an --env naming several inventories: a glob, or names with commas


def env_names(value: str) -> list[str] | None:
    """--env naming several inventories (`lab,lab-multi`, `'lab*'`, `'prod-*,staging'`): each
    part a name or a glob over the inventory directory's NAME.yaml, in the order given, each once.
    None for a single name (or a .yaml path): the tasks' usual one cluster."""
    if not FLEET_MARKS & set(value):
        return None
    known = sorted(p.stem for p in inventory_dir().glob("*.yaml"))
    names: list[str] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        hits = fnmatch.filter(known, part) if set("*?[") & set(part) else [part]
        if not hits:
            raise InventoryError(f"--env {_clip(part)}: matches no inventory in {_show(inventory_dir())} — "
                                 f"choose from {', '.join(known) or 'none'}")
        names += [h for h in hits if h not in names]
    if not names:
        raise InventoryError(f"--env {_clip(value)}: names no inventory — give NAME, NAME,NAME or a glob such as 'lab*'")
    return names


def inventory_dir() -> Path:
    """Where inventories (and what they name: secrets/, .state/) live: $LBTK_INVENTORIES, else the
    repository's inventories/. Read at each call, so a run (or a test) chooses without touching
    the repository."""
    value = os.environ.get(INVENTORIES_VAR)
    return Path(os.path.expanduser(value)) if value else ROOT / "inventories"


class InventoryError(LbtkError):
    """Bad input. str(err) is the first problem's one line; `lines` has every problem, one line each."""

    def __init__(self, message: str | list[str]):
        lines = [message] if isinstance(message, str) else list(message)
        super().__init__(lines[0])
        self.lines = lines


# keys of other tools and of the seed tutorial: what the inventory calls them instead
RENAMED = {"nb_get_retry": "retry (nb_get_retry is deprecated since keepalived 2.0.15)",
           "nat_mask": "persistence_granularity (nat_mask is a dead keyword)",
           "priority_base": "priority", "vrid": "virtual_router_id", "vip": "vip",
           "virtual_ip": "virtual_ipaddress", "vips": "virtual_ipaddress", "auth_pass": "authentication.auth_pass_env "
           "or auth_pass_file (the secret never lives in the inventory)", "weight_": "weight",
           "unicast_peer": "unicast: true (peers are the other nodes)", "unicast_src_ip": "nodes[].address (or host)",
           "version": "vrrp_version", "interval": "advert_int", "algo": "lb_algo", "kind": "lb_kind",
           "lvs_sched": "lb_algo", "lvs_method": "lb_kind", "real_server": "real_servers",
           "virtual_server": "virtual_servers", "vrrp_instance": "vrrp_instances", "vrrp_script": "vrrp_scripts",
           # keepalived keywords lbtk renders from another section
           "lvs_sync_daemon": "sync_daemon: {interface, vrrp_instance, syncid} (lbtk writes lvs_sync_daemon from it)",
           "lvs_sync_daemon_interface": "sync_daemon: {interface, vrrp_instance} (keepalived deprecated "
           "lvs_sync_daemon_interface after 1.2.19)",
           "vrrp_track_process": "vrrp_track_processes", "vrrp_track_file": "track_files (keepalived's current "
           "name)", "vrrp_track_files": "track_files (keepalived's current name)", "track_processes":
           "vrrp_track_processes"}


# libyaml's parser when PyYAML was built with it (the wheels are): ten times the pure-Python one,
# which an inventory of 30 nodes and the test tiers feel. Resolution stays in Python either way.
_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class InventoryLoader(_BASE_LOADER):
    """YAML without 1.1's surprises: only true/false are booleans, only plain decimals are numbers
    (0x10, 010, 0b1, 1_000, 1:30, 1e3, .inf and dates stay text), and `yes`, `on`, `no`, `off` are
    words. The model then refuses text where it wants a number, in one line naming the field."""


_TAGS = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}
InventoryLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
InventoryLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                      list("tTfF"))
InventoryLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"),
                                      list("-+0123456789"))
InventoryLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                      re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
                                      list("-+0123456789."))


def read_yaml(text: str):
    return yaml.load(text, Loader=InventoryLoader)  # noqa: S506 - a SafeLoader with fewer implicit types


def inventory_file(p: str) -> Path:
    """A file an inventory names (auth_pass_file, become_password_file, lab.users.password_file):
    `~` expanded, relative paths relative to inventories/."""
    path = Path(os.path.expanduser(p))
    return path if path.is_absolute() else inventory_dir() / path


# --env is an inventory's name (inventories/NAME.yaml), matched whole: "lab-3\n" is no name
ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PATH_MAX = 4095


def path_for(env: str) -> Path:
    """The file --env names: a path to a .yaml file, else inventories/NAME.yaml."""
    p = Path(env)
    if p.suffix in (".yaml", ".yml") and len(env.encode()) <= PATH_MAX and env.isprintable():
        try:
            if p.exists():
                return p
        except OSError as e:        # a path component too long, a loop of links ...
            raise InventoryError(f"--env {_clip(env)}: cannot read it ({e.strerror}) — name an inventory "
                                 "file") from None
    if not ENV_NAME.fullmatch(env) and p.suffix in (".yaml", ".yml"):
        raise InventoryError(f"--env {_clip(env)}: no such inventory file — name an existing .yaml file, "
                             "or an inventory by name")
    if not ENV_NAME.fullmatch(env):
        known = sorted(p.stem for p in inventory_dir().glob("*.yaml"))
        if FLEET_MARKS & set(env) and all(ENV_NAME.fullmatch(re.sub(r"[*?\[\]]", "x", part))
                                          for part in env.split(",")):
            raise InventoryError(f"--env {_clip(env)}: several inventories are for check and status — this "
                                 f"task takes one: choose from {', '.join(known)}")
        raise InventoryError(f"--env {_clip(env)}: not an inventory name (a letter or digit, then letters, digits, "
                             f"'.', '_', '-', at most 64) nor a .yaml file — choose from {', '.join(known)}")
    return inventory_dir() / f"{env}.yaml"


def _clip(text: str, most: int = 60) -> str:
    """A value the user gave, shown in one line: repr (control characters visible), cut to `most`."""
    return repr(text) if len(text) <= most else repr(text[:most]) + f"... ({len(text)} characters)"


def load(env: str) -> tuple[Inventory, Path]:
    path = path_for(env)        # a name or a .yaml path, refused in one line if it is neither
    # no such file: an inventory an extension makes from its name (the lab's lab-N)
    if not path.exists() and (made := extensions.generated(env, inventory_dir())) is not None:
        data, origin = made
        return parse(data, f"inventories/{env}.yaml (generated from {origin})"), path
    if not path.exists():
        known = sorted(p.stem for p in inventory_dir().glob("*.yaml"))
        if not known:
            raise InventoryError(f"{_show(path)}: no such inventory, and no inventory in {_show(inventory_dir())} "
                                 f"— name the directory with --inventories DIR or ${INVENTORIES_VAR}")
        raise InventoryError(f"{_show(path)}: no such inventory — choose --env from {', '.join(known)}")
    if not path.is_file():
        raise InventoryError(f"{_show(path)}: is a directory, not an inventory file — name a .yaml file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InventoryError(f"{_show(path)}: cannot read it ({e.strerror}) — check its permissions") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise InventoryError(f"{_show(path)}: line {line}: byte 0x{raw[e.start]:02x} is not UTF-8 — save the file "
                             "as UTF-8") from None
    if "\x00" in text:
        raise InventoryError(f"{_show(path)}: holds NUL bytes (a binary file?) — name the YAML inventory")
    try:
        data = read_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise InventoryError(f"{_show(path)}:{where}: not valid YAML ({getattr(e, 'problem', e)})"
                             " — fix the syntax") from None
    if data is None:
        raise InventoryError(f"{_show(path)}: is empty — start with `cluster: NAME` (see inventories/example.yaml)")
    if not isinstance(data, dict):
        raise InventoryError(f"{_show(path)}: top level must be a mapping — start with `cluster: NAME`")
    inv = parse(data, _show(path))
    file_problems(inv, _show(path))
    return inv, path


def parse(data: dict, source: str = "<inventory>") -> Inventory:
    try:
        inv = Inventory.model_validate(data)
        inv._source = source
        return inv
    except ValidationError as e:
        raise InventoryError(all_problems(e, source)) from None
    except RecursionError:
        raise InventoryError(f"{source}: nested too deeply — check the YAML's structure") from None


def file_problems(inv: Inventory, source: str) -> None:
    """What the inventory names on this machine must be there (templates_dir)."""
    if inv.templates_dir is not None:
        p = Path(inv.templates_path)
        if not p.exists():
            raise InventoryError(f"{source}: templates_dir: {inv.templates_dir} does not exist — create it "
                                 "or drop templates_dir (relative paths start in inventories/)")
        if not p.is_dir():
            raise InventoryError(f"{source}: templates_dir: {inv.templates_dir} is a file, not a directory — "
                                 "name the directory that holds your *.j2 templates")


def all_problems(e: ValidationError, source: str) -> list[str]:
    """One line per problem pydantic found, in document order. An unknown key next to a missing
    required one it resembles is one problem (a typo), reported with the name it should have."""
    errs = e.errors(include_url=False)
    locs = [tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-"))) for err in errs]
    extra = {loc for loc, err in zip(locs, errs) if err["type"] == "extra_forbidden"}
    missing = {loc for loc, err in zip(locs, errs) if err["type"] == "missing"}
    typo_of: dict[tuple, str] = {}        # extra loc -> the missing key it stands for
    for m in missing:
        near = [x for x in extra if x[:-1] == m[:-1] and isinstance(x[-1], str)
                and difflib.get_close_matches(x[-1], [str(m[-1])], n=1, cutoff=0.75)]
        if near:
            typo_of[near[0]] = str(m[-1])
    covered = {x[:-1] + (typo_of[x],) for x in typo_of}
    out: list[str] = []
    for loc, err in zip(locs, errs):
        if err["type"] == "missing" and loc in covered:
            continue
        for line in _lines(loc, err, source, typo_of.get(loc)):
            if line not in out:
                out.append(line)
    return out or [f"{source}: not a valid inventory"]


def _lines(loc: tuple, err: dict, source: str, typo_for: str | None) -> list[str]:
    problem = err.get("ctx", {}).get("error")
    if isinstance(problem, FieldProblems):
        return [f"{source}: {dotted(loc + p.loc)}: {p.message} — {p.fix}" for p in problem.problems]
    return [_one(loc, err, source, typo_for)]


def _one(loc: tuple, err: dict, source: str, typo_for: str | None = None) -> str:
    problem = err.get("ctx", {}).get("error")
    if isinstance(problem, FieldProblem):
        return f"{source}: {dotted(loc + problem.loc)}: {problem.message} — {problem.fix}"
    kind = err["type"]
    given = err.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        msg = f"unknown key {loc[-1]!r}"
        if typo_for:
            fix = f"did you mean {typo_for}? (a required key)"
        elif key in RENAMED:
            fix = f"use {RENAMED[key]}"
        elif (block := unmodelled_keyword(loc)) is not None:
            msg = f"not supported: {key} (keepalived {block} keyword lbtk does not model)"
            fix = ("drop it, or render it yourself with templates_dir (lbtk writes only the keys it models: "
                   "docs/inventory.md)")
        else:
            near = difflib.get_close_matches(key, _keys_at(loc[:-1]), n=1, cutoff=0.6)
            fix = (f"did you mean {near[0]}?" if near else
                   f"known keys here: {', '.join(_keys_at(loc[:-1])) or 'none'} (keepalived.conf names, see README)")
    elif kind == "missing":
        msg, fix = "required field is missing", f"add {loc[-1]}:"
    elif kind == "literal_error":
        msg, fix = f"{given!r} is not allowed", f"use one of {err['ctx']['expected']}"
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        msg, fix = f"{given!r} is out of range", "use " + _bounds(loc)
    elif kind == "string_pattern_mismatch":
        msg, fix = f"{given!r} has the wrong form", "see the example inventories for the format"
    elif kind in NOT_A and given is not None and type(given).__name__ != NOT_A[kind][0]:
        msg, fix = f"{given!r} is {_kind_of(given)}, not {NOT_A[kind][1]}", NOT_A[kind][2]
    elif kind == "value_error":
        msg, fix = f"{given!r}: {str(err['ctx']['error'])}", "give a valid value"
    else:
        msg, fix = err["msg"].lower() + (f" (got {given!r})" if given is not None else ""), \
            "fix the value's type"
    return f"{source}: {dotted(loc)}: {msg} — {fix}"


# pydantic's type errors, said for a YAML author: what the field wants and how to write it
NOT_A = {"int_type": ("int", "a whole number", "write it in plain decimal, e.g. 80 (YAML's 0x10, 010, 1e3 "
                      "and yes are not numbers here)"),
         "float_type": ("float", "a number", "write it in plain decimal, e.g. 1 or 0.5"),
         "bool_type": ("bool", "true or false", "write true or false (yes, no, on and off are words here)"),
         "string_type": ("str", "text", "quote it, e.g. '010' (YAML reads an unquoted number or true/false "
                         "as such)")}


def _kind_of(value) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "text"}.get(type(value), "a "
                                                                                    + type(value).__name__)


def _model_at(loc: tuple):
    """The pydantic model class that holds the keys at `loc` (None past a plain value)."""
    model = Inventory
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _section_model(field) or next((a for a in _inner_types(field.annotation)
                                                if hasattr(a, "model_fields")), None)
    return model


def _section_model(field):
    """The model an extension gives a section (Inventory.lab), for the keys it knows."""
    return next((m.model() for m in field.metadata if isinstance(m, extensions.ExtensionSection)), None)


NAMED_SECTIONS = ("vrrp_scripts", "vrrp_track_processes", "track_files")   # {name: {...}} sections


def _schema_path(loc: tuple) -> tuple:
    """loc without the free keys of a dict of models (vrrp_scripts: {name: {...}})."""
    return tuple(x for k, x in enumerate(loc) if not (k and loc[k - 1] in NAMED_SECTIONS))


def _keys_at(loc: tuple) -> list[str]:
    model = _model_at(_schema_path(loc))
    return sorted(model.model_fields) if model is not None else []


# inventory keys that hold a keepalived block under another name (a list of them): the rest are
# keepalived's own block names (global_defs, TCP_CHECK, url ...)
BLOCK_OF_FIELD = {"vrrp_instances": "vrrp_instance", "vrrp_scripts": "vrrp_script",
                  "vrrp_sync_groups": "vrrp_sync_group", "virtual_servers": "virtual_server",
                  "real_servers": "real_server"}


def unmodelled_keyword(loc: tuple) -> str | None:
    """The keepalived block (as a user reads it: 'global_defs', 'HTTP_GET url') whose keyword the
    key at `loc` is, when the model holding it lacks it; None for a key that is no keepalived
    keyword there (a typo). The model's place in keepalived's nesting is its path of inventory
    keys; a block the model flattens into itself (HTTP_GET's url: path, digest ...) counts as its
    own."""
    parents = [x for k, x in enumerate(loc[:-1]) if isinstance(x, str) and not (k and loc[k - 1] == "vrrp_scripts")]
    path = "/".join(BLOCK_OF_FIELD.get(x, x) for x in parents)
    blocks = keepalived_keywords.BLOCKS
    if path not in blocks:
        return None
    key, fields = str(loc[-1]), set(_keys_at(loc[:-1]))
    flattened = [child for child in blocks[path] if f"{path}/{child}" in blocks and child not in fields
                 and fields & blocks[f"{path}/{child}"]]
    for where, name in [(path, None)] + [(f"{path}/{c}", c) for c in flattened]:
        if key in blocks[where]:
            parts = where.split("/")
            # a checker's own sub-blocks read with their checker's name: "HTTP_GET url", "SMTP_CHECK host"
            last = " ".join(parts[-2:]) if len(parts) > 1 and parts[-1] in ("url", "host") else parts[-1]
            block = (last if name is None else f"{path.rsplit('/', 1)[-1]} {name}") if where else "top-level"
            since = keepalived_keywords.SINCE.get((where, key))
            return f"{since} {block}" if since else block
    return None


def _bounds(loc: tuple) -> str:
    """Both bounds of the field at `loc` ("a value from 1 to 255"), read from the model."""
    model, field = Inventory, None
    for part in _schema_path(loc):
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            break
        model = next((a for a in _inner_types(field.annotation) if hasattr(a, "model_fields")), None)
    lo = hi = None
    for m in getattr(field, "metadata", []):
        lo = getattr(m, "ge", None) if getattr(m, "ge", None) is not None else lo
        hi = getattr(m, "le", None) if getattr(m, "le", None) is not None else hi
        if getattr(m, "gt", None) is not None:
            lo = f"above {m.gt}"
    if lo is not None and hi is not None:
        return f"a value from {lo} to {hi}" if isinstance(lo, (int, float)) else f"a value {lo} up to {hi}"
    if lo is not None:
        return f"a value of at least {lo}" if isinstance(lo, (int, float)) else f"a value {lo}"
    return f"a value of at most {hi}"


def _inner_types(t) -> list:
    args = typing.get_args(t)
    return [x for a in args for x in _inner_types(a)] if args else [t]


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
