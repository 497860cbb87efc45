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
