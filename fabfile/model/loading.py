"""Find, load and validate `inventories/NAME.yaml` (the directory: $LBTK_INVENTORIES, else the repository's).

Every problem becomes one line: `FILE: FIELD.PATH: what is wrong — how to fix it`.
The tasks print it and exit non-zero; nobody sees a traceback for bad input.
"""
from __future__ import annotations

import difflib
import os
import re
import typing
from pathlib import Path

import yaml
from pydantic import ValidationError

from fabfile.errors import LbtkError
from fabfile.model.schema import FieldProblem, FieldProblems, Inventory, dotted

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES_VAR = "LBTK_INVENTORIES"


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
           "virtual_server": "virtual_servers", "vrrp_instance": "vrrp_instances", "vrrp_script": "vrrp_scripts"}


def inventory_file(p: str) -> Path:
    """A file an inventory names (auth_pass_file, become_password_file, lab.users.password_file):
    `~` expanded, relative paths relative to inventories/."""
    path = Path(os.path.expanduser(p))
    return path if path.is_absolute() else inventory_dir() / path


def path_for(env: str) -> Path:
    p = Path(env)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    return inventory_dir() / f"{env}.yaml"


GENERATED = re.compile(r"^lab-(\d+)$")
GENERATED_MAX = 50          # nodes 10.189.0.11 .. .60 on the lab bridge


def generated(env: str) -> dict | None:
    """`--env lab-N` with no such file: the lab inventory with N nodes (node1..nodeN, 10.189.0.11..,
    priorities 200, 199, ..., every node a real server), so scale is one command (inv lab.up --env lab-30)."""
    m = GENERATED.match(env)
    if not m or (inventory_dir() / f"{env}.yaml").exists():
        return None
    n = int(m.group(1))
    if not 1 <= n <= GENERATED_MAX:
        raise InventoryError(f"--env {env}: a generated lab has 1 to {GENERATED_MAX} nodes")
    data = yaml.safe_load((inventory_dir() / "lab.yaml").read_text())
    data["cluster"] = env
    data["nodes"] = [{"name": f"node{k}", "host": f"10.189.0.{10 + k}", "priority": 201 - k,
                      **({"state": "MASTER"} if k == 1 else {}), "mac": f"02:bd:00:00:01:{10 + k:02x}"}
                     for k in range(1, n + 1)]
    for vs in data.get("virtual_servers", []):
        check = vs["real_servers"][0].get("TCP_CHECK")
        vs["real_servers"] = [{"node": f"node{k}", "weight": 1, **({"TCP_CHECK": check} if check else {})}
                              for k in range(1, n + 1)]
    return data


def load(env: str) -> tuple[Inventory, Path]:
    if (data := generated(env)) is not None:
        path = inventory_dir() / f"{env}.yaml"
        return parse(data, f"inventories/{env}.yaml (generated from lab.yaml)"), path
    path = path_for(env)
    if not path.exists():
        known = sorted(p.stem for p in inventory_dir().glob("*.yaml"))
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
        data = yaml.safe_load(text)
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
    elif kind == "value_error":
        msg, fix = f"{given!r}: {str(err['ctx']['error'])}", "give a valid value"
    else:
        msg, fix = err["msg"].lower() + (f" (got {given!r})" if given is not None else ""), \
            "fix the value's type"
    return f"{source}: {dotted(loc)}: {msg} — {fix}"


def _model_at(loc: tuple):
    """The pydantic model class that holds the keys at `loc` (None past a plain value)."""
    model = Inventory
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = next((a for a in _inner_types(field.annotation) if hasattr(a, "model_fields")), None)
    return model


def _keys_at(loc: tuple) -> list[str]:
    # a dict of models (vrrp_scripts: {name: {...}}): the name is a free key, skip it
    trimmed = tuple(x for k, x in enumerate(loc) if not (k and loc[k - 1] == "vrrp_scripts"))
    model = _model_at(trimmed)
    return sorted(model.model_fields) if model is not None else []


def _bounds(loc: tuple) -> str:
    """Both bounds of the field at `loc` ("a value from 1 to 255"), read from the model."""
    model, field = Inventory, None
    for part in loc:
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
