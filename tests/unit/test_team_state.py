"""Team operations, the pure parts (issue 15): the runtime record kept on the nodes (drains), the
deploy lock's answers, the history merged across nodes, the backup sets a rollback restores.
The lab tests (tests/cluster/test_team.py) run the same code against real nodes and two clones."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabfile.infra import facts as F
from fabfile.core import history, runtime
from fabfile.ops import lock as runlock
from fabfile.model.context import load_env
from fabfile.infra.facts import NodeState
from fabfile.parsers import ParseError
from fabfile.parsers.lbtk import parse_backups
from fabfile.parsers.lbtk_state import (HistoryEntry, RuntimeRecord, parse_history, parse_holder_file, parse_lock_answer, parse_runtime)
from fabfile.ops.deploy import plan_node
from fabfile.ops.rollback import sets_to_restore
from fabfile.infra.runinfo import RunInfo

from .core_fixtures import deploy_state

FX = Path(__file__).resolve().parents[1] / "fixtures" / "lbtk_state"
INFO = RunInfo("20261201T183000.123", "alice@ops1", 4242, "/home/alice/lbtk", "inv deploy --env lab", "lab",
               "2026-12-01T18:30:00+00:00", "d5795c8aa1b2", True)


def state(name, rec=None, reachable=True, hist=()):
    return NodeState(name, reachable=reachable, runtime=rec, history=list(hist))


# ------------------------------------------------------------------ runtime record
def test_the_newest_record_wins_whatever_node_holds_it():
    old = RuntimeRecord(1, ("10.0.0.2",), "a@x", "t1")
    new = RuntimeRecord(2, (), "b@y", "t2")
    assert runtime.newest({"n1": state("n1", old), "n2": state("n2", new), "n3": state("n3")}) == new
    assert runtime.newest({"n1": state("n1")}) == runtime.NONE
    # an unreachable node's (unknown) record is not considered
    assert runtime.newest({"n1": state("n1", old), "n2": state("n2", new, reachable=False)}) == old


def test_drain_and_undrain_make_the_next_serial_and_nothing_when_nothing_changes():
    r1 = runtime.drained(runtime.NONE, "10.189.0.12", True, "a@x")
    assert (r1.serial, r1.drained, r1.by) == (1, ("10.189.0.12",), "a@x") and r1.at
    assert runtime.drained(r1, "10.189.0.12", True, "b@y") is r1          # already drained
    r2 = runtime.drained(r1, "10.189.0.12", False, "b@y")
    assert (r2.serial, r2.drained, r2.by) == (2, (), "b@y")
    assert runtime.drained(r2, "10.189.0.12", False, "c@z") is r2          # already in service


def test_record_file_round_trips_and_is_absent_until_first_drain():
    assert runtime.content(runtime.NONE) is None
    rec = RuntimeRecord(3, ("10.0.0.3", "10.0.0.2"), "a@x", "2026-12-01T00:00:00+00:00")
    text = runtime.content(rec)
    back = parse_runtime(text)
    assert back.serial == 3 and set(back.drained) == {"10.0.0.2", "10.0.0.3"}
    assert parse_runtime("") is None and parse_runtime("\n") is None
    assert parse_runtime((FX / "runtime.json").read_text()).drained == ("10.189.0.12",)


@pytest.mark.parametrize("bad", ['{"serial": -1}', '{"serial": "2"}', '{"serial": 1, "drained": "x"}',
                                 "[1]", "{", '{"serial": true}'])
def test_a_broken_record_is_one_parse_error(bad):
    with pytest.raises(ParseError):
        parse_runtime(bad)


def test_drains_on_the_nodes_become_weight_0_and_the_record_rides_with_keepalived_conf():
    env = load_env("lab")
    addr = env.inv.node("node2").ip
    rec = RuntimeRecord(1, (addr,), "a@x", "t")
    eff = runtime.effective(env, rec)
    weights = {eff.inv.real_server_address(rs): rs.weight for vs in eff.inv.virtual_servers for rs in vs.real_servers}
    assert weights[addr] == 0 and all(w == 1 for a, w in weights.items() if a != addr)
    # a node without the record: the plan writes it and reloads keepalived for the weight
    p = plan_node(eff, "node1", deploy_state(env, "node1"), ["keepalived"])
    assert {ch.file.path: ch.kind for ch in p.changes} == {"/etc/keepalived/keepalived.conf": "update",
                                                         F.RUNTIME_PATH: "create"}
    assert [(a.verb, a.unit) for a in p.actions] == [("reload", "keepalived")]
    # a deploy that read no drains (nothing on the nodes) plans nothing for the record
    assert plan_node(runtime.effective(env, runtime.NONE), "node1", deploy_state(env, "node1"), ["keepalived"]).empty


# ------------------------------------------------------------------ lock
def test_lock_answers():
    assert parse_lock_answer("LOCK HELD\n") == ("HELD", None)
    word, h = parse_lock_answer("LOCK BUSY\n" + INFO.holder() + "\n")
    assert word == "BUSY" and (h.operator, h.pid, h.task, h.cwd) == ("alice@ops1", 4242, "inv deploy --env lab",
                                                                    "/home/alice/lbtk")
    word, h = parse_lock_answer("LOCK BROKEN\n" + INFO.holder() + "\nLOCK HELD\n")
    assert word == "BROKEN" and h.run == INFO.run
    assert parse_lock_answer("LOCK STALE\n{cut") == ("STALE", None)        # a cut record is still a lock
    with pytest.raises(ParseError):
        parse_lock_answer("sudo: a password is required\n")
    with pytest.raises(ParseError):
        parse_lock_answer("LOCK BROKEN\n" + INFO.holder() + "\n")        # broken but never held
    assert parse_holder_file("") is None and parse_holder_file((FX / "lock").read_text()).pid == 4242


def test_lock_refusals_are_one_line_naming_the_holder_and_what_to_do():
    _, h = parse_lock_answer("LOCK BUSY\n" + INFO.holder())
    busy = runlock.describe("node1", "BUSY", h)
    assert "\n" not in busy and "alice@ops1" in busy and "inv deploy --env lab" in busy and "pid 4242" in busy
    assert "since 2026-12-01T18:30:00+00:00" in busy and "nothing was changed" in busy
    stale = runlock.describe("node2", "STALE", h)
    assert "--break-lock" in stale and "gone" in stale and stale.startswith("node2: ")
    assert "--break-lock" not in busy             # a live run's lock is never broken


def test_lock_script_never_breaks_a_live_lock_and_leaves_a_dead_runs_record():
    s = runlock.script(INFO, break_stale=True)
    assert "flock -n 9" in s and "LOCK BUSY" in s          # flock taken: refused, whatever --break-lock
    assert s.index("LOCK BUSY") < s.index("LOCK BROKEN")
    # the record is removed only after an explicit `release`: EOF (our side died) leaves it
    assert 'if read -r word && [ "$word" = release ]; then rm -f' in s
    assert "LOCK STALE" in runlock.script(INFO, break_stale=False)


# ------------------------------------------------------------------ history
def test_history_lines_round_trip_and_a_cut_line_is_skipped():
    line = INFO.entry(["/etc/keepalived/keepalived.conf"], ["reload keepalived"])
    d = json.loads(line)
    assert (d["id"], d["operator"], d["commit"], d["dirty"]) == (INFO.run, "alice@ops1", "d5795c8aa1b2", True)
    entries = parse_history(line + "\n" + line[:40] + "\n")
    assert len(entries) == 1 and entries[0].files == ("/etc/keepalived/keepalived.conf",)
    assert parse_history((FX / "history").read_text())[0].task == "inv deploy --env lab"


def test_history_rows_merge_nodes_newest_first():
    def e(i, files, result="ok"):
        return HistoryEntry(i, "t" + i, "a@x", "c1", False, "inv deploy", "lab", tuple(files), (), result)
    states = {"node1": state("node1", hist=[e("1", ["/a"]), e("2", ["/b"])]),
              "node2": state("node2", hist=[e("1", ["/a", "/c"]), e("2", ["/b"], "failed: x")]),
              "node3": state("node3", reachable=False, hist=[e("3", ["/z"])])}
    rows = history.rows(states)
    assert [r.entry.id for r in rows] == ["2", "1"]
    assert rows[0].nodes == ["node1", "node2"] and rows[0].failed == ["node2"]
    assert rows[1].files == ["/a", "/c"]


def test_history_append_keeps_the_file_bounded():
    cmd = history.append_command(INFO.entry([], []))
    assert f">> {F.HISTORY_PATH}" in cmd and f"tail -n {2 * F.HISTORY_LINES}" in cmd


# ------------------------------------------------------------------ rollback --to
def test_backup_listing_and_the_sets_a_rollback_restores():
    text = ("@@backup 20261201T120000.3\n/etc/keepalived/keepalived.conf\n\n"
            "@@backup 20261201T110000.2\n/etc/keepalived/keepalived.conf /var/lib/lbtk/runtime.json\n\n"
            "@@backup 20261201T100000.1\n/etc/nginx/sites-enabled/lbtk\n\n")
    b = parse_backups(text)
    assert [s for s, _ in b] == ["20261201T120000.3", "20261201T110000.2", "20261201T100000.1"]
    assert sets_to_restore(b, None) == b[:1]
    assert [s for s, _ in sets_to_restore(b, "20261201T110000.2")] == ["20261201T120000.3", "20261201T110000.2"]
    assert sets_to_restore([], "20261201T110000.2") == []
    with pytest.raises(ParseError):
        parse_backups("@@backup ../../etc\n")
