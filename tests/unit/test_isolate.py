"""`inv isolate`, the pure parts: the record (runtime.json's `isolated`), what a deploy plans for an
isolated node (its files, never a keepalived start or reload), the refusals, and how verify, status
and the undo's wait read it. The lab test: tests/cluster/test_isolate.py."""
from __future__ import annotations

import pytest

from fabfile.core import runtime
from fabfile.core.checks import ISOLATED, keepalived_check, node_checks, vip_checks
from fabfile.core.vrrp import settled_states
from fabfile.infra import facts as F
from fabfile.infra.facts import NodeState
from fabfile.ops.deploy import NodeRun, plan_node, planned_moves
from fabfile.ops.isolate import not_settled
from fabfile.parsers.keepalived_json import VrrpView
from fabfile.parsers.lbtk_state import RuntimeRecord, parse_runtime

from .core_fixtures import deploy_state, lab_env

pytestmark = pytest.mark.unit

REC = RuntimeRecord(4, (), "a@x", "2026-12-08T01:00:00+00:00", ("node2",))


# ------------------------------------------------------------------ the record
def test_isolate_and_undo_make_the_next_serial_and_nothing_when_nothing_changes():
    r1 = runtime.isolated(runtime.NONE, "node2", True, "a@x")
    assert (r1.serial, r1.isolated, r1.by) == (1, ("node2",), "a@x") and r1.at
    assert runtime.isolated(r1, "node2", True, "b@y") is r1
    r2 = runtime.drained(r1, "10.189.0.13", True, "b@y")          # a drain keeps the isolation
    assert r2.isolated == ("node2",) and r2.drained == ("10.189.0.13",)
    r3 = runtime.isolated(r2, "node2", False, "c@z")
    assert (r3.serial, r3.isolated, r3.drained) == (3, (), ("10.189.0.13",))


def test_the_record_round_trips_and_keeps_its_old_bytes_without_isolation():
    assert parse_runtime(runtime.content(REC)) == REC
    plain = RuntimeRecord(2, ("10.0.0.2",), "a@x", "t")
    assert "isolated" not in runtime.content(plain)              # a cluster never isolated: same file as before
    assert parse_runtime(runtime.content(plain)).isolated == ()
    assert runtime.isolated_nodes({"node1": NodeState("node1", runtime=REC)}) == {"node2"}


# ------------------------------------------------------------------ what a deploy plans
def test_a_deploy_stops_an_isolated_nodes_keepalived_and_never_starts_or_reloads_it(monkeypatch):
    env = lab_env(monkeypatch)
    eff = runtime.effective(env, REC)
    p = plan_node(eff, "node2", deploy_state(env, "node2"), ["lvs", "keepalived"])
    assert [(a.verb, a.unit) for a in p.actions] == [("disable-now", "keepalived")]
    assert any(ch.file.path == F.RUNTIME_PATH for ch in p.changes)       # the record still ships
    assert len(p.notes) == 1 and "isolated" in p.notes[0] and "--undo" in p.notes[0]
    # stopped and disabled already, keepalived.conf changed: shipped, not reloaded, not started
    stopped = deploy_state(env, "node2", active={"keepalived": "inactive"}, enabled={"keepalived": "disabled"},
                           runtime=runtime.content(REC))
    data = env.inv.model_dump(exclude_none=True)
    data["vrrp_instances"][0]["advert_int"] = 2
    changed = runtime.effective(lab_env(monkeypatch, data=data), REC)
    p = plan_node(changed, "node2", stopped, ["keepalived"])
    assert "/etc/keepalived/keepalived.conf" in [ch.file.path for ch in p.changes] and p.actions == []
    # another node is untouched by node2's isolation
    other = plan_node(eff, "node1", deploy_state(env, "node1", runtime=runtime.content(REC)), ["keepalived"])
    assert other.actions == [] and other.notes == []
    # a phase without keepalived (nginx) says nothing about it
    assert not plan_node(eff, "node2", deploy_state(env, "node2"), ["nginx"]).notes


def test_the_undo_starts_and_enables_keepalived_again(monkeypatch):
    env = lab_env(monkeypatch)
    back = runtime.effective(env, runtime.isolated(REC, "node2", False, "a@x"))
    st = deploy_state(env, "node2", active={"keepalived": "inactive"}, enabled={"keepalived": "disabled"},
                      runtime=runtime.content(REC))
    p = plan_node(back, "node2", st, ["keepalived"])
    assert [(a.verb, a.unit) for a in p.actions] == [("enable-now", "keepalived")] and not p.notes


def test_no_vip_move_is_planned_towards_an_isolated_owner(monkeypatch):
    env = lab_env(monkeypatch)
    vip = env.inv.vrrp_instances[0].virtual_ipaddress[0]
    states = {n: deploy_state(env, n, on_iface=(vip,) if n == "node2" else ()) for n in ("node1", "node2", "node3")}
    runs = [NodeRun(n, s, plan_node(env, n, s, ["keepalived"])) for n, s in states.items()]
    assert [m.owner for m in planned_moves(env, runs)] == ["node1"]      # node2 holds it, node1 owns it
    iso = runtime.effective(env, RuntimeRecord(1, (), "a@x", "t", ("node1",)))
    assert planned_moves(iso, runs) == []


# ------------------------------------------------------------------ refusals
def _up(name, keepalived="active", reachable=True):
    return NodeState(name, reachable=reachable, error="" if reachable else "no route",
                     active={"keepalived": keepalived})


def test_the_last_node_that_could_hold_a_vip_is_refused(monkeypatch):
    inv = lab_env(monkeypatch).inv
    ok = {n: _up(n) for n in ("node1", "node2", "node3")}
    assert runtime.isolate_refusal(inv, "node2", runtime.NONE, ok) is None
    rec = RuntimeRecord(1, (), "a@x", "t", ("node1",))
    states = {**ok, "node3": _up("node3", "inactive")}
    why = runtime.isolate_refusal(inv, "node2", rec, states)
    assert why.startswith("node2 is the last node that could hold a VIP (node1: isolated; node3: keepalived inactive)")
    assert "nothing was changed" in why and "\n" not in why
    states = {**ok, "node3": _up("node3", reachable=False)}
    assert "node3: unreachable" in runtime.isolate_refusal(inv, "node2", rec, states)
    assert runtime.isolate_refusal(inv, "node9", runtime.NONE, ok).startswith("--node node9: not a node")


# ------------------------------------------------------------------ verify, status, the undo's wait
def test_verify_labels_an_isolated_node_as_expected_not_as_a_failure(monkeypatch):
    ch = keepalived_check("node2", "inactive", isolated=True)
    assert ch.ok and ch.detail.startswith(f"{ISOLATED}: inactive")
    assert not keepalived_check("node2", "active", isolated=True).ok          # started by hand: a problem
    assert not keepalived_check("node2", "inactive", isolated=False).ok
    inv = lab_env(monkeypatch).inv
    st = NodeState("node2", active={"keepalived": "inactive", "nginx": "active"}, interfaces=[])
    got = {c.name: c for c in node_checks(inv, "node2", st, isolated=frozenset({"node2"}))}
    assert got["keepalived running"].ok
    vip = inv.vrrp_instances[0].virtual_ipaddress[0]
    from fabfile.parsers.ip_addr import parse_ip_addr
    from .core_fixtures import addrs_json
    obs = {n: NodeState(n, interfaces=parse_ip_addr(addrs_json(inv.node(n).host, (vip,) if n == "node2" else ())))
           for n in ("node1", "node2", "node3")}
    (row,) = vip_checks(inv, obs, frozenset({"node1"}))
    assert row.ok and row.detail == "held by node2 (inventory prefers node1, isolated)"


def test_status_shows_the_isolated_node_and_the_record(monkeypatch, capsys):
    from fabfile.ops.status import summarize
    from fabfile.views import status as view
    env = lab_env(monkeypatch)
    obs = {n: NodeState(n, interfaces=[], active={"keepalived": "inactive" if n == "node2" else "active",
                                                   "nginx": "active"}, runtime=REC)
           for n in ("node1", "node2", "node3")}
    st = summarize(env, obs)
    assert not any(ch.node == "node2" and ch.subject == "keepalived" for ch in st.problems)
    roles = {r["node"]: r["role"] for r in view.rows(st)}
    assert roles["node2"] == ISOLATED
    assert view.as_json(st)["runtime"]["isolated"] == ["node2"]
    view.say_after(st)
    assert "isolated: node2" in capsys.readouterr().out


def _view(instance, state):
    return VrrpView(instance, state, 100, 100, 51, "host0", 0, 0, 0, 0, 0, 0, 0, 0, 0)


def test_the_undo_waits_for_the_state_the_inventory_expects(monkeypatch):
    inv = lab_env(monkeypatch).inv
    name = inv.vrrp_instances[0].name
    assert settled_states(inv, "node1") == {name: {"MASTER"}}
    assert settled_states(inv, "node2") == {name: {"BACKUP"}}
    want = settled_states(inv, "node2")
    assert not_settled(want, [_view(name, "BACKUP")]) == []
    assert not_settled(want, [_view(name, "INIT")]) == [f"{name} INIT (want BACKUP)"]
    assert not_settled(want, None) == ["keepalived not running"]


def test_an_unknown_node_is_one_line_and_exit_2_before_any_connection():
    from tests.cli import run_inv
    r = run_inv(["isolate", "--env", "lab", "--node", "node9"])
    assert r.returncode == 2
    assert r.stderr.strip() == "error: --node node9: no such node — choose from node1, node2, node3"
