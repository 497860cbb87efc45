"""What every task shares: loading --env, and turning known failures into one line + exit code."""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from invoke import Exit

from .. import secrets
from ..inventory import InventoryError, load
from ..remote import RemoteError
from ..model import Inventory

DEFAULT_ENV = "lab"


class LbtkError(Exception):
    """A failure the user can act on; str() is the whole one-line message."""


@dataclass
class Env:
    inv: Inventory
    path: Path
    secrets: dict[str, str]
    name: str


def load_env(env: str) -> Env:
    from .. import overrides
    inv, path = load(env)
    inv = overrides.apply(inv, overrides.drained(path))
    return Env(inv=inv, path=path, secrets=secrets.resolve_all(inv, str(path.name and _rel(path))),
               name=env)


def select_nodes(inv: Inventory, node: str | None) -> list:
    """Every node, or the one --node names (a one-line error naming the choices otherwise)."""
    nodes = [n for n in inv.nodes if node in (None, n.name)]
    if not nodes:
        raise LbtkError(f"--node {node}: no such node — choose from {', '.join(n.name for n in inv.nodes)}")
    return nodes


def one_line_errors(fn):
    """Bad input and known operational failures end as `error: ...` and exit 2, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except (InventoryError, LbtkError, RemoteError) as e:
            raise Exit(secrets.mask(f"error: {e}"), code=2) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None
        except BrokenPipeError:  # `inv render | head`: the reader left, that is fine
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            raise Exit(code=0) from None
    return wrapper


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
