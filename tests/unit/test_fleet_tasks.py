"""Read-only tasks over a fleet (issue 29): `--env A,B` or a glob gives verify, ipvs, addrs and vrrp
one table across the clusters, an inventory that cannot be read its own line (the others still
shown), exit 1 when anything is wrong, and `--node` (one inventory's node) refused in one line.
The nodes are not reached: what each cluster observes is the test's."""
from __future__ import annotations

import json

import pytest
from invoke import Context, Exit

from fabfile.core.checks import Check
from fabfile.infra.facts import NodeState
from types import SimpleNamespace

from fabfile.model.loading import load
from fabfile.ops.verify import Report
from fabfile.tasks import tables, verify as verify_task

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def plain(monkeypatch):
    monkeypatch.setenv("LBTK_FORMAT", "plain")


def offline(monkeypatch, module):
    """node_env without links or secrets: the inventory loaded, no node reached."""
    def env(name, node=None, quiet=False, parallel=None):
        inv, path = load(name)
        return SimpleNamespace(inv=inv, path=path), []
    monkeypatch.setattr(module, "node_env", env)


LAST = {}


def run(fn, **kw) -> int:
    LAST.clear()
    try:
        fn(Context(), **kw)
    except Exit as e:
        LAST["message"] = str(e.message or "")
        return e.code
    return 0


def unreachable(e, nodes, facts):
    return {n.name: NodeState(n.name, reachable=False, error="no route to host") for n in e.inv.nodes}


def test_addrs_of_two_clusters_is_one_table_with_cluster_slash_node(monkeypatch, capsys):
    offline(monkeypatch, tables)
    monkeypatch.setattr(tables, "observe_nodes", unreachable)                   # nothing answered
    code = run(tables.addrs, env="lab,kernel", json=True)
    got = json.loads(capsys.readouterr().out)
    assert code == 1 and got["ok"] is False and got["failed"] == {}
    assert {(r["inventory"], r["node"]) for r in got["rows"]} >= {("lab.yaml", "lab/node1"), ("kernel.yaml", "kernel/node3")}
    run(tables.vrrp, env="lab,kernel")
    out = capsys.readouterr().out
    assert out.count("keepalived's view") == 1 and "lab/node2" in out and "kernel/node2" in out


def test_an_inventory_that_cannot_be_read_is_its_line_and_node_is_refused(monkeypatch, capsys):
    offline(monkeypatch, tables)
    monkeypatch.setattr(tables, "observe_nodes", unreachable)
    code = run(tables.ipvs, env="lab,no-such-inventory", json=True)
    got = json.loads(capsys.readouterr().out)
    assert code == 1 and list(got["failed"]) == ["no-such-inventory"] and "\n" not in got["failed"]["no-such-inventory"]
    assert all(r["inventory"] == "lab.yaml" for r in got["rows"])
    code = run(tables.ipvs, env="lab,kernel", node="node1")
    assert code == 2 and "--node names a node of one inventory" in LAST["message"]


def test_verify_of_a_glob_is_one_checks_table_and_its_verdict_per_cluster(monkeypatch, capsys):
    offline(monkeypatch, verify_task)

    def fake(e, nodes, http=True, requests=30):
        ok = e.inv.cluster == "lab"
        return Report([Check("VIP holders", "cluster", ok, "10.189.0.100 on node1" if ok else "SPLIT BRAIN")],
                      {}, {}), None
    monkeypatch.setattr(verify_task, "verify_nodes", fake)
    assert run(verify_task.verify, env="lab,lab-multi") == 1
    out = capsys.readouterr().out
    assert out.count("checks of 2 clusters") == 1 and "lab-multi.yaml" in out
    assert "lab.yaml: verify: 1 checks, all passed" in out and "lab-multi.yaml: verify: 1 of 1 checks FAILED" in out
    monkeypatch.setattr(verify_task, "verify_nodes", lambda e, nodes, http=True, requests=30: (
        Report([Check("HTTP", "cluster", True, "answered by node1")], {}, {}), None))
    assert run(verify_task.verify, env="lab*", json=True) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["ok"] is True and "lab.yaml" in [c["inventory"] for c in got["clusters"]] and got["failed"] == {}


# ---------------------------------------------------------------- history and watch

def entry(id_: str, task: str, result: str = "ok", env: str = "lab"):
    from fabfile.parsers.lbtk_state import HistoryEntry
    return HistoryEntry(id_, id_, "ops@desk", "abc1234", False, task, env, ("/etc/keepalived/keepalived.conf",),
                        (), result)


def recorded(by_cluster: dict[str, list]):
    """observe_nodes whose nodes answer with `by_cluster[cluster]` as their history (each node the
    same runs), or unreachable for a cluster not named."""
    def observe(e, nodes, facts):
        runs = by_cluster.get(e.inv.cluster)
        return {n.name: (NodeState(n.name, history=list(runs)) if runs is not None
                         else NodeState(n.name, reachable=False, error="no route to host")) for n in e.inv.nodes}
    return observe


def test_history_of_two_clusters_is_one_table_newest_first_limited_as_a_whole(monkeypatch, capsys):
    from fabfile.tasks import history as history_task
    offline(monkeypatch, history_task)
    monkeypatch.setattr(history_task, "observe_nodes", recorded({
        "lab": [entry("20261201T100000.000", "deploy"), entry("20261203T100000.000", "drain")],
        "lab-multi": [entry("20261202T100000.000", "rollback", "failed", env="lab-multi")]}))
    assert run(history_task.history, env="lab,lab-multi", json=True, limit=2) == 0
    got = json.loads(capsys.readouterr().out)
    assert [(c["cluster"], c["task"]) for c in got["changes"]] == [("lab", "drain"), ("lab-multi", "rollback")]
    assert got["failed"] == {} and got["unreachable"] == {}
    assert run(history_task.history, env="lab,lab-multi") == 0
    out = capsys.readouterr().out
    assert out.count("changes to 2 clusters") == 1 and "cluster" in out.splitlines()[2]
    lines = [ln for ln in out.splitlines() if ln.startswith("lab")]
    assert [ln.split()[0] for ln in lines] == ["lab", "lab-multi", "lab"] and "FAILED: node1" in lines[1]


def test_history_of_a_fleet_names_what_it_could_not_read(monkeypatch, capsys):
    from fabfile.tasks import history as history_task
    offline(monkeypatch, history_task)
    monkeypatch.setattr(history_task, "observe_nodes", recorded({"lab": [entry("20261201T100000.000", "deploy")]}))
    assert run(history_task.history, env="lab,kernel,no-such-inventory", json=True) == 1
    got = json.loads(capsys.readouterr().out)
    assert list(got["failed"]) == ["no-such-inventory"] and "kernel/node1" in got["unreachable"]
    assert [c["cluster"] for c in got["changes"]] == ["lab"]
    assert run(history_task.history, env="lab") == 0                       # one inventory: as before
    out = capsys.readouterr().out
    assert "changes to lab (newest first)" in out and "cluster" not in out.splitlines()[2]


def test_a_run_two_inventories_of_one_estate_read_shows_once_under_its_maker():
    from fabfile.core import history as H
    lab_run, multi_run = entry("20261201T100000.000", "deploy"), entry("20261202T100000.000", "deploy", env="lab-multi")
    on_the_nodes = H.rows({"node1": NodeState("node1", history=[lab_run, multi_run])})
    got = H.fleet_rows([("lab-multi", "lab-multi", on_the_nodes), ("lab", "lab", on_the_nodes)])
    assert [(c, r.entry.id) for c, r in got] == [("lab-multi", multi_run.id), ("lab", lab_run.id)]


def fake_watching(monkeypatch):
    """ops.watch.watching without connections: every node unreachable, each refresh a new frame."""
    from contextlib import contextmanager
    from fabfile.ops import watch as ops

    class Offline(ops.Watcher):
        def refresh(self):
            return self.fold({n.name: NodeState(n.name, reachable=False, error="no route to host")
                              for n in self.inv.nodes}, 1_800_000_000.0)

    @contextmanager
    def watching(env):
        yield Offline(env.inv, [])
    monkeypatch.setattr(ops, "watching", watching)
    monkeypatch.setattr("fabfile.tasks.watch.load_env", lambda name: SimpleNamespace(inv=load(name)[0]))


def test_watch_of_two_clusters_is_one_view_with_a_cluster_column(monkeypatch, capsys):
    from fabfile.tasks import watch as watch_task
    fake_watching(monkeypatch)
    assert run(watch_task.watch, env="lab,kernel") == 0                     # no terminal: one snapshot
    out = capsys.readouterr().out
    assert "2 clusters (lab, kernel) at" in out and out.count("\nVIP holders\n") == 1
    assert out.count("keepalived's view") == 1 and out.count("last transitions") == 1
    vrrp = out[out.index("keepalived's view"):out.index("real servers")]
    assert "lab " in vrrp and "kernel " in vrrp and vrrp.splitlines()[1].split()[0] == "cluster"
    assert run(watch_task.watch, env="lab,no-such-inventory") == 1
    out = capsys.readouterr().out
    assert "1 clusters (lab)" in out and "no-such-inventory: not read:" in out
    assert run(watch_task.watch, env="lab") == 0                            # one inventory: as before
    out = capsys.readouterr().out
    assert out.startswith("lab at") and "cluster" not in out[out.index("keepalived's view"):].splitlines()[1]


def test_watch_of_a_fleet_draws_every_cluster_on_one_screen(monkeypatch):
    from rich.console import Console
    from fabfile.ops import watch as ops
    from fabfile.views import watch as view
    from fabfile.tasks.common import each_env
    fake_watching(monkeypatch)
    done, failed = each_env(["lab", "kernel"], lambda n: load(n)[0])
    clusters = [(inv, ops.Watcher.fold(ops.Watcher(inv, []), {n.name: NodeState(n.name, reachable=False, error="x")
                                                               for n in inv.nodes}, 1_800_000_000.0))
                for _, inv in done]
    con = Console(width=200, record=True, force_terminal=False)
    con.print(view.fleet_renderable(clusters, 1.0, ["lab-b: not read: no such inventory"]))
    text = con.export_text()
    assert "2 clusters (lab, kernel)" in text and "lab-b: not read" in text and text.count("real servers") == 1
