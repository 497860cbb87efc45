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


def test_one_node_observed_is_its_checks_only(monkeypatch):
    """`inv status --node N`: the node alone, no VIP check (its holders need every node); an
    unreachable node is its one problem, with the reason."""
    env = lab_env(monkeypatch)
    hosts = {n.name: n.host for n in env.inv.nodes}
    st = summarize(env, {"node2": verify_state("node2", hosts["node2"], on_lo=(VIP,))})
    assert [r["node"] for r in view.rows(st)] == ["node2"] and {ch.node for ch in st.problems} <= {"node2"}
    assert not st.whole and summarize(env, {n.name: NodeState(n.name, reachable=False, error="x")
                                            for n in env.inv.nodes}).whole
    st = summarize(env, {"node3": NodeState("node3", reachable=False, error="node3: host key of node3 unknown")})
    assert [(ch.node, ch.name, ch.detail) for ch in st.problems] == [("node3", "reachable", "node3: host key of node3 unknown")]


def test_access_line_reads_the_inventory_ssh_fields():
    """`inv status --node N`'s first line: how lbtk reaches N (what a replaced node must accept)."""
    import fabfile.tasks  # noqa: F401 (the lab's hooks: lab-bastion has a lab: section)
    from fabfile.model.loading import load
    prod = view.access(load("prod.example")[0], "lb3")
    assert prod.startswith("lb3: SSH as deploy to lb3.shop.example:2222 via the bastion bastion.shop.example")
    assert "sudo without a password (NOPASSWD)" in prod and prod.endswith("checked against ~/.ssh/known_hosts")
    assert "sudo with the password from secrets/lab-bastion.sudo" in view.access(load("lab-bastion")[0], "lb3")
    lab = view.access(load("lab")[0], "node3")
    assert "SSH as root to 10.189.0.13" in lab and "no sudo" in lab and "/var/tmp/lbtk-lab/known_hosts" in lab
