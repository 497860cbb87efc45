"""Find, load and validate `inventories/NAME.yaml`.

Every problem becomes one line: `FILE: FIELD.PATH: what is wrong — how to fix it`.
The tasks print it and exit non-zero; nobody sees a traceback for bad input.
"""
from __future__ import annotations

import typing
from pathlib import Path

import yaml
from pydantic import ValidationError

from .model import FieldProblem, Inventory

ROOT = Path(__file__).resolve().parent.parent
INVENTORY_DIR = ROOT / "inventories"


class InventoryError(Exception):
    """Bad input. str(err) is the complete one-line message for the user."""


def path_for(env: str) -> Path:
    p = Path(env)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    return INVENTORY_DIR / f"{env}.yaml"


def load(env: str) -> tuple[Inventory, Path]:
    path = path_for(env)
    if not path.exists():
        known = sorted(p.stem for p in INVENTORY_DIR.glob("*.yaml"))
        raise InventoryError(f"{_show(path)}: no such inventory — choose --env from {', '.join(known)}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise InventoryError(f"{_show(path)}:{where}: not valid YAML ({getattr(e, 'problem', e)})"
                             " — fix the syntax") from None
    if not isinstance(data, dict):
        raise InventoryError(f"{_show(path)}: top level must be a mapping — start with `cluster: NAME`")
    return parse(data, _show(path)), path


def parse(data: dict, source: str = "<inventory>") -> Inventory:
    try:
        return Inventory.model_validate(data)
    except ValidationError as e:
        raise InventoryError(first_problem(e, source)) from None


def first_problem(e: ValidationError, source: str) -> str:
    """One line for the most useful error pydantic found (the first, in document order)."""
    err = e.errors(include_url=False)[0]
    loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
    problem = err.get("ctx", {}).get("error")
    if isinstance(problem, FieldProblem):
        return f"{source}: {dotted(loc + problem.loc)}: {problem.message} — {problem.fix}"
    kind = err["type"]
    given = err.get("input")
    if kind == "extra_forbidden":
        msg, fix = f"unknown key {loc[-1]!r}", "check the spelling against keepalived.conf names (see README)"
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


def dotted(loc: tuple) -> str:
    out = ""
    for x in loc:
        out += f"[{x}]" if isinstance(x, int) else (f".{x}" if out else str(x))
    return out or "(top level)"


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
