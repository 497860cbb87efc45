"""Driving the toolkit through its real CLI, as an operator would: one place for every test tier."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
