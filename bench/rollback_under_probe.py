#!/usr/bin/env python3
"""Roll back advert-visible changes while an HTTP probe hits the VIP every 10 ms and a sampler reads
every node's addresses every 50 ms; print probes, failed probes, the most VIP holders seen at once
and the longest window with two or more (issue 24: rollback rolled node by node, split brain).

Scenarios, each measured over both of its steps:
  1. `inv rotate-vrrp-secret`, then `inv rollback` (the old secret back on the nodes; afterwards
     `rotate-vrrp-secret --previous` puts it back in the secret file too: nothing left to deploy)
  2. a virtual_router_id change (a temporary copy of the inventory) deployed, then `inv rollback`
Goal: 0 failed probes, never more than one holder. Runs against the lab (`inv lab.up`, `inv deploy
--env ENV` first). The sampler is also what tests/cluster/test_rollback_safety.py uses.
Usage: .venv/bin/python bench/rollback_under_probe.py [--env lab-30]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fabfile.lab.hooks  # noqa: E402,F401 (the lab's inventory section, fabfile.model.extensions)
from fabfile.core.vrrp import expected_holders  # noqa: E402
from fabfile.model import extensions  # noqa: E402
from fabfile.model.loading import inventory_dir, load  # noqa: E402
from fabfile.ops.drill import Probe  # noqa: E402
from fabfile.parsers import ParseError  # noqa: E402
from fabfile.parsers.ip_addr import parse_ip_addr  # noqa: E402


@dataclass
class HolderSampler:
    """Every `interval` s, one round: `ip -j addr` in every node's namespace (lbtk-NODE, fabfile/lab/
    nspawn.py) at once; records (t, nodes holding `vip` on an interface other than lo)."""
    vip: str
    nodes: list[str]
    interval: float = 0.05
    rounds: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _holds(self, text: str) -> bool:
        try:
            return any(i.name != "lo" and i.has(self.vip) for i in parse_ip_addr(text))
        except ParseError:
            return False

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.monotonic()
            procs = {n: subprocess.Popen(["ip", "netns", "exec", f"lbtk-{n}", "ip", "-j", "addr"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                     for n in self.nodes}
            held = tuple(n for n, p in procs.items() if self._holds(p.communicate(timeout=10)[0]))
            self.rounds.append((t, held))
            time.sleep(max(0.0, t + self.interval - time.monotonic()))

    def most(self) -> int:
        return max((len(h) for _, h in self.rounds), default=0)

    def longest_split(self) -> float:
        """Seconds of the longest run of consecutive rounds with two or more holders (one round
        alone counts as one interval)."""
        best, start, last = 0.0, None, None
        for t, held in self.rounds:
            if len(held) >= 2:
                start = t if start is None else start
                last = t
                best = max(best, last - start + self.interval)
            else:
                start = None
        return best


@dataclass
class Measured:
    label: str
    seconds: float
    probes: int
    failed: int
    most_holders: int
    longest_split_s: float

    def line(self) -> str:
        return (f"{self.label:<40} {self.seconds:6.2f} s   probes {self.probes:5d}   failed {self.failed:3d}   "
                f"max holders {self.most_holders}   longest two-holder window {self.longest_split_s * 1000:.0f} ms")


def measured(env: str, label: str, steps) -> Measured:
    """Probe and sample while `steps()` runs (0.5 s before and after)."""
    inventory, _ = load(env)
    vip = next(iter(expected_holders(inventory)))
    names = [n.name for n in inventory.nodes]
    probe = Probe(vip, inventory.nginx.port, 0.010, names).start()
    sampler = HolderSampler(vip, names)
    st = threading.Thread(target=sampler.run, daemon=True)
    st.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    try:
        steps()
    finally:
        secs = time.monotonic() - t0
        time.sleep(0.5)
        probe.finish()
        sampler.stop.set()
        st.join(timeout=15)
    failed = sum(1 for r in probe.results if not r[1])
    return Measured(label, secs, len(probe.results), failed, sampler.most(), sampler.longest_split())


def inv(*args, where: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=where, capture_output=True, text=True,
                       env={**os.environ, "LBTK_FORMAT": "plain", **(env or {})})
    if r.returncode != 0:
        raise SystemExit(f"inv {' '.join(args)} failed (exit {r.returncode}): {r.stderr.strip()[-500:]}")
    return r


def inventory_data(env: str) -> dict:
    """The inventory's data: its file, or what a generated lab (`lab-30`) is made from."""
    import yaml
    path = inventory_dir() / f"{env}.yaml"
    if path.exists():
        return yaml.safe_load(path.read_text())
    made = extensions.generated(env, inventory_dir())
    if made is None:
        raise SystemExit(f"--env {env}: no inventories/{env}.yaml and not a generated lab")
    return made[0]


def rotate_then_rollback(env: str) -> Measured:
    m = measured(env, "rotate secret, then rollback", lambda: (inv("rotate-vrrp-secret", "--env", env),
                                                                inv("rollback", "--env", env)))
    inv("rotate-vrrp-secret", "--env", env, "--previous")   # the file back on the secret the nodes run
    return m


def vrid_then_rollback(env: str) -> Measured:
    import yaml
    data = inventory_data(env)
    for vi in data["vrrp_instances"]:
        vi["virtual_router_id"] += 1
    name = f"{env}-bench-vrid"
    tmp = inventory_dir() / f"{name}.yaml"          # the same nodes, another virtual_router_id
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        return measured(env, "virtual_router_id change, then rollback",
                        lambda: (inv("keepalived", "--env", name), inv("rollback", "--env", name)))
    finally:
        tmp.unlink()
        (inventory_dir() / ".state" / f"{name}.owed.yaml").unlink(missing_ok=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", default="lab")
    ENV = ap.parse_args().env
    print(f"rollbacks of advert-visible changes while probing the VIP every 10 ms, sampling holders every "
          f"50 ms ({ENV})", flush=True)
    rows = []
    for scenario in (rotate_then_rollback, vrid_then_rollback):
        rows.append(scenario(ENV))
        print(rows[-1].line(), flush=True)
    inv("deploy", "--env", ENV)     # nothing left to do, or the lab's own files again
    bad = [r for r in rows if r.failed or r.most_holders > 1]
    print(f"total failed probes: {sum(r.failed for r in rows)}; max holders at once: "
          f"{max(r.most_holders for r in rows)} (goal 0 and 1)")
    sys.exit(1 if bad else 0)
