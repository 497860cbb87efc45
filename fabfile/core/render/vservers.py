"""The template's view of the virtual-server-level keepalived options, the virtual_server_groups
and the real servers' own options (fabfile/model/virtual_servers.py), for keepalived_vservers.j2."""
from __future__ import annotations

from fabfile.model.schema import Inventory, RealServer, VirtualServer

# flags keepalived takes as a bare keyword, in the order they are written
VS_FLAGS = ("ops", "ha_suspend", "alpha", "omega")


def vs_options(vs: VirtualServer, fwmark: bool = False) -> dict:
    """What a virtual_server block says beyond lbtk's original keywords; empty by default (an
    inventory without these options renders what it rendered before). `fwmark`: the block is
    `virtual_server fwmark N` (director_fix makes one of a vip:port service too)."""
    s = vs.sorry_server
    # DR/TUN to a fwmark service forwards by mark, not port: keepalived clears a sorry server's
    # port there with a warning, as it does a real server's (which lbtk writes without one)
    portless = fwmark and (vs.sorry_server_lvs_method or vs.lb_kind) != "NAT"
    return dict(
        flags=[k for k in VS_FLAGS if getattr(vs, k)],
        persistence_engine=vs.persistence_engine, virtualhost=vs.virtualhost,
        quorum=vs.quorum, hysteresis=vs.hysteresis, quorum_up=vs.quorum_up, quorum_down=vs.quorum_down,
        # a fwmark or group service has no port of its own: the sorry server names one when given
        sorry=None if s is None else s.address + (f" {s.port or vs.port}" if (s.port or vs.port) and not portless
                                                  else ""),
        sorry_inhibit=vs.sorry_server_inhibit, sorry_method=vs.sorry_server_lvs_method)


def rs_options(rs: RealServer) -> dict:
    return dict(inhibit_on_failure=rs.inhibit_on_failure, notify_up=rs.notify_up, notify_down=rs.notify_down,
                uthreshold=rs.uthreshold, lthreshold=rs.lthreshold)


def groups(inv: Inventory) -> list[tuple[str, list[str]]]:
    """Every virtual_server_group as (name, member lines as the inventory writes them)."""
    return [(g.name, [" ".join(m.split()) for m in g.members]) for g in inv.virtual_server_groups]


def has_commands(inv: Inventory) -> bool:
    """Does keepalived run a command for a virtual or real server (then script_user is written)?"""
    return any(vs.quorum_up or vs.quorum_down or any(rs.notify_up or rs.notify_down for rs in vs.real_servers)
               for vs in inv.virtual_servers)
