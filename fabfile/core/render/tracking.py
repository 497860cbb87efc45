"""The template's view of what a vrrp_instance tracks (keepalived_tracking.j2): plain strings
and numbers, each entry written as keepalived reads it (`eth1 weight -60`)."""
from __future__ import annotations

from fabfile.model.schema import Inventory, VrrpInstance
from fabfile.model.tracking import TRACK_LISTS

DELAYS = ("fork_delay", "terminate_delay", "delay")


def sections(inv: Inventory) -> dict:
    """The vrrp_track_process and track_file blocks, by name."""
    from fabfile.core.render.keepalived import _num   # (keepalived imports this module)
    processes = {name: {**p.model_dump(), "process": p.rendered_process(), **{k: _num(getattr(p, k)) for k in DELAYS if getattr(p, k) is not None}}
                 for name, p in inv.vrrp_track_processes.items()}
    files = {name: {"file": f.file, "weight": f.weight, "init_file": f.init_file and f.init_file.rendered()}
             for name, f in inv.track_files.items()}
    return {"processes": processes, "files": files}


def instance(vi: VrrpInstance) -> dict:
    """dont_track_primary and the instance's non-empty track_* lists, in keepalived's words."""
    return {"dont_track_primary": vi.dont_track_primary,
            "lists": [(field, [e.rendered() for e in getattr(vi, field)])
                      for field in TRACK_LISTS if getattr(vi, field)]}
