#!/usr/bin/env python3
"""Deploy changes while an HTTP probe hits the VIP every 10 ms; print failed probes and times.

Goal: zero failed probes (rolling reload, backups first, MASTER last). Runs against the lab
(`inv lab.up deploy` first). Changes, each deployed and then reverted:
  1. a real server weight (inv drain / undrain: weight 0 and back)
  2. a new VIP on the VRRP instance (10.189.0.101), through a temporary copy of the inventory
Usage: .venv/bin/python bench/deploy_under_probe.py [--env lab]   (or a generated lab-N: --env lab-30)
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fabfile.ops.drill import Probe  # noqa: E402
import fabfile.lab.hooks  # noqa: E402,F401 (the lab's inventory section, fabfile.model.extensions)
from fabfile.model.loading import inventory_dir, load  # noqa: E402
from rollback_under_probe import inventory_data  # noqa: E402 (its file, or a generated lab-N's data)


def inv(*args) -> float:
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                       env={"LBTK_FORMAT": "plain", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    if r.returncode != 0:
        raise SystemExit(f"inv {' '.join(args)} failed: {r.stderr.strip()}")
    return time.monotonic() - t


def probed(label: str, fn) -> dict:
    inventory, _ = load(ENV)
    vip = next(iter(__import__("fabfile.core.vrrp", fromlist=["x"]).expected_holders(inventory)))
    probe = Probe(vip, inventory.nginx.port, 0.010, [n.name for n in inventory.nodes])
    t = threading.Thread(target=probe.run, daemon=True)
    t.start()
    time.sleep(0.5)
    secs = fn()
    time.sleep(0.5)
    probe.stop.set()
    t.join()
    failed = sum(1 for r in probe.results if not r[1])
    row = dict(change=label, deploy_s=round(secs, 2), probes=len(probe.results), failed=failed)
    print(f"{label:<34} deploy {secs:6.2f} s   probes {len(probe.results):5d}   failed {failed}", flush=True)
    return row


def with_new_vip() -> float:
    data = inventory_data(ENV)
    data["vrrp_instances"][0]["virtual_ipaddress"].append("10.189.0.101")
    tmp = inventory_dir() / f"{ENV}-bench-vip.yaml"   # same nodes, one more VIP
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        return inv("keepalived", "--env", str(tmp))
    finally:
        tmp.unlink()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", default="lab")
    ENV = ap.parse_args().env
    print(f"deploys while probing the VIP every 10 ms ({ENV})")
    rows = [probed("weight change (drain node3)", lambda: inv("drain", "--env", ENV, "--server", "node3")),
            probed("weight back (undrain node3)", lambda: inv("undrain", "--env", ENV, "--server", "node3")),
            probed("new VIP 10.189.0.101", with_new_vip),
            probed("VIP removed again", lambda: inv("keepalived", "--env", ENV))]
    total = sum(r["failed"] for r in rows)
    print(f"total failed probes: {total} (goal 0)")
    sys.exit(0 if total == 0 else 1)
