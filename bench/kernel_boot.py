#!/usr/bin/env python3
"""Kernel tier boot, Debian 12's kernel against Debian 13's (issue 16): each run boots the VM from
nothing (`inventories/kernel.yaml`, then `kernel-trixie.yaml`), with the three nodes, and takes
kernel.up's own timings: guest userspace up, nodes up (READY), SSH from the host; then
`inv deploy` from scratch; then the VM comes down. Prints min / median / max per kernel.

Usage (root, the kernel tier set up by `scripts/setup.sh --kernel`; the lab is shared: hold its lock):
  flock /tmp/lbtk-lab.lock .venv/bin/python bench/kernel_boot.py [--runs 3] [--no-deploy]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENVS = {"bookworm": "kernel", "trixie": "kernel-trixie"}
COLUMNS = [("boot_s", "userspace"), ("up_s", "nodes up"), ("ssh_s", "SSH"), ("deploy_s", "deploy")]


def one_run(env: str, deploy: bool) -> dict[str, float]:
    from fabfile.lab import kernel
    from fabfile.tasks.lab import spec_for
    spec = spec_for(env)
    kernel.down(spec, progress=lambda s: None)
    try:
        times = kernel.up(spec, progress=lambda s: None)
        if deploy:
            t = time.monotonic()
            r = subprocess.run([sys.executable, "-m", "invoke", "deploy", "--env", env], cwd=ROOT,
                               capture_output=True, text=True, env={"LBTK_FORMAT": "plain",
                                                                    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
            if r.returncode != 0:
                raise SystemExit(f"inv deploy --env {env} failed ({r.returncode}): {r.stderr.strip()[-300:]}")
            times["deploy_s"] = time.monotonic() - t
        times["kver"] = kernel.booted(spec)
    finally:
        kernel.down(spec, progress=lambda s: None)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-deploy", action="store_true")
    a = ap.parse_args()
    got: dict[str, list[dict]] = {r: [] for r in ENVS}
    for i in range(a.runs):
        for release, env in ENVS.items():
            t = one_run(env, not a.no_deploy)
            got[release].append(t)
            print(f"run {i + 1} {release} ({t['kver']}): "
                  + ", ".join(f"{label} {t[k]:.1f}s" for k, label in COLUMNS if k in t), flush=True)
    print(f"\n{'kernel':28s}" + "".join(f"{label:>22s}" for _, label in COLUMNS))
    for release, runs in got.items():
        row = f"{release + ' ' + runs[0]['kver']:28s}"
        for k, _ in COLUMNS:
            v = [r[k] for r in runs if k in r]
            row += f"{min(v):6.1f} {statistics.median(v):6.1f} {max(v):6.1f}  " if v else f"{'-':>22s}"
        print(row)
    print("(min median max, seconds from qemu's start; deploy: `inv deploy` from scratch)")


if __name__ == "__main__":
    main()
