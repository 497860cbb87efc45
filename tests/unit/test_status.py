"""`inv status`'s summary (fabfile/ops/status.py, pure) and its rows (fabfile/views/status.py)."""
from __future__ import annotations

from fabfile.infra.facts import NodeState
from fabfile.ops.status import summarize
from fabfile.views import status as view

from .core_fixtures import lab_env, verify_state

VIP = "10.189.0.100"


def test_rows_name_the_vip_holder_and_the_unreachable(monkeypatch):
    env = lab_env(monkeypatch)
    hosts = {n.name: n.host for n in env.inv.nodes}
    obs = {"node1": verify_state("node1", hosts["node1"], on_iface=(VIP,), on_lo=()),
           "node2": verify_state("node2", hosts["node2"], on_lo=(VIP,)),
           "node3": NodeState("node3", reachable=False, error="node3: unreachable")}
    st = summarize(env, obs)
    assert st.holders == {VIP: ["node1"]} and not st.ok and not st.locks
    rows = {r["node"]: r for r in view.rows(st)}
    assert rows["node1"]["role"] == f"MASTER of {VIP}" and rows["node2"]["role"] == "BACKUP"
    assert rows["node3"]["role"] == "UNREACHABLE" and rows["node3"]["ipvs"] == "-" and rows["node3"]["problems"] >= 1
    got = view.as_json(st)
    assert got["ok"] is False and got["runtime"]["drained"] == [] and [r["node"] for r in got["nodes"]] == list(obs)
    assert all(ch.name != "sync daemon" for ch in st.problems)   # sync-status's, not status's
