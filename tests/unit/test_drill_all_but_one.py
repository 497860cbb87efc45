"""`inv failover-test --mode all-but-one` against a simulated cluster: the drill's own logic
(who is stopped at each step, the VIP move per step, the final HTTP check, the restore order and
the report) without a lab. The lab test (tests/cluster/test_oncall.py) measures it for real.

The simulation: the VIP is on the running director with the highest priority; each node's
address poller is fed that node's `ip -j addr` (a captured fixture, see core_fixtures.addrs_json)
every 10 ms; `systemctl stop/start keepalived` change who runs.
"""
from __future__ import annotations

import threading
import time

import pytest

from fabfile.ops import drill as failover
from fabfile.ops.drill import Probe, drill_all_but_one

from .core_fixtures import addrs_json, lab_env

VIP = "10.189.0.100"


class Cluster:
    def __init__(self, inv, stuck: str | None = None):
        self.inv = inv
        self.running = {n.name for n in inv.nodes}
        self.prio = {n.name: n.priority for n in inv.nodes}
        self.host = {n.name: n.host for n in inv.nodes}
        self.commands: list[tuple[str, str]] = []
        self.stuck = stuck            # a node whose stop leaves the VIP nowhere (no backup takes over)
        self.lock = threading.Lock()

    def holder(self) -> str | None:
        with self.lock:
            if self.stuck and self.stuck not in self.running:
                return None
            up = [n for n in self.running]
            return max(up, key=lambda n: self.prio[n]) if up else None

    # the fakes of fabfile.infra.remote the drill calls
    def run(self, c, cmd, check=True, timeout=None):
        self.commands.append((c, cmd))
        with self.lock:
            if cmd == failover.STOP:
                self.running.discard(c)
            elif "systemctl start keepalived" in cmd:
                self.running.add(c)

    def stream(self, c, cmd, on_line, stop):
        while not stop.is_set():
            h = self.holder()
            on_line(addrs_json(self.host[c], on_iface=(VIP,) if h == c else ()))
            time.sleep(0.01)


class FakeProbe(Probe):
    """Answers whenever some node holds the VIP, like nginx on the holder does."""
    cluster: Cluster = None

    def run(self):
        while not self.stop.is_set():
            h = self.cluster.holder()
            self.results.append((time.monotonic(), h is not None, h or "ConnectionRefusedError"))
            time.sleep(self.interval)


@pytest.fixture
def sim(monkeypatch):
    def make(stuck=None):
        env = lab_env(monkeypatch)
        cl = Cluster(env.inv, stuck)
        monkeypatch.setattr(failover.remote, "open_all", lambda conns: None)
        monkeypatch.setattr(failover.remote, "run", cl.run)
        monkeypatch.setattr(failover.remote, "stream", cl.stream)
        monkeypatch.setattr(failover, "Probe", FakeProbe)
        monkeypatch.setattr(FakeProbe, "cluster", cl)
        monkeypatch.setattr(failover.time, "sleep", lambda s: threading.Event().wait(min(s, 0.05)))
        return env, cl
    return make


def test_stops_each_holder_until_one_is_left_then_restores_master_first(sim):
    env, cl = sim()
    said = []
    r = drill_all_but_one(env.inv, {n: n for n in ("node1", "node2", "node3")}, 0.01, said.append)
    assert r["ok"] is True, r
    assert [(s["stopped"], s["from"], s["to"]) for s in r["steps"]] == [("node1", "node1", "node2"),
                                                                      ("node2", "node2", "node3")]
    assert [s["theory_s"] for s in r["steps"]] == [0.648, 0.688]        # skew of the node taking over
    assert all(s["failover_s"] is not None and s["probes"] > 0 and "t0" not in s for s in r["steps"])
    assert (r["last_node"], r["http_ok"], r["http_answered_by"]) == ("node3", True, ["node3"])
    stops = [c for c, cmd in cl.commands if cmd == failover.STOP]
    starts = [c for c, cmd in cl.commands if "systemctl start keepalived" in cmd]
    assert stops == ["node1", "node2"] and starts == ["node1", "node2"]   # the inventory's MASTER first
    assert r["final_holders"] == ["node1"] and r["preempt_back_s"] is not None
    assert any("step 2: stopping node2" in e["event"] for e in r["timeline"])
    assert said[0] == "step 1: stopping keepalived on node1, the VIP holder"


def test_a_step_that_does_not_move_starts_everything_again(sim, monkeypatch):
    env, cl = sim(stuck="node2")
    monkeypatch.setattr(failover, "master_down_interval", lambda *a: 0.01)   # wait 5 s, not 16
    r = drill_all_but_one(env.inv, {n: n for n in ("node1", "node2", "node3")}, 0.01, lambda s: None)
    assert r["ok"] is False and r["error"].startswith("step 2: VIP did not move off node2")
    assert cl.running == {"node1", "node2", "node3"}          # the finally put back what it stopped
    assert all("t0" not in s for s in r["steps"])


def test_view_draws_steps_and_summary(capsys, monkeypatch):
    from fabfile.views import failover as view
    monkeypatch.setenv("LBTK_FORMAT", "plain")
    r = {"ok": True, "mode": "all-but-one", "vip": VIP, "from": "node1", "to": "node3", "last_node": "node3",
         "steps": [{"step": 1, "stopped": "node1", "from": "node1", "to": "node2", "failover_s": 0.66,
                    "theory_s": 0.648, "outage_s": 0.0, "failed_probes": 0, "probes": 80},
                   {"step": 2, "stopped": "node2", "from": "node2", "to": "node3", "failover_s": 0.70,
                    "theory_s": 0.688, "outage_s": 0.04, "failed_probes": 2, "probes": 81}],
         "http_ok": True, "http_answered_by": ["node3"], "preempt_back_s": 3.7, "final_holders": ["node1"],
         "probes": 400, "errors": ["ConnectionRefusedError"],
         "timeline": [{"t": 0.0, "event": "step 1: stopping node1 (`systemctl stop keepalived`)"}]}
    view.show(r, "plain")
    out = capsys.readouterr().out
    for text in ("failover timeline (all-but-one)", "all-but-one: one director stopped per step",
                 "node1 -> node2", "node2 -> node3", "0.688 s (skew)", "2 of 81", "HTTP through the VIP",
                 "answers", "restore: preempt back", "3.700 s"):
        assert text in out, text
