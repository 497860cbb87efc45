"""The context every core function runs in: the loaded inventory (`Env`) and node selection.

The core imports this, never the task layer: `fabfile.tasks` only parses flags, calls the core
and prints.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fabfile.model import secrets
from fabfile.errors import LbtkError, UsageError
from fabfile.model.loading import load
from fabfile.model.schema import Inventory, Node

if TYPE_CHECKING:
    from fabfile.parsers.lbtk_state import RuntimeRecord

DEFAULT_ENV = "lab"


@dataclass
class Env:
    inv: Inventory
    path: Path
    secrets: dict[str, str]
    name: str
    # the nodes' runtime record (drains) once a run has read it (fabfile/core/runtime.py); None before
    runtime: "RuntimeRecord | None" = None
    # nodes worked on at once (--parallel N); None: the connection layer's default
    parallel: int | None = None
    # every secret this run has seen, hidden in all it prints (the running task's: secrets.masking)
    masker: secrets.Masker = field(default_factory=secrets.current)

    @property
    def lint_note(self) -> str | None:
        """One line when absent secrets were stood in for (load_env(lint=True)), else None."""
        return secrets.placeholder_note(str(rel(self.path)), self.secrets)


def load_env(env: str, masker: secrets.Masker | None = None, lint: bool = False) -> Env:
    """inventories/NAME.yaml, validated, with its secrets, which `masker` (default: the running
    task's, secrets.current()) learns. Runtime overrides (drains) live on the nodes: a run applies
    them once it has read them (fabfile/core/runtime.py). `lint`: a run that only checks or prints
    (never deploys) stands in for an absent secret (secrets.Placeholder; Env.lint_note says so)."""
    inv, path = load(env)
    masker = masker or secrets.current()
    return Env(inv=inv, path=path, secrets=secrets.resolve_all(inv, str(path.name and rel(path)), masker, lint),
               name=env, masker=masker)


def select_nodes(inv: Inventory, node: str | None) -> list[Node]:
    """Every node, or the one --node names (a one-line error naming the choices otherwise)."""
    nodes = [n for n in inv.nodes if node in (None, n.name)]
    if not nodes:
        raise UsageError(f"--node {node}: no such node — choose from {', '.join(n.name for n in inv.nodes)}")
    return nodes


def rel(path: Path) -> str:
    """A path as the user would type it: relative to the working directory where possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


__all__ = ["DEFAULT_ENV", "Env", "LbtkError", "load_env", "select_nodes", "rel"]
