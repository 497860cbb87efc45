"""track_interface with a weight on the lab (issue 26): a tracked link going down on the MASTER
lowers its priority below the next node's and the VIP moves there, within VRRP's own time; the
link coming back raises it again and the VIP comes home (preemption).

The lab's nodes have one interface (eth0: SSH and VRRP), so each node gets a veth pair of its
own (trk0, peer trk0p) for the instance to track: taking trk0 down cuts neither SSH nor the
adverts. A lab variant (lab-track) tracks it with weight -15: node1 100 -> 85, below node2 (90),
above node3 (80). The plain lab is deployed again, and trk0 removed, at the end.
"""
from __future__ import annotations

import time

import pytest

from fabfile.core.vrrp import effective_priority, master_down_interval

from .conftest import inv, inv_json, lab_variant, sh

VIP = "10.189.0.100"
TRACKED = "trk0"
WEIGHT = -15
SLACK = 2.0          # s: our polling (one SSH round trip per node) and keepalived's scheduling


def _track(data: dict) -> None:
    data["vrrp_instances"][0]["track_interface"] = [f"{TRACKED} weight {WEIGHT}"]


def holders(nodes) -> list[str]:
    """The nodes whose eth0 holds the VIP now (straight from `ip addr`: faster than a verify)."""
    return sorted(n for n, c in nodes.items()
                  if f" {VIP}/" in sh(c, "ip -o -4 addr show dev eth0").stdout)


def wait_holders(nodes, want: list[str], timeout: float) -> float:
    """Seconds until exactly `want` hold the VIP; fails after `timeout`."""
    t0 = time.monotonic()
    while (seen := holders(nodes)) != want:
        assert time.monotonic() - t0 < timeout, f"VIP {VIP} held by {seen}, not {want}, after {timeout:.1f} s"
        time.sleep(0.1)
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def tracking(deployed, nodes):
    for c in nodes.values():
        sh(c, f"ip link del {TRACKED} 2>/dev/null; ip link add {TRACKED} type veth peer name {TRACKED}p && "
              f"ip link set {TRACKED}p up && ip link set {TRACKED} up")
    try:
        with lab_variant("lab-track", _track) as env:
            inv("deploy", "--env", env, check=True)
            wait_holders(nodes, ["node1"], timeout=15)
            yield env
    finally:
        for c in nodes.values():
            sh(c, f"ip link del {TRACKED} 2>/dev/null; true")


def test_the_priorities_the_theory_expects():
    """node1 with trk0 down sits between node2 and node3: the VIP goes to node2, never node3."""
    assert effective_priority(100, WEIGHT) == 85
    assert 90 > effective_priority(100, WEIGHT) > 80


def test_tracked_link_down_moves_the_vip_and_back(tracking, nodes):
    code, st = inv_json("status", "--env", tracking)
    assert st["vip_holders"] == {VIP: ["node1"]}, st
    # node2 takes over at the latest when node1's adverts stop counting: node1 keeps advertising,
    # at 85 now, which node2 (90, preempting) discards, so its Master_Down_Interval runs out
    bound = master_down_interval(1, 90) + SLACK
    sh(nodes["node1"], f"ip link set {TRACKED} down")
    try:
        moved = wait_holders(nodes, ["node2"], timeout=bound)
        code, st = inv_json("status", "--env", tracking)
        assert st["vip_holders"] == {VIP: ["node2"]}, st
    finally:
        sh(nodes["node1"], f"ip link set {TRACKED} up")
    # node1 back at 100 preempts at its next advert: well within the same bound
    back = wait_holders(nodes, ["node1"], timeout=bound)
    print(f"track_interface {TRACKED} down on node1: VIP on node2 after {moved:.2f} s; "
          f"link up: back on node1 after {back:.2f} s (bound {bound:.2f} s)")
    code, report = inv_json("verify", "--env", tracking)
    assert code == 0 and report["ok"], [c for c in report["checks"] if not c["ok"]]
