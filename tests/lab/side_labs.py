"""Labs that run beside the plain lab on lbtk-br0 (their own node names, addresses, MACs, VIPs and
virtual_router_ids): brought up by a test module and taken down at its end, unless they were up
already (or LBTK_KEEP_LAB=1); the other labs' nodes (their nspawn pids) are the same right before
and right after each lab.down."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .requirements import missing_for_lab

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fabfile import lab  # noqa: E402


def _spec(env):
    from fabfile.lab.hooks import spec_for
    return spec_for(env)


def _others_running(mine: set[str]) -> dict[str, int]:
    """Every running lab node in the lab dir that is not ours: name -> nspawn pid."""
    d = lab.LabSpec(nodes=()).lab_dir / "nodes"
    out = {}
    for sub in sorted(d.glob("*")) if d.is_dir() else []:
        try:
            pid = int((sub / "nspawn.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if sub.name not in mine and Path(f"/proc/{pid}").exists():
            out[sub.name] = pid
    return out


def bring_up(env):
    reason = missing_for_lab()
    if reason:
        pytest.skip(reason)
    spec = _spec(env)
    mine = {n.name for n in spec.nodes}
    was_up = all(s.running for s in lab.status(spec))
    t0 = time.monotonic()
    lab.build_rootfs(spec, progress=print)
    lab.up(spec, progress=print)
    print(f"lab.up --env {env}: {time.monotonic() - t0:.1f}s ({'was up' if was_up else 'booted'})")
    return spec, mine, was_up


def take_down(spec, mine, was_up):
    if was_up or os.environ.get("LBTK_KEEP_LAB") == "1":
        return
    others = _others_running(mine)       # right before: their owners may restart them meanwhile
    lab.down(spec, progress=print)
    assert not any(s.running for s in lab.status(spec))
    after = _others_running(mine)      # (a lab that waited for our lab lock may start meanwhile)
    assert {n: after.get(n) for n in others} == others             # the same processes, untouched
    if others:
        assert Path("/sys/class/net", spec.bridge).exists()        # other labs keep their bridge



@contextlib.contextmanager
def running(env):
    """A module's side lab: up (or already up), its spec yielded, down afterwards as take_down says."""
    up = bring_up(env)
    try:
        yield up[0]
    finally:
        take_down(*up)

def ssh(spec, host, cmd):
    """A command on a lab node over real SSH (the lab's key, host keys checked)."""
    c = lab.ssh_config(spec)
    return subprocess.run(["ssh", "-i", c["key_filename"], "-o", f"UserKnownHostsFile={c['known_hosts']}",
                           "-o", "StrictHostKeyChecking=yes", "-o", "GSSAPIAuthentication=no", "-o", "BatchMode=yes",
                           f"root@{host}", cmd], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
