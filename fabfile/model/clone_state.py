"""What this clone keeps beside the inventory: the nodes a --skip-unreachable change could not
reach (inventories/.state/NAME.owed.yaml), and how a --server argument names a real server.

Drains are NOT kept here: they live on the nodes, where every clone sees them (fabfile/core/runtime.py).
"""
from __future__ import annotations

from pathlib import Path

import yaml

from fabfile.model.loading import inventory_dir
from fabfile.model.schema import Inventory


def state_dir() -> Path:
    """This clone's state beside its inventories (inventory_dir() follows $LBTK_INVENTORIES)."""
    return inventory_dir() / ".state"


def resolve_server(inv: Inventory, server: str) -> str | None:
    """A node name or an address -> the real server address it names (None: not a real server)."""
    addr = inv.node(server).ip if server in {n.name for n in inv.nodes} else server
    for vs in inv.virtual_servers:
        for rs in vs.real_servers:
            if inv.real_server_address(rs) == addr:
                return addr
    return None


def owed_path(inventory_path: Path) -> Path:
    return state_dir() / f"{inventory_path.stem}.owed.yaml"


def owed(inventory_path: Path) -> dict[str, dict]:
    """{node: {"since": ISO time, "why": the one line}}: nodes a --skip-unreachable change could
    not reach; the next deploy that reaches them brings them up to date and clears them."""
    p = owed_path(inventory_path)
    if not p.exists():
        return {}
    data = yaml.safe_load(p.read_text()) or {}
    return {str(k): dict(v) for k, v in data.items()} if isinstance(data, dict) else {}


def set_owed(inventory_path: Path, entries: dict[str, dict]) -> None:
    _write(owed_path(inventory_path),
           "--skip-unreachable: nodes that missed a change (the next deploy reaching them catches up)", entries)


def _write(p: Path, why: str, data) -> None:
    """A state file with a comment saying who wrote it and why; no data: no file."""
    if not data:
        p.unlink(missing_ok=True)
        return
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(f"# written by {why}\n" + yaml.safe_dump(data, sort_keys=True))
