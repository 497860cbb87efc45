"""Issue 4 acceptance against the real lab: failover drills, sync tasks, on-call tasks."""
from __future__ import annotations

import pytest

from .conftest import inv, inv_json, sh

VIP = "10.189.0.100"


@pytest.mark.parametrize("mode", ["graceful", "crash"])
def test_failover_drill_moves_vip_and_back_within_theory(deployed, mode):
    rc, r = inv_json("failover-test", "--env", "lab", "--mode", mode)
    assert rc == 0, r
    assert r["ok"] is True and r["mode"] == mode
    assert (r["from"], r["to"]) == ("node1", "node2")
    assert abs(r["failover_s"] - r["theory_s"]) <= 0.5, r
    assert r["theory_s"] == pytest.approx(0.648 if mode == "graceful" else 3.648, abs=0.001)
    assert r["preempt_back_s"] is not None and r["final_holders"] == ["node1"]
    assert r["outage_s"] is not None and r["probes"] > 100
    rc, report = inv_json("verify", "--env", "lab")
    assert rc == 0 and report["vip_holders"] == {VIP: ["node1"]}


def test_link_down_drill_moves_the_vip_and_restores_the_cluster(deployed, nodes):
    """node1's eth0 goes down (a timer on the node, 0.5 s after the command) and comes back by
    itself ~14 s later: the VIP moves to node2 after master_down_interval, and back by preemption."""
    rc, r = inv_json("failover-test", "--env", "lab", "--mode", "link-down")
    assert rc == 0, r
    assert r["ok"] is True and r["mode"] == "link-down"
    assert (r["from"], r["to"]) == ("node1", "node2")
    assert r["theory_s"] == pytest.approx(3.648, abs=0.001)         # 3 x advert_int + skew, as a crash
    assert abs(r["failover_s"] - r["theory_s"]) <= 0.5, r
    events = [e["event"] for e in r["timeline"]]
    assert "VIP on node2" in events and "node1 restored" in events and "VIP back on node1 (preempt)" in events
    assert r["preempt_back_s"] is not None and r["final_holders"] == ["node1"]
    # restored: the link is up again and the drill's timers are gone
    assert sh(nodes["node1"], "cat /sys/class/net/eth0/operstate").stdout.strip() == "up"
    timers = sh(nodes["node1"], "systemctl is-active lbtk-link-up.timer lbtk-link-down.timer").stdout.split()
    assert timers == ["inactive", "inactive"], timers
    rc, report = inv_json("verify", "--env", "lab")
    assert rc == 0 and report["vip_holders"] == {VIP: ["node1"]}


def test_failover_drill_table_output(deployed):
    r = inv("failover-test", "--env", "lab", "--mode", "graceful", check=True)
    for text in ("failover timeline (graceful)", "VIP left node1", "VIP on node2",
                 "VIP back on node1 (preempt)", "failover summary", "skew (priority-0 advert)"):
        assert text in r.stdout


def test_failover_refuses_unknown_mode(lab):
    r = inv("failover-test", "--env", "lab", "--mode", "meteor")
    assert r.returncode == 2 and r.stderr.strip() == "error: --mode must be one of graceful, crash, link-down, all-but-one"


def test_sync_status_table_for_three_nodes(deployed):
    r = inv("sync-status", "--env", "lab", check=True)
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("node")]
    assert [ln.split()[0] for ln in rows] == ["node", "node1", "node2", "node3"]
    assert r.stdout.count("kernel has no IPVS") == 3
    for t in ("sync-start", "sync-stop"):
        r = inv(t, "--env", "lab", check=True)
        assert r.stdout.count("kernel has no IPVS") >= 3


def test_status_summary(deployed):
    r = inv("status", "--env", "lab", check=True)
    assert "MASTER of 10.189.0.100" in r.stdout and "status: OK" in r.stdout


def test_drain_sets_weight_zero_and_undrain_restores(deployed, nodes):
    conf = "/etc/keepalived/keepalived.conf"
    grep = f"grep -A1 'real_server 10.189.0.13' {conf}"
    try:
        inv("drain", "--env", "lab", "--server", "node3", check=True)
        assert "weight 0" in sh(nodes["node1"], grep).stdout
        again = inv("drain", "--env", "lab", "--server", "10.189.0.13", check=True)
        assert "already drained" in again.stdout
    finally:
        inv("undrain", "--env", "lab", "--server", "node3", check=True)
    assert "weight 1" in sh(nodes["node1"], grep).stdout
    bad = inv("drain", "--env", "lab", "--server", "10.189.0.99")
    assert bad.returncode == 2 and "not a real server of lab.yaml" in bad.stderr


def test_logs_show_state_transitions(deployed):
    r = inv("logs", "--env", "lab", "--node", "node1", check=True)
    assert "Entering MASTER STATE" in r.stdout
    assert "--- node1: last" in r.stdout


def test_all_but_one_drill_serves_from_the_last_director_and_restores(deployed):
    """The seed's final test: stop two of three directors (the VIP holder each time) and it still
    serves; each VIP move within 0.5 s of VRRP theory (the priority-0 advert: the skew)."""
    rc, r = inv_json("failover-test", "--env", "lab", "--mode", "all-but-one")
    assert rc == 0, r
    assert r["ok"] is True and r["mode"] == "all-but-one"
    assert [(s["stopped"], s["to"]) for s in r["steps"]] == [("node1", "node2"), ("node2", "node3")]
    assert [s["theory_s"] for s in r["steps"]] == pytest.approx([0.648, 0.688], abs=0.001)
    for s in r["steps"]:
        assert abs(s["failover_s"] - s["theory_s"]) <= 0.5, s
        assert s["probes"] > 30 and (s["outage_s"] is not None or s["failed_probes"] == 0), s
    assert (r["last_node"], r["http_ok"], r["http_answered_by"]) == ("node3", True, ["node3"])
    assert r["preempt_back_s"] is not None and r["final_holders"] == ["node1"]
    rc, report = inv_json("verify", "--env", "lab")
    assert rc == 0 and report["vip_holders"] == {VIP: ["node1"]}


def test_all_but_one_drill_table_output(deployed):
    r = inv("failover-test", "--env", "lab", "--mode", "all-but-one", check=True)
    for text in ("failover timeline (all-but-one)", "step 1: stopping node1", "step 2: stopping node2",
                 "all-but-one: one director stopped per step", "node1 -> node2", "node2 -> node3",
                 "HTTP through the VIP", "answers", "VIP back on node1 (preempt)"):
        assert text in r.stdout, text
