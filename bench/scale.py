#!/usr/bin/env python3
"""Scale: first deploy, no-op redeploy, one change and verify on generated labs of N nodes
(`--env lab-N`, fabfile.model.loading.generated), by the toolkit and by an equivalent Ansible playbook
(bench/ansible/, issue 14), each timed several runs in the same sitting; prints one comparison table
(medians, Ansible / toolkit) and min / median / max per side, task and size, with the cost per added node.

Usage (root, the plain lab down; the lab is shared: hold its lock):
  flock /tmp/lbtk-lab.lock .venv/bin/python bench/scale.py [--sizes 3,10,30] [--runs 3] [--side both]
Each size: every run is the toolkit's cycle then Ansible's, each on fresh nodes (lab.down + lab.up);
then lab.down. The Ansible side installs its pinned ansible-core into bench/.venv-ansible first.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import ansible_side
from cost import settle_nodes

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["first deploy", "no-op deploy", "one change", "verify"]


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
    settle_nodes()       # booted and idle, as nodes in an estate are (the boot's tail is not the deploy's)


def toolkit_cycle(n: int) -> dict[str, float]:
    env = f"lab-{n}"
    fresh_nodes(env)
    took = {"first deploy": inv("deploy", "--env", env)}
    took["no-op deploy"] = inv("deploy", "--env", env)
    took["verify"] = inv("verify", "--env", env, "--no-http")
    # one change: a real server's weight (a drain is one keepalived.conf change on every node)
    took["one change"] = inv("drain", "--env", env, "--server", "node2")
    inv("undrain", "--env", env, "--server", "node2")
    return took


def one_size(n: int, runs: int, sides: list[str]) -> dict[str, dict[str, list[float]]]:
    """{side: {task: [seconds per run]}}; runs alternate sides so both see the same machine."""
    env = f"lab-{n}"
    out: dict[str, dict[str, list[float]]] = {s: {} for s in sides}
    for k in range(runs):
        for side in sides:
            took = toolkit_cycle(n) if side == "toolkit" else ansible_side.cycle(n, inv, fresh_nodes)
            for task, secs in took.items():
                out[side].setdefault(task, []).append(secs)
            print(f"  {env} run {k + 1} {side}: " + ", ".join(f"{t} {v:.2f}s" for t, v in took.items()), flush=True)
    inv("lab.down", "--env", env, check=False)
    return out


def slope(meds: list[float], sizes: list[int]) -> float:
    return (meds[-1] - meds[0]) / (sizes[-1] - sizes[0]) if len(sizes) > 1 else 0.0


def comparison(results, sizes: list[int]) -> None:
    """One row per task: both sides' medians per size, the ratio, the cost per added node."""
    ns = " / ".join(map(str, sizes))
    print(f"\n| task | toolkit {ns} nodes (median s) | Ansible {ns} nodes (median s) | Ansible / toolkit "
          "| s per added node (toolkit / Ansible) |")
    print("|---|---|---|---|---|")
    for t in TASKS:
        tk = [statistics.median(results[n]["toolkit"][t]) for n in sizes]
        an = [statistics.median(results[n]["ansible"][t]) for n in sizes]
        ratio = " / ".join(f"{a / b:.1f}x" if b else "-" for a, b in zip(an, tk))
        print(f"| {t} | {' / '.join(f'{v:.2f}' for v in tk)} | {' / '.join(f'{v:.2f}' for v in an)} | {ratio} "
              f"| {slope(tk, sizes):.3f} / {slope(an, sizes):.3f} |")


def spread(results, sizes: list[int], side: str) -> None:
    """min / median / max of one side, per task and size (Ansible adds its input: the toolkit's render)."""
    tasks = TASKS + (["render"] if side == "ansible" else [])
    print(f"\n{side}:\n| task | " + " | ".join(f"{n} nodes (min / median / max)" for n in sizes)
          + " | s per added node |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for t in tasks:
        v = [results[n][side][t] for n in sizes]
        cells = [f"{min(x):.2f} / {statistics.median(x):.2f} / {max(x):.2f}" for x in v]
        label = "render --live (Ansible's input, not in its times)" if t == "render" else t
        print(f"| {label} | " + " | ".join(cells) + f" | {slope([statistics.median(x) for x in v], sizes):.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="3,10,30")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--side", choices=["toolkit", "ansible", "both"], default="both")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    if min(sizes) < 2:
        raise SystemExit("--sizes: at least 2 nodes (the change drains node2)")
    sides = ["toolkit", "ansible"] if a.side == "both" else [a.side]
    if "ansible" in sides:
        ansible_side.setup()
    # the plain lab and the generated ones share node names (node1...): one left up (by bench/cost.py,
    # a test run, an earlier sitting) would stop a size's lab.up
    for env in ["lab"] + [f"lab-{n}" for n in sizes]:
        inv("lab.down", "--env", env, check=False)
    results = {}
    for n in sizes:
        print(f"lab-{n}:", flush=True)
        results[n] = one_size(n, a.runs, sides)
    if len(sides) == 2:
        comparison(results, sizes)
    for side in sides:
        spread(results, sizes, side)


if __name__ == "__main__":
    main()
