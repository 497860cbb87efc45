#!/usr/bin/env python3
"""Scale: the toolkit's first deploy, no-op redeploy, one change and verify on generated labs of
N nodes (`--env lab-N`, fabfile.inventory.generated), each timed several runs; prints
min / median / max per task and size, and the cost per added node.

Usage (root, the plain lab down): .venv/bin/python bench/scale.py [--sizes 3,10,30] [--runs 3]
Each size: lab.up --env lab-N, the timings, lab.down. The Ansible side of the comparison (issue 14)
is not here yet.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def inv(*args: str, check: bool = True) -> float:
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                       env={"LBTK_FORMAT": "plain", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    if check and r.returncode != 0:
        raise SystemExit(f"inv {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return time.monotonic() - t


def fresh_nodes(env: str) -> None:
    """Back to a first deploy: the lab comes down and up again (nothing deployed on its nodes)."""
    inv("lab.down", "--env", env, check=False)
    inv("lab.up", "--env", env)


def one_size(n: int, runs: int) -> dict[str, list[float]]:
    env = f"lab-{n}"
    out: dict[str, list[float]] = {"first deploy": [], "no-op deploy": [], "one change": [], "verify": []}
    for k in range(runs):
        fresh_nodes(env)
        out["first deploy"].append(inv("deploy", "--env", env))
        out["no-op deploy"].append(inv("deploy", "--env", env))
        out["verify"].append(inv("verify", "--env", env, "--no-http"))
        # one change: a real server's weight (a drain is one keepalived.conf change on every node)
        out["one change"].append(inv("drain", "--env", env, "--server", "node2"))
        inv("undrain", "--env", env, "--server", "node2")
        print(f"  {env} run {k + 1}: " + ", ".join(f"{t} {v[-1]:.2f}s" for t, v in out.items()), flush=True)
    inv("lab.down", "--env", env, check=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="3,10,30")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    results = {}
    for n in sizes:
        print(f"lab-{n}:", flush=True)
        results[n] = one_size(n, a.runs)
    tasks = list(next(iter(results.values())))
    print("\n| task | " + " | ".join(f"{n} nodes (min / median / max)" for n in sizes) + " | s per added node |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for t in tasks:
        cells = []
        for n in sizes:
            v = results[n][t]
            cells.append(f"{min(v):.2f} / {statistics.median(v):.2f} / {max(v):.2f}")
        med = [statistics.median(results[n][t]) for n in sizes]
        slope = (med[-1] - med[0]) / (sizes[-1] - sizes[0]) if len(sizes) > 1 else 0.0
        print(f"| {t} | " + " | ".join(cells) + f" | {slope:.3f} |")


if __name__ == "__main__":
    main()
