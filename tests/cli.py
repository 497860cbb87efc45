"""Driving the toolkit through its real CLI, as an operator would: one place for every test tier."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shown(path: Path) -> str:
    """A path as `inv` (run from ROOT, as inv() runs it) prints it: relative to ROOT when inside
    it, else absolute (fabfile.model.context.rel): the session's inventories are a temporary copy."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def inv(*args, check=False, timeout=300):
    r = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=timeout, env={**os.environ, "LBTK_FORMAT": "plain"})
    if check and r.returncode != 0:
        raise AssertionError(f"inv {' '.join(args)} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    return r


def inv_json(*args, timeout=300):
    r = inv(*args, "--json", timeout=timeout)
    try:
        return r.returncode, json.loads(r.stdout)
    except ValueError:
        raise AssertionError(f"inv {' '.join(args)} --json printed no JSON (exit {r.returncode})\n"
                             f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}") from None
