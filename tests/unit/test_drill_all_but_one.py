"""`inv failover-test --mode all-but-one` against a simulated cluster (tests/unit/drill_sim.py,
passed to the drill through its seams, no monkeypatching): who is stopped at each step, the VIP
move per step, the final HTTP check, the restore order, the report and its JSON. The lab test
(tests/cluster/test_oncall.py) measures it for real.
"""
from __future__ import annotations

from fabfile.core.drill_result import DrillResult, Event, LastDirector, Move, Outage, Comeback, Step
from fabfile.model.loading import load
from fabfile.ops.drill import drill_all_but_one

from .drill_sim import sim_rig

VIP = "10.189.0.100"


def lab():
    return load("lab")[0]


def test_stops_each_holder_until_one_is_left_then_restores_master_first():
    rig, cl, said = sim_rig(lab(), interval=0.01)
    r = drill_all_but_one(lab(), rig)
    assert r.ok is True, r
    assert [(s.stopped, s.to) for s in r.steps] == [("node1", "node2"), ("node2", "node3")]
    assert [s.move.theory_s for s in r.steps] == [0.648, 0.688]        # skew of the node taking over
    assert [s.move.failover_s for s in r.steps] == [0.648, 0.688]      # the simulation runs on theory
    assert all(s.outage.probes > 0 and s.outage.outage_s is not None for s in r.steps)   # refused while no node holds it
    assert r.last == LastDirector("node3", True, ["node3"])
    assert cl.actions == [("fail", "node1", "graceful"), ("fail", "node2", "graceful"),
                          ("restore", "node1", "graceful"), ("restore", "node2", "graceful")]   # MASTER first
    assert r.final_holders == ["node1"] and r.comeback.preempt_back_s is not None
    assert any("step 2: stopping node2" in what for _, what in r.events())
    assert said[0] == "step 1: stopping keepalived on node1, the VIP holder"
    assert cl.probes[0].finished and not cl.polling


def test_json_keeps_the_keys_scripts_read():
    rig, _, _ = sim_rig(lab(), interval=0.01)
    j = drill_all_but_one(lab(), rig).as_json()
    assert set(j) == {"ok", "mode", "vip", "from", "to", "steps", "last_node", "http_ok", "http_answered_by",
                      "preempt_back_s", "final_holders", "timeline", "probes", "errors"}
    assert (j["last_node"], j["http_ok"], j["http_answered_by"]) == ("node3", True, ["node3"])
    assert set(j["steps"][0]) == {"step", "stopped", "from", "to", "failover_s", "theory_s", "measured_from",
                                  "outage_s", "failed_probes", "probes"}
    assert j["timeline"][0] == {"t": 0.0, "event": "step 1: stopping node1 (`systemctl stop keepalived`)"}


def test_a_step_that_does_not_move_starts_everything_again():
    rig, cl, _ = sim_rig(lab(), interval=0.01, stuck="node2")
    r = drill_all_but_one(lab(), rig)
    assert r.ok is False and r.error.startswith("step 2: VIP did not move off node2")
    assert cl.running == {"node1", "node2", "node3"}          # the clean-up put back what it stopped
    assert [s.as_json().keys() >= {"failover_s"} for s in r.steps] == [True, False]
    assert not cl.polling and cl.probes[0].finished


def test_view_draws_steps_and_summary(capsys):
    from fabfile.views import failover as view
    r = DrillResult("all-but-one", VIP, "node1", to="node3", ok=True,
                    steps=[Step(1, "node1", "node2", Move(0.66, 0.648, "x"), Outage(0.0, 0, 80)),
                           Step(2, "node2", "node3", Move(0.70, 0.688, "x"), Outage(0.04, 2, 81))],
                    last=LastDirector("node3", True, ["node3"]), comeback=Comeback(3.7), final_holders=["node1"],
                    probes=400, errors=["ConnectionRefusedError"],
                    timeline=[Event(5.0, "step 1: stopping node1 (`systemctl stop keepalived`)")])
    view.show(r, "plain")
    out = capsys.readouterr().out
    for text in ("failover timeline (all-but-one)", "all-but-one: one director stopped per step",
                 "node1 -> node2", "node2 -> node3", "0.688 s (skew)", "2 of 81", "HTTP through the VIP",
                 "answers", "restore: preempt back", "3.700 s"):
        assert text in out, text
