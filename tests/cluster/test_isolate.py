"""`inv isolate` on the real lab (issue 29): node2 out of VRRP, the VIP still served, a deploy that
leaves it out and says so, then `--undo` back to BACKUP. The pure parts: tests/unit/test_isolate.py."""
from __future__ import annotations

import time

from .conftest import inv, inv_json, sh

VIP = "10.189.0.100"


def test_isolate_keeps_node2_out_of_vrrp_until_undo(deployed, nodes, timings):
    t0 = time.monotonic()
    try:
        r = inv("isolate", "--env", "lab", "--node", "node2")
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert "node2: isolated: keepalived stopped and disabled" in r.stdout
        assert sh(nodes["node2"], "systemctl is-active keepalived; systemctl is-enabled keepalived").stdout.split() \
            == ["inactive", "disabled"]
        # the VIP stays served by another node; status labels node2, and is OK
        rc, st = inv_json("status", "--env", "lab")
        assert rc == 0 and st["vip_holders"] == {VIP: ["node1"]}, st
        assert {n["node"]: n["role"] for n in st["nodes"]}["node2"] == "ISOLATED"
        assert st["runtime"]["isolated"] == ["node2"]
        # a deploy ships files but leaves node2's keepalived stopped, and says so in one line
        r = inv("deploy", "--env", "lab")
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        said = [ln for ln in r.stdout.splitlines() if ln.startswith("node2: isolated")]
        assert len(said) == 1 and "keepalived left stopped" in said[0], r.stdout
        assert sh(nodes["node2"], "systemctl is-active keepalived").stdout.strip() == "inactive"
        # the last node that could hold the VIP is refused: node1 and node3 cannot both go
        r = inv("isolate", "--env", "lab", "--node", "node3", "--check")
        assert r.returncode == 0 and "disable --now keepalived" in r.stdout
        assert sh(nodes["node3"], "systemctl is-active keepalived").stdout.strip() == "active"   # --check
    finally:
        r = inv("isolate", "--env", "lab", "--node", "node2", "--undo")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "node2 is back in VRRP after" in r.stdout and "BACKUP" in r.stdout
    assert sh(nodes["node2"], "systemctl is-active keepalived").stdout.strip() == "active"
    rc, st = inv_json("status", "--env", "lab")
    assert rc == 0 and st["runtime"]["isolated"] == [] and st["vip_holders"] == {VIP: ["node1"]}
    timings.append(("isolate node2, deploy, undo", time.monotonic() - t0))
