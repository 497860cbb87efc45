"""Issue 29, plans as data: `--json` on diff, drain, undrain and rollback, and `rollback --check`
(the plan a rollback would apply, as deploy --check shows one). No lab: diff runs over the faked
remote of test_hostile_facts; drain and rollback over a faked run (what they apply is the
deploy's and the rollback's own, tested elsewhere), so what is checked here is the contract: one
JSON object on stdout and nothing else, in stable names."""
from __future__ import annotations

import contextlib
import io
import json

import pytest
from invoke import Context, Exit

from fabfile.core.phase import Phase
from fabfile.core.render.keepalived import CONF
from fabfile.parsers.lbtk_state import RuntimeRecord
from fabfile.infra import facts as F
from fabfile.ops.apply import Applied
from fabfile.ops.deploy import NodeRun, Outcome, RunStatus, gather, plan_node
from fabfile.parsers.lbtk import LiveFile

from .core_fixtures import file_listing, live_files
from .test_hostile_facts import NODES, Cluster, base, lab  # noqa: F401  (fixtures)


def run_json(task, **kw) -> tuple[dict, int]:
    """The task's stdout as JSON (the whole of it), and its exit code."""
    buf, code = io.StringIO(), 0
    with contextlib.redirect_stdout(buf):
        try:
            task(Context(), env="lab", json=True, **kw)
        except Exit as e:
            assert e.code == 1 and not e.message, f"the task failed: {e.message!r} (exit {e.code})"
            code = e.code
    return json.loads(buf.getvalue()), code


def cluster(lab, base, edited: bool) -> None:
    outputs = {}
    for n in NODES:      # every node as rendered, never drained; node2's keepalived.conf edited by hand
        live = {**live_files(lab, n), F.RUNTIME_PATH: None}
        if edited and n == "node2":
            live[CONF] = LiveFile(0o600, live[CONF].content + b"# by hand\n")
        outputs[n] = {**base[n], "runtime": ("", "", 0), "files": (file_listing(live), "", 0)}
    Cluster.outputs = outputs


def test_diff_json_names_each_drifted_file_and_exits_1(lab, base):
    from fabfile.tasks import drift
    cluster(lab, base, edited=True)
    got, code = run_json(drift.diff)
    assert code == 1 and got["drifted"] == 1
    by_node = {n["node"]: n["files"] for n in got["nodes"]}
    assert set(by_node) == set(NODES) and by_node["node1"] == [] and by_node["node3"] == []
    (f,) = by_node["node2"]
    assert (f["path"], f["kind"], f["state"]) == (CONF, "update", "differs") and "-# by hand" in f["diff"]
    cluster(lab, base, edited=False)
    got, code = run_json(drift.diff)
    assert code == 0 and got["drifted"] == 0


def outcome(lab, check: bool) -> Outcome:
    """node2's keepalived.conf planned back to the inventory's; applied unless `check`."""
    states = gather(lab, NODES)
    runs = [NodeRun(n, states[n], plan_node(lab, n, states[n], ["keepalived"])) for n in NODES]
    if not check:
        for r in runs:
            r.done = Applied(list(r.plan.changes), list(r.plan.actions))
            r.status = RunStatus.CHANGED if r.done else RunStatus.UNCHANGED
    return Outcome([Phase.KEEPALIVED], runs, [], check, batches=[] if check else [["node3", "node2"], ["node1"]])


def test_rollback_check_json_is_the_plan_and_nothing_is_applied(lab, base, monkeypatch):
    from fabfile.ops import rollback as ops
    from fabfile.tasks import drift
    cluster(lab, base, edited=True)
    asked = {}

    def fake(env, node, **kw):
        asked.update(kw)
        kw["say"]("a progress line that must not reach stdout")
        return outcome(lab, kw["check"])
    monkeypatch.setattr(ops, "rollback", fake)
    got, code = run_json(drift.rollback, check=True)
    assert code == 0 and asked["check"] is True
    assert got["check"] is True and got["pending"] is True
    node2 = next(n for n in got["nodes"] if n["node"] == "node2")
    assert [f["path"] for f in node2["files"]] == [CONF] and "status" not in node2
    assert {"vip_moves", "batches", "order", "skipped"} <= set(got)

    got, code = run_json(drift.rollback)                   # applied: what each node took
    assert asked["check"] is False and got["check"] is False
    node2 = next(n for n in got["nodes"] if n["node"] == "node2")
    assert node2["status"] == "changed" and node2["done"]["files"] == [CONF] and node2["error"] is None
    assert got["rolled"] == [["node3", "node2"], ["node1"]] and got["error"] is None


def test_rollback_check_prints_the_plan_as_a_table(lab, base, monkeypatch, capsys):
    from fabfile.ops import rollback as ops
    from fabfile.tasks import drift
    cluster(lab, base, edited=True)
    monkeypatch.setattr(ops, "rollback", lambda env, node, **kw: outcome(lab, kw["check"]))
    drift.rollback(Context(), env="lab", check=True, format="plain")
    out = capsys.readouterr().out
    assert "rollback --check: what would change (nothing was touched)" in out and f"update {CONF}" in out


def test_drain_json_is_one_object_with_the_server_and_its_record(lab, base, monkeypatch):
    from fabfile.ops import deploy as ops
    from fabfile.tasks import oncall
    cluster(lab, base, edited=False)

    def fake(env, phases, check=False, say=None, change=None, **kw):
        say("a progress line that must not reach stdout")
        before = RuntimeRecord()
        out = outcome(lab, check)
        out.runtime_before, out.runtime = before, change(before)
        return out
    monkeypatch.setattr(ops, "run_phases", fake)
    monkeypatch.setattr(oncall, "record_owed", lambda *a, **k: None, raising=False)
    got, code = run_json(oncall.drain, server="node3")
    assert code == 0 and got["server"] == "node3" and got["address"] == "10.189.0.13"
    assert got["drained"] is True and got["changed"] is True and got["serial"] == 1 and got["record"] == F.RUNTIME_PATH
    assert {n["node"] for n in got["nodes"]} == set(NODES) and all("status" in n for n in got["nodes"])
    got, code = run_json(oncall.undrain, server="node3")
    assert got["drained"] is False


def test_status_of_several_clusters_is_one_table(lab, base, monkeypatch, capsys):
    """`status --env 'lab,lab-multi'`: a row per node of each cluster in one table, JSON per cluster."""
    from dataclasses import replace
    from fabfile.model.loading import load
    from fabfile.tasks import oncall
    multi_inv, multi_path = load("lab-multi")
    multi = replace(lab, inv=multi_inv, path=multi_path, name="lab-multi")
    monkeypatch.setattr(oncall, "node_env", lambda name, **k: ({"lab": lab, "lab-multi": multi}[name], []))
    cluster(lab, base, edited=False)
    with pytest.raises(Exit):       # lab-multi's VIPs are not where these nodes hold the lab's
        oncall.status(Context(), env="lab,lab-multi", format="plain")
    out = capsys.readouterr().out
    assert out.count("node1") >= 2 and "lab.yaml" in out and "lab-multi.yaml" in out and "2 clusters" in out
    assert "lab.yaml: drained: none" in out and "lab-multi.yaml: status: DEGRADED" in out
    with pytest.raises(Exit):
        oncall.status(Context(), env="lab,lab-multi", json=True)
    got = json.loads(capsys.readouterr().out)
    assert got["ok"] is False and [c["inventory"] for c in got["clusters"]] == ["lab.yaml", "lab-multi.yaml"]
    assert got["clusters"][1]["ok"] is False and {"vip_holders", "nodes", "problems"} <= set(got["clusters"][1])
