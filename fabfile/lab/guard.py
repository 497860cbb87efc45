"""The network rule for lab inventories: a lab's node addresses (10.189.0.x, fd00:189::x) are
reached only through the lab's own bridge. Without it up, a connection to them would follow this
machine's default route out of it, so nothing connects until the bridge holds the lab's gateway
address(es). The product calls `require_lab_segment` through fabfile.model.extensions.before_connect
(the task layer before it loads nodes, the connection layer before a socket opens)."""
from __future__ import annotations

import subprocess

from fabfile.errors import LbtkError
from fabfile.parsers import ParseError
from fabfile.parsers.ip_addr import holds, parse_ip_addr


def segment_up(bridge: str, gateways: list[str]) -> bool:
    """Does `bridge` exist and carry every gateway address (address/prefix or address)?"""
    try:
        r = subprocess.run(["ip", "-j", "addr", "show", "dev", bridge], capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    if r.returncode != 0:
        return False
    try:
        addrs = parse_ip_addr(r.stdout)
    except ParseError:
        return False
    return all(holds(addrs, g.split("/")[0]) for g in gateways)


_checked: set[tuple[str, tuple[str, ...]]] = set()    # segments seen up in this run


def require_lab_segment(inv, env_name: str | None = None) -> None:
    """One line, before any connection, when a lab inventory's lab is not up (checked once a run)."""
    lab = inv.lab
    if lab is None:
        return
    gateways = (lab.gateway,) + ((lab.gateway6,) if lab.gateway6 else ())
    if (lab.bridge, gateways) in _checked:
        return
    if not segment_up(lab.bridge, list(gateways)):
        env = env_name or f"<the inventory of cluster {inv.cluster}>"
        raise LbtkError(f"{env_name or 'cluster ' + inv.cluster} is a lab inventory and its lab is not up "
                        f"(bridge {lab.bridge} does not hold {' and '.join(gateways)}): "
                        f"run `inv lab.up --env {env}` first")
    _checked.add((lab.bridge, gateways))
