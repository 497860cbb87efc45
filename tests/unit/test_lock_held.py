"""Every task that changes nodes holds the deploy lock for its whole run and decides under it
(issue 24): os-upgrade (its drain reuses the held lock), failover-test, sync-start and sync-stop.

The nodes are a fake world: `remote.hold` answers the lock command as the node would (HELD, or
BUSY when another run holds it there), and every step records itself, so the order is the test:
the lock on every node first, the facts read after, the lock released last."""
from __future__ import annotations

import pytest

from fabfile.errors import LbtkError
from fabfile.infra import remote
from fabfile.infra.facts import NodeState
from fabfile.infra.runinfo import RunInfo
from fabfile.ops import lock as runlock

from .core_fixtures import lab_env

INFO = RunInfo(run="20261201T183000.000", operator="carol@ops3", pid=77, cwd="/home/carol/lbtk",
               task="inv os-upgrade --env lab", env="lab", since="2026-12-01T18:30:00+00:00", commit="",
               dirty=False)
OTHER = RunInfo(run="20261201T182000.000", operator="alice@ops1", pid=4242, cwd="/home/alice/lbtk",
                task="inv deploy --env lab", env="lab", since="2026-12-01T18:20:00+00:00", commit="", dirty=False)


class Conn:
    """A Fabric Connection as far as a NodeGroup closes it."""
    def close(self):
        pass


class Held:
    """The lock command running on one node of the world."""
    def __init__(self, world: "World", node: str):
        self.world, self.node, self.open, self.stderr = world, node, True, ""

    def send(self, text: str) -> None:
        self.world.events.append(("release", self.node))

    def read_until(self, line: str, timeout: float) -> str:
        return line + "\n"

    def close(self) -> None:
        self.open = False


class World:
    """The nodes: `busy` ones hold another run's lock. events: what happened, in order."""
    def __init__(self, monkeypatch, busy=()):
        self.busy, self.events = set(busy), []
        monkeypatch.setattr(remote, "hold", self.hold)
        monkeypatch.setattr(remote, "nodes", self.nodes)
        monkeypatch.setattr(remote, "run", self.run)

    def nodes(self, env, chosen=None):
        names = [n.name for n in env.inv.nodes] if chosen is None else [getattr(n, "name", n) for n in chosen]
        return remote.NodeGroup([remote.NodeLink(n, Conn()) for n in names], inv=env.inv)

    def hold(self, c, command, until, timeout=30):
        if c.name in self.busy:
            self.events.append(("refused", c.name))
            return Held(self, c.name), "LOCK BUSY\n" + OTHER.holder() + "\n"
        self.events.append(("lock", c.name))
        return Held(self, c.name), "LOCK HELD\n"

    def run(self, c, command, check=True, timeout=60):
        self.events.append(("run", c.name, command))
        return remote.Result("", "", 0)

    def observer(self, states: dict[str, NodeState]):
        def observe(group, facts, *a):
            self.events.append(("observe", tuple(group.names)))
            return {n: states[n] for n in group.names}
        return observe

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]


def healthy(names, release="bookworm") -> dict[str, NodeState]:
    return {n: NodeState(n, release=release, active={"keepalived": "active"}, interfaces=[]) for n in names}


NODES = ["node1", "node2", "node3"]


# ---------------------------------------------------------------- the lock itself
def test_take_again_holds_a_node_whose_hold_ended_and_a_refusal_releases_all(monkeypatch):
    w = World(monkeypatch)
    group = remote.nodes(lab_env(monkeypatch))
    with runlock.Lock(group, INFO) as lock:
        assert lock.covers(NODES)
        lock.take_again(group.only(["node3"]))         # node3 rebooted: its command is gone
        assert lock.covers(NODES) and w.events[-2:] == [("release", "node3"), ("lock", "node3")]
        w.busy.add("node2")
        with pytest.raises(runlock.LockError, match="^node2: the deploy lock is held by alice@ops1"):
            lock.take_again(group.only(["node2"]))
        assert lock.held == {}                          # everything given back
    assert sorted(e[1] for e in w.events if e[0] == "release") == ["node1", "node2", "node3", "node3"]


def test_held_on_all_refuses_a_node_the_lock_cannot_reach(monkeypatch):
    w = World(monkeypatch)

    def hold(c, command, until, timeout=30):
        if c.name == "node2":
            raise remote.RemoteError("node2: ssh: connection timed out")
        return w.hold(c, command, until, timeout)
    monkeypatch.setattr(remote, "hold", hold)
    with pytest.raises(remote.RemoteError) as e:
        with runlock.held_on_all(remote.nodes(lab_env(monkeypatch)), INFO):
            pytest.fail("no run may go on without the lock on every node")
    assert str(e.value) == "node2: ssh: connection timed out — nothing was changed on any node"
    assert sorted(x[1] for x in w.events if x[0] == "release") == ["node1", "node3"]


# ---------------------------------------------------------------- deploy under a held lock
def test_a_deploy_under_a_held_lock_takes_no_lock_and_runs_as_the_holder(monkeypatch):
    from fabfile.ops import deploy
    w = World(monkeypatch)
    e = lab_env(monkeypatch)
    seen = {}

    def locked(env, phases, group, check, say, progress, skip, batch, change, info, lock_down, on_moves, quick=False):
        seen.update(info=info, quick=quick, nodes=group.names)
        return "outcome"
    monkeypatch.setattr(deploy, "_locked", locked)
    with runlock.Lock(remote.nodes(e), INFO) as lock:
        before = list(w.events)
        assert deploy.run_phases(e, ["keepalived"], lock=lock) == "outcome"
        assert w.events == before                       # no second lock, no quick look before it
    assert seen == {"info": INFO, "quick": False, "nodes": NODES}
    with runlock.Lock(remote.nodes(e, ["node1"]), INFO) as part:
        with pytest.raises(RuntimeError):               # a lock on node1 alone cannot cover node2
            deploy.run_phases(e, ["keepalived"], lock=part)


def test_the_drain_passes_the_held_lock_to_the_deploy(monkeypatch):
    from fabfile.ops import deploy
    from fabfile.tasks import deploy as deploy_task
    got = {}

    class Out:
        error, runs, skipped, phases = None, [], {}, []
    monkeypatch.setattr(deploy, "run_phases", lambda *a, **kw: got.update(kw) or Out())
    monkeypatch.setattr(deploy_task, "record_owed", lambda e, out, **kw: None)
    monkeypatch.setattr("fabfile.views.deploy.show", lambda out, fmt: None)
    deploy_task.deploy_and_show(lab_env(monkeypatch), ["keepalived"], lock="the held lock")
    assert got["lock"] == "the held lock"


# ---------------------------------------------------------------- os-upgrade
def upgrade_world(monkeypatch, busy=()):
    from fabfile.model import extensions
    from fabfile.ops import upgrade
    w = World(monkeypatch, busy)
    monkeypatch.setattr(extensions, "os_swap", lambda inv, env: None)
    monkeypatch.setattr(upgrade, "observe", w.observer(healthy(NODES)))
    monkeypatch.setattr(upgrade, "apt_swap", lambda e, group, d, packages, say: w.events.append(("swap", d.node)))
    monkeypatch.setattr(upgrade, "release_of", lambda e, node: "trixie")
    return w, upgrade


def test_os_upgrade_decides_under_the_lock_drains_under_it_and_holds_it_to_the_end(monkeypatch):
    w, upgrade = upgrade_world(monkeypatch)
    drained_under = []
    p, seconds = upgrade.os_upgrade(
        lab_env(monkeypatch), "node3", "trixie", INFO, say=lambda s: None,
        drain=lambda lock: (drained_under.append(lock.covers(NODES)), w.events.append(("drain",))),
        show_plan=lambda p: w.events.append(("plan",)))
    assert seconds is not None and p.decision.node == "node3"
    k = w.kinds()
    assert k[:3] == ["lock"] * 3 and k[3:6] == ["observe", "plan", "drain"]
    assert ("run", "node3", "systemctl mask --now keepalived") in w.events
    assert w.events.index(("swap", "node3")) < w.events.index(("lock", "node3"), 3)   # held again after the swap
    assert k[-3:] == ["release"] * 3                    # given back only at the very end
    assert drained_under == [True]                      # the drain ran under the lock held on every node


def test_os_upgrade_is_refused_in_one_line_while_another_run_holds_the_lock(monkeypatch):
    w, upgrade = upgrade_world(monkeypatch, busy={"node2"})
    with pytest.raises(runlock.LockError) as e:
        upgrade.os_upgrade(lab_env(monkeypatch), "node3", "trixie", INFO, say=lambda s: None,
                           drain=lambda lock: pytest.fail("drained without the lock"),
                           show_plan=lambda p: pytest.fail("decided without the lock"))
    assert "\n" not in str(e.value) and str(e.value).startswith("node2: the deploy lock is held by alice@ops1")
    assert "observe" not in w.kinds() and "run" not in w.kinds()


def test_os_upgrade_check_takes_no_lock(monkeypatch):
    w, upgrade = upgrade_world(monkeypatch, busy=set(NODES))
    p, seconds = upgrade.os_upgrade(lab_env(monkeypatch), "node3", "trixie", INFO, say=lambda s: None,
                                    drain=lambda lock: None, show_plan=lambda p: None, check=True)
    assert seconds is None and p.steps and w.kinds() == ["observe"]


# ---------------------------------------------------------------- failover-test, sync-start, sync-stop
def test_failover_test_runs_the_drill_under_the_lock_and_is_refused_while_another_run_holds_it(monkeypatch):
    from fabfile.ops import drill
    w = World(monkeypatch)
    monkeypatch.setattr(drill, "run", lambda inv, group, mode, *a: w.events.append(("drill", mode)) or "result")
    assert drill.failover_test(lab_env(monkeypatch), "graceful", INFO) == "result"
    assert w.kinds() == ["lock"] * 3 + ["drill"] + ["release"] * 3
    w.events.clear()
    w.busy.add("node1")
    with pytest.raises(runlock.LockError, match="^node1: the deploy lock is held by alice@ops1"):
        drill.failover_test(lab_env(monkeypatch), "crash", INFO)
    assert "drill" not in w.kinds()


@pytest.mark.parametrize("start", [True, False])
def test_sync_start_and_stop_read_the_roles_under_the_lock_and_are_refused_while_it_is_held(monkeypatch, start):
    from fabfile.ops import sync_daemons
    w = World(monkeypatch)
    monkeypatch.setattr(sync_daemons, "observe", w.observer(healthy(NODES)))   # no IPVS table: nothing to do
    sync_daemons.apply(lab_env(monkeypatch), start=start, info=INFO)
    assert w.kinds() == ["lock"] * 3 + ["observe"] + ["release"] * 3
    w.events.clear()
    w.busy.add("node3")
    with pytest.raises(runlock.LockError, match="^node3: the deploy lock is held by alice@ops1"):
        sync_daemons.apply(lab_env(monkeypatch), start=start, info=INFO)
    assert "observe" not in w.kinds()


def test_a_task_without_the_section_is_refused_before_any_lock(monkeypatch):
    from fabfile.ops import sync_daemons
    from .core_fixtures import lab_data
    w = World(monkeypatch)
    data = lab_data()
    del data["sync_daemon"]
    with pytest.raises(LbtkError, match="no sync_daemon section"):
        sync_daemons.apply(lab_env(monkeypatch, data=data), start=True, info=INFO)
    assert w.events == []
