"""`inv rollback` plans as a deploy does (issue 24): the restored files against the live ones are
real file changes, so a change VRRP adverts carry (the secret, virtual_router_id) goes back on every
node at once, anything else in the deploy's rolling order, and the VIP moves are predicted from the
keepalived.conf each node ends on."""
from __future__ import annotations

import copy

import pytest

from fabfile.core.plan import PlannedMove, VipIntent, changes_wire
from fabfile.core.render import keepalived, render_node, ASSUMED
from fabfile.core.restore import backup_copy, copies, restore_plan, sources
from fabfile.errors import LbtkError
from fabfile.infra.facts import SECRET_RECORD_PATH
from fabfile.ops.deploy import plan_runs, planned_moves, rolling_batches
from fabfile.ops.rollback import plan_rollback, rendered_files

from .core_fixtures import deploy_state, lab_data, lab_env, live_files

VIP = "10.189.0.100"
STAMP = "20261201T120000.100"


def _changed(monkeypatch, edit, secret="lab3cr3t"):
    data = lab_data()
    edit(data)
    return lab_env(monkeypatch, data=data, secret=secret)


def rolled_back(old, new, holder="node1"):
    """A rollback on a cluster running `new`'s files, whose last deploy (STAMP) replaced `old`'s:
    the runs and the VIP intent; the clone's inventory is `new` (the operator did not revert it)."""
    states, sets = {}, {}
    for n in new.inv.nodes:
        s = deploy_state(new, n.name, on_iface=(VIP,) if n.name == holder else (), on_lo=(VIP,))
        before = live_files(old, n.name)
        replaced = [p for p in s.files if s.files[p] != before.get(p)]
        for p in replaced:
            s.files[backup_copy(STAMP, p)] = before.get(p)
        states[n.name], sets[n.name] = s, [(STAMP, replaced)]
    return plan_rollback(new, states, sets)


def deployed(old, new, holder="node1"):
    """The deploy of `new` onto a cluster running `old`, for comparison."""
    states = {n.name: deploy_state(old, n.name, on_iface=(VIP,) if n.name == holder else (), on_lo=(VIP,))
              for n in old.inv.nodes}
    return plan_runs(new, states, ["keepalived"])


def test_rolling_back_a_secret_rotation_is_one_parallel_batch(monkeypatch):
    old = lab_env(monkeypatch, secret="0ldS3cr7")
    new = lab_env(monkeypatch, secret="n3wS3cr7")
    runs, intent = rolled_back(old, new)
    # the fingerprint record goes back with the keepalived.conf it describes
    assert [ch.file.path for r in runs for ch in r.plan.changes] == [keepalived.CONF, SECRET_RECORD_PATH] * 3
    assert all("0ldS3cr7" in r.plan.changes[0].file.content for r in runs)
    assert all(changes_wire(r.plan.changes, r.facts.files) for r in runs)
    batches, why = rolling_batches(new, runs, 1, intent)
    assert batches == [["node1", "node2", "node3"]] and why.startswith("advert-visible change")
    assert [a.short() for a in runs[0].plan.actions] == ["reload keepalived"]


def test_rolling_back_a_virtual_router_id_change_is_one_parallel_batch(monkeypatch):
    old = lab_env(monkeypatch)
    new = _changed(monkeypatch, lambda d: d["vrrp_instances"][0].update(virtual_router_id=52))
    runs, intent = rolled_back(old, new)
    assert rolling_batches(new, runs, 1, intent)[0] == [["node1", "node2", "node3"]]
    assert "virtual_router_id 51" in runs[0].plan.changes[0].file.content


def test_rolling_back_a_weight_change_rolls_in_the_deploys_order(monkeypatch):
    old = lab_env(monkeypatch)
    new = _changed(monkeypatch, lambda d: d["virtual_servers"][0]["real_servers"][2].update(weight=0))
    runs, intent = rolled_back(old, new, holder="node1")
    assert all(r.plan.changes for r in runs) and not any(changes_wire(r.plan.changes, r.facts.files) for r in runs)
    batches = rolling_batches(new, runs, None, intent)          # the planner's choice, as a deploy's
    assert batches == rolling_batches(old, deployed(new, old))
    assert batches[0] == [["node3"], ["node2"], ["node1"]] and "reload-only" in batches[1]
    assert rolling_batches(new, runs, 1, intent) == ([["node3"], ["node2"], ["node1"]], None)   # --batch 1
    # after a failover node2 holds the VIP: it goes last, as in a deploy
    runs2, intent2 = rolled_back(old, new, holder="node2")
    assert rolling_batches(new, runs2, None, intent2)[0] == [["node3"], ["node1"], ["node2"]]
    assert planned_moves(new, runs, intent) == []


def test_rolling_back_a_priority_change_predicts_the_vip_moving_back(monkeypatch):
    """The deploy moved the VIP to node2 (priority 110); the rollback's confs give it back to node1,
    though the clone's inventory still says node2."""
    old = lab_env(monkeypatch)
    new = _changed(monkeypatch, lambda d: d["nodes"][1].update(priority=110))
    runs, intent = rolled_back(old, new, holder="node2")
    assert intent.owners == {VIP: "node1"} and VipIntent.of(new.inv).owners == {VIP: "node2"}
    assert planned_moves(new, runs, intent) == [PlannedMove(VIP, ("node2",), "node1", nopreempt=False)]


def test_a_file_the_deploy_created_is_removed_and_the_oldest_set_wins(monkeypatch):
    env = lab_env(monkeypatch)
    s = deploy_state(env, "node1")
    conf = keepalived.CONF
    s.files["/etc/nginx/sites-enabled/extra"] = s.files[conf]        # made by the newer deploy
    s.files[backup_copy("2.2", conf)] = type(s.files[conf])(0o600, b"# newer\n")
    s.files[backup_copy("1.1", conf)] = type(s.files[conf])(0o600, b"# older\n")
    sets = [("2.2", [conf, "/etc/nginx/sites-enabled/extra"]), ("1.1", [conf])]
    assert sources("node1", sets) == {conf: "1.1", "/etc/nginx/sites-enabled/extra": "2.2"}
    assert copies("node1", sets) == [backup_copy("1.1", conf), backup_copy("2.2", "/etc/nginx/sites-enabled/extra")]
    plan = restore_plan("node1", sets, s, rendered_files(env, "node1"))
    kinds = {ch.file.path: (ch.kind, ch.file.content) for ch in plan.changes}
    assert kinds == {conf: ("update", "# older\n"), "/etc/nginx/sites-enabled/extra": ("delete", None)}
    assert {a.short() for a in plan.actions} >= {"reload keepalived", "reload nginx"}


@pytest.mark.parametrize("bad", ["etc/x", "/etc/../root/.ssh/authorized_keys", "//etc/x"])
def test_a_backup_listing_with_an_odd_path_is_refused(bad):
    with pytest.raises(LbtkError, match="not a plain absolute path"):
        sources("node1", [("1.1", [bad])])


def test_the_intent_read_from_rendered_confs_is_the_inventorys(monkeypatch):
    env = lab_env(monkeypatch)
    multi = lab_data()
    multi.update(multi_master=True)
    multi["vrrp_instances"][0]["virtual_ipaddress"] = ["10.189.0.100", "10.189.0.101", "10.189.0.102"]
    for e in (env, _changed(monkeypatch, lambda d: d.update(copy.deepcopy(multi)))):
        confs = {n.name: next(f.content for f in render_node(e.inv, n.name, e.secrets, ASSUMED)
                              if f.path == keepalived.CONF) for n in e.inv.nodes}
        assert VipIntent.of_confs(confs) == VipIntent.of(e.inv)
