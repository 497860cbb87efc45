"""What the lab and kernel tiers' monitoring tests ask the lab's Prometheus and Alertmanager (over
the loopback, never through a proxy), and how they wait for an alert."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest


def api(base: str, path: str):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(base + path, timeout=3) as r:
        return json.load(r)


def alerts(base: str, name: str, state: str | None = "firing") -> list[dict]:
    """Prometheus's alerts of one name, in one state (None: pending or firing)."""
    return [a for a in api(base, "/api/v1/alerts")["data"]["alerts"]
            if a["labels"]["alertname"] == name and (state is None or a["state"] == state)]


def firing(base: str) -> list[str]:
    return [f"{a['labels']['alertname']} {a['labels'].get('node', '')}".strip()
            for a in api(base, "/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"]


def targets_up(base: str) -> bool:
    return all(t["health"] == "up" for t in api(base, "/api/v1/targets")["data"]["activeTargets"])


def wait(cond, timeout: float, what, every: float = 0.1) -> float:
    """Seconds until cond() held (polled every `every` s); fails after `timeout`, saying `what`
    (a callable: what it says then)."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"{what() if callable(what) else what}: not within {timeout:.0f} s")
        time.sleep(every)
    return time.monotonic() - t0
