#!/usr/bin/env python3
"""CPU seconds, not only wall seconds, of one toolkit task on a running lab (issue 14): the machine is
shared, so wall times are noisy; what a change saves shows in CPU. For each run: wall s, the
controller's user+sys s (the `inv` process and its children, from wait4's rusage) and the nodes'
CPU s (the sum of usage_usec in cpu.stat of the lab nodes' own cgroups, `lbtk-<node>` in the
unified hierarchy: sshd, the facts script and whatever the task starts there, keepalived included).

Usage (root, a lab up and deployed; hold the lab lock):
  flock /tmp/lbtk-lab.lock .venv/bin/python bench/cost.py --env lab-30 --runs 7 verify --no-http
  flock /tmp/lbtk-lab.lock .venv/bin/python bench/cost.py --env lab-30 --runs 3 --fresh deploy
--fresh brings the lab down and up before each run (a first deploy), outside the timed part.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CGROUP2 = [Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")]
ENV = {"LBTK_FORMAT": "plain", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def node_usage_s() -> float:
    """CPU seconds so far of every lab node's cgroup (lbtk-*), summed."""
    root = next((p for p in CGROUP2 if (p / "cgroup.procs").exists()), None)
    if root is None:
        return float("nan")
    total = 0
    for cg in root.glob("lbtk-*"):
        try:
            for line in (cg / "cpu.stat").read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == "usage_usec":
                    total += int(v)
        except OSError:
            pass
    return total / 1e6


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]                  # idle + iowait
    total = sum(fields[:8])                       # guest time is already in user
    return (total - idle) / hz, total / hz


def settle_nodes(limit_s: float = 90.0, quiet_cores: float = 0.05, quiet_machine: float = 0.15) -> float:
    """Wait until the lab nodes' boot work is done (their cgroups use under `quiet_cores` of a core
    over a second) and the whole machine is quiet (under `quiet_machine` of its cores busy over that
    second: a previous side's lab.down, its tool's processes and the host's own teardown work have
    ended), so every side's first deploy starts on booted, idle nodes and an idle controller, as in an
    estate; seconds waited (capped at limit_s)."""
    t0 = time.monotonic()
    last, (busy, total) = node_usage_s(), machine_busy_s()
    while time.monotonic() - t0 < limit_s:
        time.sleep(1.0)
        now, (busy2, total2) = node_usage_s(), machine_busy_s()
        machine = (busy2 - busy) / max(total2 - total, 1e-9)
        if now - last < quiet_cores and machine < quiet_machine:
            break
        last, busy, total = now, busy2, total2
    return time.monotonic() - t0


def inv(*args: str, check: bool = True) -> tuple[float, float]:
    """(wall s, controller user+sys s) of one `inv ...`."""
    t = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t
    rc = os.waitstatus_to_exitcode(status)
    p.returncode = rc
    if check and rc not in (0, 1):
        raise SystemExit(f"inv {' '.join(args)} failed ({rc}): {err.strip()[-500:]}")
    return wall, ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fresh", action="store_true", help="lab.down + lab.up before each run")
    ap.add_argument("task", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    rows = []
    for k in range(a.runs):
        if a.fresh:
            inv("lab.down", "--env", a.env, check=False)
            inv("lab.up", "--env", a.env)
            settle_nodes()      # the nodes' boot work (not ours) out of the measured window
        n0 = node_usage_s()
        wall, ctl = inv(*a.task, "--env", a.env)
        node = node_usage_s() - n0
        rows.append((wall, ctl, node))
        print(f"  run {k + 1}: wall {wall:.2f} s, controller CPU {ctl:.2f} s, nodes CPU {node:.2f} s", flush=True)
    for i, what in enumerate(("wall", "controller CPU", "nodes CPU")):
        v = [r[i] for r in rows]
        print(f"{' '.join(a.task)} --env {a.env}: {what} min {min(v):.2f} / median {statistics.median(v):.2f} "
              f"/ max {max(v):.2f} s")


if __name__ == "__main__":
    main()
