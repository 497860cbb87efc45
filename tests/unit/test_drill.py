"""`inv failover-test` (graceful, crash, link-down) against a simulated cluster
(tests/unit/drill_sim.py, passed through the drill's seams): the steps each mode takes on the
nodes, the timings against VRRP theory, the JSON keys scripts read, and the one clean-up that
puts back what the drill failed on a failed step, an error or Ctrl-C.
"""
from __future__ import annotations

import pytest

from fabfile.infra.remote import RemoteError
from fabfile.model.loading import load
from fabfile.ops.drill import DrillError, drill

from .drill_sim import Interrupted, sim_rig

ONE_VIP_KEYS = {"ok", "mode", "vip", "from", "to", "others", "failover_s", "theory_s", "measured_from", "outage_s",
                "failed_probes", "errors", "preempt_back_s", "final_holders", "others_moved", "timeline", "probes"}


def lab():
    return load("lab")[0]


def test_graceful_stops_then_starts_keepalived_and_times_the_skew():
    rig, cl, said = sim_rig(lab())
    r = drill(lab(), "graceful", rig)
    assert r.ok, r
    assert cl.actions == [("fail", "node1", "graceful"), ("restore", "node1", "graceful")]
    assert (r.from_node, r.to) == ("node1", "node2")
    assert (r.move.failover_s, r.move.theory_s) == (0.648, 0.648)
    assert r.move.measured_from == "VIP left the master (its priority-0 advert)"
    assert r.comeback.preempt_back_s == pytest.approx(3.609, abs=0.001)   # node1's master_down_interval
    assert r.final_holders == ["node1"] and r.others_moved == []
    assert [what for _, what in r.events()] == [
        "graceful: failing node1 (`systemctl stop keepalived`)", "VIP left node1", "VIP on node2",
        "node1 restored", "VIP back on node1 (preempt)"]
    assert said == ["failing node1 (graceful)", "restoring node1"]
    assert set(r.as_json()) == ONE_VIP_KEYS


def test_crash_is_timed_from_the_last_advert_the_new_master_saw():
    rig, cl, _ = sim_rig(lab())
    r = drill(lab(), "crash", rig)
    assert r.ok, r
    assert cl.actions == [("fail", "node1", "crash"), ("restore", "node1", "crash")]
    assert r.move.measured_from == "node1's last advert seen by node2"
    assert (r.move.failover_s, r.move.theory_s) == (3.648, 3.648)       # 3 x advert_int + skew
    events = r.events()
    assert events[0][1] == "last advert from node1 received by node2" and events[0][0] < 0   # before the kill
    assert r.final_holders == ["node1"] and r.outage.failed_probes == 0   # the dead node's VIP still answers


def test_link_down_lets_the_node_bring_its_link_back_itself():
    rig, cl, said = sim_rig(lab())
    r = drill(lab(), "link-down", rig)
    assert r.ok, r
    assert cl.actions == [("fail", "node1", "link-down")]       # no restore: the node's own timer does it
    assert (r.to, r.move.failover_s, r.move.theory_s) == ("node2", 3.648, 3.648)
    assert r.final_holders == ["node1"] and r.comeback.preempt_back_s is not None
    assert said[1] == "waiting for node1's link to come back (scheduled at +14s)"
    assert r.events()[1][1].startswith("link-down: failing node1 (`ip link set eth0 down`)")
    assert set(r.as_json()) == ONE_VIP_KEYS


def test_a_vip_that_does_not_move_fails_and_the_node_is_restored():
    rig, cl, _ = sim_rig(lab(), stuck="node1")
    r = drill(lab(), "graceful", rig)
    assert not r.ok and r.error.startswith("VIP did not move off node1 within")
    assert cl.actions == [("fail", "node1", "graceful"), ("restore", "node1", "graceful")]
    assert "node1" in cl.running and not cl.polling and cl.probes[0].finished
    j = r.as_json()
    assert j["to"] is None and "failover_s" not in j and "preempt_back_s" not in j


@pytest.mark.parametrize("mode", ["graceful", "crash", "link-down"])
def test_ctrl_c_mid_drill_restores_the_failed_node_the_way_it_was_failed(mode):
    rig, cl, _ = sim_rig(lab(), ctrl_c_after_fail=0.3)     # while waiting for the VIP to move
    with pytest.raises(Interrupted):
        drill(lab(), mode, rig)
    assert cl.actions == [("fail", "node1", mode), ("restore", "node1", mode)]
    assert not cl.polling and cl.probes[0].finished


def test_a_fail_command_that_errs_is_still_undone():
    rig, cl, _ = sim_rig(lab(), fail_errs=True)
    with pytest.raises(RemoteError):
        drill(lab(), "crash", rig)
    assert cl.actions == [("fail", "node1", "crash"), ("restore", "node1", "crash")]


def test_an_unreachable_node_at_clean_up_does_not_hide_the_first_error():
    rig, cl, _ = sim_rig(lab(), stuck="node1", restore_fails=True)
    r = drill(lab(), "graceful", rig)
    assert r.error.startswith("VIP did not move off node1") and cl.actions[-1] == ("restore", "node1", "graceful")
    assert not cl.polling


def test_an_unhealthy_cluster_is_refused_before_anything_fails():
    rig, cl, _ = sim_rig(lab())
    cl.holding = {"node1", "node2"}
    with pytest.raises(DrillError, match="not healthy before the drill: 10.189.0.100 held by node1, node2"):
        drill(lab(), "graceful", rig)
    assert cl.actions == [] and not cl.polling
