"""The roll planner (fabfile.ops.deploy.roll_plan): a change goes to the nodes in an order sized by
what it risks. Reload-only and no VIP can move: one canary backup, the other backups at once, the VIP
holders, no VRRP settle. What adverts carry: every node at once. Anything that can move a VIP:
rolling, a settle after the holder. First deploy: the planned MASTERs first. `--batch N` overrides.

Node states are built from captured tool output (tests/unit/core_fixtures.py); desired files come
from the real renderer, so each case is the plan the toolkit would make on that cluster.
"""
from __future__ import annotations

import copy

import pytest

from fabfile.core import runtime
from fabfile.core.plan import RollKind, RollPlan, reload_only_refusal, vrrp_part
from fabfile.core.render import keepalived, nginx
from fabfile.ops.deploy import plan_runs, planned_moves, roll_plan, rolling_batches

from .core_fixtures import deploy_state, lab_data, lab_env, lab_env_of_size, live_files
from .test_core_plan import ALL, VIP, fresh, running

CANARY_REASON = "reload-only, no VIP can move"


def _changed(monkeypatch, edit, old=None):
    """(runs of the edited inventory's plans on a cluster running lab.yaml's files, node1 holding the
    VIP; the edited Env)."""
    old = old or lab_env(monkeypatch)
    data = lab_data()
    edit(data)
    new = lab_env(monkeypatch, data=data)
    return running(old, new, holder="node1"), new


def _rs(d, i=1):
    return d["virtual_servers"][0]["real_servers"][i]


def _paths(runs) -> set[str]:
    return {ch.file.path for r in runs for ch in r.plan.changes}


# ------------------------------------------------------------------ reload-only: the canary plan
@pytest.mark.parametrize("what, edit, files", [
    ("weight", lambda d: _rs(d).update(weight=5), {keepalived.CONF}),
    ("real server added", lambda d: d["virtual_servers"][0]["real_servers"].append(
        {"address": "10.189.0.50", "weight": 1, "TCP_CHECK": {"connect_timeout": 1}}), {keepalived.CONF}),
    ("checker timeout", lambda d: _rs(d, 0)["TCP_CHECK"][0].update(connect_timeout=3), {keepalived.CONF}),
    ("delay_loop", lambda d: d["virtual_servers"][0].update(delay_loop=5), {keepalived.CONF}),
    ("nginx page", lambda d: d["nginx"].update(page="<h1>{node}</h1>\n<p>new page</p>\n"), {nginx.PAGE}),
])
def test_a_reload_only_change_goes_to_one_canary_then_the_backups_then_the_holder(monkeypatch, what, edit, files):
    runs, new = _changed(monkeypatch, edit)
    assert _paths(runs) == files, what
    assert {a.verb for r in runs for a in r.plan.actions} <= {"reload", "nginx-test"}
    assert planned_moves(new, runs) == []
    plan = roll_plan(new, runs)
    assert plan == RollPlan(RollKind.CANARY, [["node3"], ["node2"], ["node1"]], [False, False, False],
                            CANARY_REASON, frozenset({"node1"}))
    assert plan.line() == f"roll: canary node3, then node2, then VIP holder node1 — {CANARY_REASON}"
    # rolling_batches (rollback's entry) gets the same batches, with the reason
    assert rolling_batches(new, runs) == (plan.batches, CANARY_REASON)


def test_a_real_server_removed_is_reload_only(monkeypatch):
    """An address real server (not a director: no VIP on its lo to take down) leaves the inventory."""
    extra = {"address": "10.189.0.50", "weight": 1, "TCP_CHECK": {"connect_timeout": 1}}
    data = lab_data()
    data["virtual_servers"][0]["real_servers"].append(extra)
    runs, new = _changed(monkeypatch, lambda d: None, old=lab_env(monkeypatch, data=data))
    assert _paths(runs) == {keepalived.CONF}
    assert roll_plan(new, runs).batches == [["node3"], ["node2"], ["node1"]]
    assert roll_plan(new, runs).kind is RollKind.CANARY


def test_a_drain_is_reload_only(monkeypatch):
    """inv drain: a new runtime record plus keepalived.conf with the real server's weight 0."""
    env = lab_env(monkeypatch)
    states = {n.name: deploy_state(env, n.name, on_iface=(VIP,) if n.name == "node1" else (), on_lo=(VIP,))
              for n in env.inv.nodes}
    drained = runtime.effective(env, runtime.drained(runtime.newest(states), "10.189.0.12", True, "test"))
    runs = plan_runs(drained, states, ["keepalived"])
    assert _paths(runs) == {keepalived.CONF, "/var/lib/lbtk/runtime.json"}
    assert [a.verb for r in runs for a in r.plan.actions] == ["reload"] * 3
    plan = roll_plan(drained, runs)
    assert plan.kind is RollKind.CANARY and plan.batches == [["node3"], ["node2"], ["node1"]]
    assert not any(plan.settle_after)


def test_at_30_nodes_the_canary_plan_is_three_batches(monkeypatch):
    """The point of it: a drain at 30 nodes is canary, 28 backups at once, the holder — three
    batches instead of thirty, and the line stays one short line."""
    env = lab_env_of_size(monkeypatch, 30)
    states = {n.name: deploy_state(env, n.name, on_iface=(VIP,) if n.name == "node1" else (), on_lo=(VIP,))
              for n in env.inv.nodes}
    drained = runtime.effective(env, runtime.drained(runtime.newest(states), "10.189.0.12", True, "test"))
    plan = roll_plan(drained, plan_runs(drained, states, ["keepalived"]))
    assert plan.kind is RollKind.CANARY
    assert [len(b) for b in plan.batches] == [1, 28, 1]
    assert plan.batches[0] == ["node30"] and plan.batches[2] == ["node1"]      # lowest priority first
    assert plan.line() == ("roll: canary node30, then node29+node28+node27+... (28 nodes), then VIP holder node1 "
                           f"— {CANARY_REASON}")


def test_the_canary_is_a_node_with_something_to_change(monkeypatch):
    """node3 already took the change (a rerun after a failure): the canary is node2, which has not."""
    old = lab_env(monkeypatch)
    runs, new = _changed(monkeypatch, lambda d: _rs(d).update(weight=5), old=old)
    states = {r.node: r.facts for r in runs}
    states["node3"] = deploy_state(new, "node3", on_lo=(VIP,))
    runs = plan_runs(new, states, ALL)
    assert [r.node for r in runs if r.plan.empty] == ["node3"]
    assert roll_plan(new, runs).batches == [["node2"], ["node3"], ["node1"]]


def test_an_unreachable_node_skipped_leaves_the_others_on_the_canary_plan(monkeypatch):
    """--skip-unreachable with node2 down: its run is not planned; node3 is the canary, then the holder."""
    runs, new = _changed(monkeypatch, lambda d: _rs(d).update(weight=5))
    live = [r for r in runs if r.node != "node2"]
    plan = roll_plan(new, live)
    assert plan.kind is RollKind.CANARY and plan.batches == [["node3"], ["node1"]]
    assert plan.line() == f"roll: canary node3, then VIP holder node1 — {CANARY_REASON}"
    # the holder itself unreachable: the backups only, canary first
    plan = roll_plan(new, [r for r in runs if r.node != "node1"])
    assert plan.batches == [["node3"], ["node2"]] and not set(plan.batches[-1]) & plan.holders


def test_two_vip_holders_go_together_in_the_last_batch(monkeypatch):
    """Multi-master: a reload-only change reaches both holders in one batch (no VIP can move)."""
    def second(d):
        vi = copy.deepcopy(d["vrrp_instances"][0])
        vi.update(name="VI_2", virtual_router_id=52, owner="node3", virtual_ipaddress=["10.189.0.105"])
        d["vrrp_instances"].append(vi)
    old = lab_env(monkeypatch, data=(lambda d: (second(d), d)[1])(lab_data()))
    data = lab_data()
    second(data)
    _rs(data).update(weight=5)
    new = lab_env(monkeypatch, data=data)
    states = {n.name: deploy_state(old, n.name, on_iface={"node1": (VIP,), "node3": ("10.189.0.105",)}.get(n.name, ()),
                                   on_lo=(VIP, "10.189.0.105")) for n in old.inv.nodes}
    plan = roll_plan(new, plan_runs(new, states, ALL))
    assert plan.kind is RollKind.CANARY and plan.batches == [["node2"], ["node3", "node1"]]
    assert plan.line() == f"roll: canary node2, then VIP holder node3+node1 — {CANARY_REASON}"


# ------------------------------------------------------------------ what can move a VIP: rolling
def test_a_priority_change_rolls_and_settles_after_the_holder(monkeypatch):
    runs, new = _changed(monkeypatch, lambda d: d["nodes"][1].update(priority=110))
    plan = roll_plan(new, runs)
    assert plan.kind is RollKind.ROLLING
    assert plan.batches == [["node3"], ["node2"], ["node1"]] and plan.settle_after == [False, False, True]
    assert plan.reason == "a VIP can move (VIP 10.189.0.100 moves node1 -> node2)"
    assert plan.line() == ("roll: node3, then node2, then VIP holder node1 (VRRP settle) — "
                           "a VIP can move (VIP 10.189.0.100 moves node1 -> node2)")
    assert rolling_batches(new, runs) == (plan.batches, None)     # rolling, as before


def test_a_priority_change_that_moves_nothing_still_rolls(monkeypatch):
    """node3 80 -> 85: no planned move, but the VRRP part of keepalived.conf changes."""
    runs, new = _changed(monkeypatch, lambda d: d["nodes"][2].update(priority=85))
    assert planned_moves(new, runs) == []
    plan = roll_plan(new, runs)
    assert plan.kind is RollKind.ROLLING and plan.settle_after == [False, False, True]
    assert plan.reason.startswith("a VIP can move (node") and "VRRP settings change" in plan.reason


def test_a_vip_added_rolls(monkeypatch):
    runs, new = _changed(monkeypatch, lambda d: d["vrrp_instances"][0].update(
        virtual_ipaddress=["10.189.0.100", "10.189.0.101"]))
    plan = roll_plan(new, runs)
    assert plan.kind is RollKind.ROLLING and plan.batches == [["node3"], ["node2"], ["node1"]]
    assert plan.settle_after == [False, False, True] and "VRRP settings change" in plan.reason


def test_a_restart_rolls(monkeypatch):
    """A node that lost IPVS gets DAEMON_ARGS --vrrp and a keepalived restart (a failover on a MASTER)."""
    old = lab_env(monkeypatch)
    states = {n.name: deploy_state(old, n.name, on_iface=(VIP,) if n.name == "node1" else (), on_lo=(VIP,),
                                   has_ipvs=n.name != "node2", files=live_files(old, n.name, ipvs=True))
              for n in old.inv.nodes}
    runs = plan_runs(old, states, ALL)
    assert ("restart", "keepalived") in [(a.verb, a.unit) for r in runs for a in r.plan.actions]
    plan = roll_plan(old, runs)
    assert plan.kind is RollKind.ROLLING and plan.reason.startswith("a VIP can move (node2: ")


def test_a_stopped_keepalived_is_started_and_that_rolls(monkeypatch):
    old = lab_env(monkeypatch)
    runs, new = _changed(monkeypatch, lambda d: _rs(d).update(weight=5), old=old)
    states = {r.node: r.facts for r in runs}
    states["node2"] = deploy_state(old, "node2", active={"keepalived": "inactive"})
    plan = roll_plan(new, plan_runs(new, states, ALL))
    assert plan.kind is RollKind.ROLLING and "start keepalived" in plan.reason


# ------------------------------------------------------------------ all at once, first deploy, --batch
def test_a_secret_change_goes_to_every_node_at_once(monkeypatch):
    old = lab_env(monkeypatch, secret="0ldS3cr7")
    new = lab_env(monkeypatch, secret="n3wS3cr7")
    plan = roll_plan(new, running(old, new))
    assert plan.kind is RollKind.AT_ONCE and plan.batches == [["node1", "node2", "node3"]]
    assert plan.settle_after == [False]
    assert plan.line().startswith("roll: every node at once: node1+node2+node3 — advert-visible change")


def test_a_first_deploy_starts_the_planned_masters_first(monkeypatch):
    env = lab_env(monkeypatch)
    plan = roll_plan(env, plan_runs(env, {n: fresh(env, n) for n in ("node3", "node2", "node1")}, ALL))
    assert plan.kind is RollKind.FIRST and plan.batches == [["node1"], ["node3", "node2"]]
    assert plan.settle_after == [False, False]
    assert plan.line() == ("roll: planned MASTER node1, then node3+node2 — first deploy: no keepalived runs "
                           "yet, the planned MASTERs start first")


def test_batch_overrides_the_planner(monkeypatch):
    runs, new = _changed(monkeypatch, lambda d: _rs(d).update(weight=5))
    plan = roll_plan(new, runs, batch=2)
    assert plan.kind is RollKind.ROLLING and plan.reason == "--batch 2"
    assert plan.batches == [["node3", "node2"], ["node1"]] and plan.settle_after == [False, True]
    assert roll_plan(new, runs, batch=1).batches == [["node3"], ["node2"], ["node1"]]


def test_runs_without_plans_roll_as_before(monkeypatch):
    """A caller that plans its work elsewhere (rollback passes empty NodePlans): nothing tells the
    change is reload-only, so it rolls one by one."""
    from fabfile.core.plan import NodePlan
    from fabfile.ops.deploy import NodeRun
    env = lab_env(monkeypatch)
    runs = [NodeRun(r.node, r.facts, NodePlan(r.node)) for r in running(env, env)]
    assert rolling_batches(env, runs) == ([["node3"], ["node2"], ["node1"]], None)


# ------------------------------------------------------------------ the pure pieces
def test_vrrp_part_drops_lvs_blocks_and_comments_only(monkeypatch):
    env = lab_env(monkeypatch)
    from .test_core_plan import content
    conf = content(env, keepalived.CONF)
    part = vrrp_part(conf)
    assert "vrrp_instance VI_1 {" in part and "priority 100" in part and "10.189.0.100" in part
    assert not any(ln.startswith(("virtual_server", "real_server", "weight", "#")) for ln in part)
    assert part[-1] == "}"                      # the vrrp_instance's close, not the virtual_server's
    assert vrrp_part(conf.replace("weight 1", "weight 7")) == part
    assert vrrp_part(conf.replace("priority 100", "priority 101")) != part


def test_reload_only_refusal_names_the_node_and_what(monkeypatch):
    runs, _ = _changed(monkeypatch, lambda d: d["nodes"][1].update(priority=110))
    by = {r.node: r for r in runs}
    assert reload_only_refusal(by["node2"].plan, by["node2"].facts.files, "/var/lib/lbtk/runtime.json") == (
        "node2: VRRP settings change (priority, state, VIPs, scripts or global_defs)")


def test_deploy_check_says_the_plan_it_chose(monkeypatch, capsys):
    from fabfile.ops.deploy import Outcome
    from fabfile.views import deploy as view
    runs, new = _changed(monkeypatch, lambda d: _rs(d).update(weight=5))
    view.show(Outcome(["keepalived"], runs, [], check=True, roll=roll_plan(new, runs)), "plain")
    assert f"roll: canary node3, then node2, then VIP holder node1 — {CANARY_REASON}" in capsys.readouterr().out
