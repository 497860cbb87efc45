"""Pure rendering: (inventory, node, facts, secrets) -> the exact files that node needs.

Each concern has a small module with its Jinja2 templates beside it. Nothing here touches
the network or the disk except reading the templates.
"""
from __future__ import annotations

from dataclasses import dataclass

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from ..model import Inventory
from pathlib import Path


@dataclass(frozen=True)
class Facts:
    """What a node's own state changes about its files (observed by the install phase)."""
    ipvs: bool = True          # kernel has IPVS; without it keepalived runs VRRP-only


@dataclass(frozen=True)
class NodeFile:
    path: str                  # absolute path on the node
    content: str | None        # None: the file must not exist
    phase: str                 # keepalived | lvs | arp | nginx | sync-daemon
    mode: int = 0o644
    secret: bool = False       # holds the VRRP secret: mask before showing, 0600 on the node


HERE = Path(__file__).parent
_envs: dict[str | None, Environment] = {}
_override: list[str | None] = [None]   # the inventory's templates_dir while rendering it


def environment(override_dir: str | None) -> Environment:
    """Templates from the inventory's templates_dir first (site overrides), then ours."""
    if override_dir not in _envs:
        dirs = [override_dir, str(HERE)] if override_dir else [str(HERE)]
        _envs[override_dir] = Environment(loader=ChoiceLoader([FileSystemLoader(d) for d in dirs]),
                                          undefined=StrictUndefined, trim_blocks=True,
                                          lstrip_blocks=True, keep_trailing_newline=True)
    return _envs[override_dir]


def template(name: str, **values) -> str:
    return environment(_override[0]).get_template(name).render(**values)


def render_node(inv: Inventory, node_name: str, secrets: dict[str, str],
                facts: Facts = Facts()) -> list[NodeFile]:
    from . import arp, fwmark, ipvs_sync, keepalived, nginx  # noqa: E402 (modules import template())
    node = inv.node(node_name)
    _override[0] = inv.templates_path
    files = []
    files += keepalived.files(inv, node, secrets, facts)
    files += fwmark.files(inv, node)
    files += arp.files(inv, node, facts)
    files += nginx.files(inv, node)
    files += ipvs_sync.files(inv, node, facts)
    return files


def render_all(inv: Inventory, secrets: dict[str, str],
               facts: dict[str, Facts] | None = None) -> dict[str, list[NodeFile]]:
    facts = facts or {}
    return {n.name: render_node(inv, n.name, secrets, facts.get(n.name, Facts())) for n in inv.nodes}
