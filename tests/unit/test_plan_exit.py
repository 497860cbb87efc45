"""Issue 29, plans as data: `deploy --check --detailed-exitcode` exits 4 with changes pending and 0
with nothing to do (Terraform's habit; 2 stays "error"), and `deploy --check --json` is the plan
as data. The deploy's own planning is replaced by a fabricated Outcome: no node is contacted (the
lab test of the real thing is tests/cluster/test_plan_exit.py)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from invoke import Context, Exit

from fabfile.core.actions import Action
from fabfile.core.phase import DEPLOY_ORDER, Phase
from fabfile.core.plan import FileChange, NodePlan, PlannedMove, RollKind, RollPlan
from fabfile.core.render import NodeFile
from fabfile.errors import EXIT_PENDING
from fabfile.ops import deploy as ops_deploy
from fabfile.ops.deploy import NodeRun, Outcome
from fabfile.tasks.deploy import deploy
from fabfile.views.deploy import as_json

CONF = "/etc/keepalived/keepalived.conf"


def outcome(pending: bool, move: bool = False) -> Outcome:
    plans = {n: NodePlan(n) for n in ("node1", "node2", "node3")}
    if pending:
        f = NodeFile(CONF, "weight 2\n", Phase.KEEPALIVED, 0o600, secret=True)
        plans["node2"].changes.append(FileChange(f, "update", "-weight 1\n+weight 2\n"))
        plans["node2"].actions.append(Action("reload", "keepalived", why="keepalived.conf changed"))
    moves = [PlannedMove("10.189.0.100", ("node1",), "node2", nopreempt=False)] if move else []
    roll = RollPlan(RollKind.CANARY, [["node2"]], [False], "reload-only, no VIP can move")
    facts = SimpleNamespace(kernel="6.1.0", has_ipvs=True, packages={})     # what the install table reads
    return Outcome(list(DEPLOY_ORDER), [NodeRun(n, facts, p) for n, p in plans.items()], moves, check=True, roll=roll)


@pytest.fixture
def planned(monkeypatch):
    """deploy's planning returns what the test sets (`planned.out`), for the inventory `example`."""
    class Planned:
        out = outcome(False)
    monkeypatch.setattr(ops_deploy, "run_phases", lambda *a, **kw: Planned.out)
    monkeypatch.setenv("LBTK_FORMAT", "plain")
    return Planned


def run(**kw) -> int:
    try:
        deploy(Context(), env="example", check=True, **kw)
    except Exit as e:
        return e.code
    return 0


@pytest.mark.parametrize("pending,move,code", [(False, False, 0), (True, False, EXIT_PENDING),
                                                (False, True, EXIT_PENDING)])
def test_the_detailed_exit_code_says_whether_changes_are_pending(planned, capsys, pending, move, code):
    planned.out = outcome(pending, move)
    assert run(detailed_exitcode=True) == code
    assert run() == 0                                    # without the flag: 0, as before
    assert "pending" in capsys.readouterr().out


def test_the_plan_as_json_holds_the_diff_the_action_and_no_move(planned, capsys):
    planned.out = outcome(True)
    assert run(json=True, detailed_exitcode=True) == EXIT_PENDING
    capsys.readouterr()
    assert run(json=True) == EXIT_PENDING                # the plan as data: for pipelines, the code too
    out = capsys.readouterr().out
    plan = json.loads(out)                               # stdout is the JSON alone
    assert plan["pending"] is True and plan["vip_moves"] == [] and plan["batches"] == [["node2"]]
    node2 = next(n for n in plan["nodes"] if n["node"] == "node2")
    assert node2["files"] == [{"path": CONF, "kind": "update", "diff": "-weight 1\n+weight 2\n"}]
    assert node2["actions"] == [{"verb": "reload", "unit": "keepalived", "arg": "", "why": "keepalived.conf changed",
                                 "shell": Action("reload", "keepalived").shell()}]
    assert all(n["files"] == [] and n["actions"] == [] for n in plan["nodes"] if n["node"] != "node2")


def test_nothing_to_do_as_json():
    plan = as_json(outcome(False))
    assert plan["pending"] is False and plan["batches"] == [] and plan["order"] is None


@pytest.mark.parametrize("flag", ["json", "detailed_exitcode"])
def test_json_and_the_exit_code_go_with_check(flag):
    with pytest.raises(Exit) as e:
        deploy(Context(), env="example", **{flag: True})
    assert e.value.code == 2 and "goes with --check" in e.value.message
