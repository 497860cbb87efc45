"""Two operators, two clones, one cluster (issue 15): drains live on the nodes, a deploy lock on the
nodes refuses a second run and names the first, a killed run's lock stays until --break-lock, and
every change leaves a history row with operator and commit.

Clone A is a copy of this project (its own git commit, its own inventories/), run as operator
alice; this checkout is clone B, run as bob, on the session's inventories ($LBTK_INVENTORIES, as
every test). Both drive the same real lab nodes.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fabfile.model.loading import INVENTORIES_VAR, inventory_dir

from .conftest import ROOT, sh

CONF = "/etc/keepalived/keepalived.conf"
NODE3_WEIGHT = f"grep -A1 'real_server 10.189.0.13' {CONF}"


def env_of(where: Path, operator: str) -> dict[str, str]:
    """The environment of `inv` run in `where` as `operator`: clone A reads its own inventories/,
    this checkout the session's copy (never the repository's)."""
    inventories = inventory_dir() if where == ROOT else where / "inventories"
    return {**os.environ, "LBTK_FORMAT": "plain", "LBTK_OPERATOR": operator, INVENTORIES_VAR: str(inventories)}


def run(where: Path, operator: str, *args, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=where, capture_output=True, text=True,
                          timeout=timeout, env=env_of(where, operator))


def start(where: Path, operator: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=where, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env_of(where, operator))


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}"
    return r


def b(*args, **kw):
    return run(ROOT, "bob@ops-b", *args, **kw)


@pytest.fixture(scope="module")
def clone_a(tmp_path_factory, deployed):
    """Another operator's clone: the project's files, committed in its own git repository, with the
    session's inventories (the lab's secret as deployed, and .state/) as its inventories/."""
    a = tmp_path_factory.mktemp("team") / "clone-a"
    shutil.copytree(ROOT, a, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache",
                                                           ".venv-ansible", ".hypothesis"))
    shutil.rmtree(a / "inventories")
    shutil.copytree(inventory_dir(), a / "inventories")
    git = ["git", "-c", "user.name=alice", "-c", "user.email=alice@example.invalid"]
    subprocess.run(git + ["init", "-q"], cwd=a, check=True)
    subprocess.run(git + ["add", "-A"], cwd=a, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "clone A"], cwd=a, check=True)
    yield a
    ok(b("deploy", "--env", "lab", "--break-lock"))   # whatever a test left: the inventory's state


def commit_of(where: Path) -> str:
    return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=where, capture_output=True,
                          text=True).stdout.strip()


def lock_record(nodes) -> str:
    return sh(nodes["node1"], "cat /var/lib/lbtk/lock 2>/dev/null").stdout


def test_a_drain_from_clone_a_survives_a_deploy_from_clone_b(clone_a, nodes):
    try:
        ok(run(clone_a, "alice@ops-a", "drain", "--env", "lab", "--server", "node3"))
        assert all("weight 0" in sh(nodes[n], NODE3_WEIGHT).stdout for n in nodes)
        # B has no local record of it; its deploy reads the drain from the nodes and keeps it
        again = ok(b("deploy", "--env", "lab"))
        assert "no changes" in again.stdout, again.stdout
        assert all("weight 0" in sh(nodes[n], NODE3_WEIGHT).stdout for n in nodes)
        st = json.loads(ok(b("status", "--env", "lab", "--json")).stdout)
        assert st["runtime"]["drained"] == ["10.189.0.13"] and st["runtime"]["by"] == "alice@ops-a"
        assert ok(b("verify", "--env", "lab", "--no-http")).returncode == 0   # the drain is what is wanted
        # B undrains what A drained; A's next deploy keeps that too
        ok(b("undrain", "--env", "lab", "--server", "node3"))
        assert "no changes" in ok(run(clone_a, "alice@ops-a", "deploy", "--env", "lab")).stdout
    finally:
        b("undrain", "--env", "lab", "--server", "node3")
    assert all("weight 1" in sh(nodes[n], NODE3_WEIGHT).stdout for n in nodes)


@contextlib.contextmanager
def a_deploys_a_failover(clone_a: Path, nodes):
    """A's deploy makes node2 the MASTER (a planned failover: it waits for the VIP to move, under
    the lock). Yields A's running deploy once it holds the lock; A's inventory is put back after."""
    inv_a = clone_a / "inventories" / "lab.yaml"
    original = inv_a.read_text()
    inv_a.write_text(original.replace("priority: 90,", "priority: 110,"))
    try:
        p = start(clone_a, "alice@ops-a", "deploy", "--env", "lab")
        deadline = time.monotonic() + 30
        while "alice@ops-a" not in lock_record(nodes) and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.02)
        assert "alice@ops-a" in lock_record(nodes), "A's deploy never held the lock"
        yield p
    finally:
        inv_a.write_text(original)


def test_a_deploy_from_b_while_a_deploys_fails_in_one_line_naming_a(clone_a, nodes):
    """B's deploy, drain and rollback while A deploys are refused, naming A's run."""
    with a_deploys_a_failover(clone_a, nodes) as p:
        refused = [b("deploy", "--env", "lab"), b("drain", "--env", "lab", "--server", "node3"),
                   b("rollback", "--env", "lab")]
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, out + err
    for r in refused:
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert "deploy lock is held by alice@ops-a (`inv deploy --env lab`" in lines[0]
        assert str(clone_a) in lines[0] and "nothing was changed" in lines[0]
        assert "Traceback" not in r.stderr + r.stdout
    assert lock_record(nodes) == ""                       # released when A ended
    assert "weight 1" in sh(nodes["node1"], NODE3_WEIGHT).stdout   # B's drain did not happen
    ok(b("deploy", "--env", "lab"))                       # node1 MASTER again (the inventory's)


def test_a_killed_runs_lock_is_reported_stale_and_broken_only_on_request(clone_a, nodes):
    with a_deploys_a_failover(clone_a, nodes) as p:
        os.kill(p.pid, signal.SIGKILL)
        p.communicate(timeout=30)
    time.sleep(0.5)
    assert "alice@ops-a" in lock_record(nodes)            # the dead run's record stays
    r = b("deploy", "--env", "lab")
    line = r.stderr.strip()
    assert r.returncode == 2 and "\n" not in line, r.stderr
    assert "left by alice@ops-a" in line and "--break-lock" in line and "gone" in line
    st = ok(b("status", "--env", "lab"))
    assert "deploy lock held by alice@ops-a" in st.stdout
    fixed = ok(b("deploy", "--env", "lab", "--break-lock"))
    assert "broke the stale deploy lock left by alice@ops-a" in fixed.stdout
    assert lock_record(nodes) == ""
    assert ok(b("verify", "--env", "lab", "--no-http")).returncode == 0


def test_history_shows_each_change_with_operator_and_commit_and_rollback_names_a_row(clone_a, nodes):
    ok(run(clone_a, "alice@ops-a", "drain", "--env", "lab", "--server", "node3"))
    ok(b("undrain", "--env", "lab", "--server", "node3"))
    ok(run(clone_a, "alice@ops-a", "drain", "--env", "lab", "--server", "node2"))
    rows = json.loads(ok(b("history", "--env", "lab", "--json")).stdout)["changes"]
    top = rows[:3]
    assert [(r["operator"], r["task"]) for r in top] == [
        ("alice@ops-a", "inv drain --env lab --server node2"), ("bob@ops-b", "inv undrain --env lab --server node3"),
        ("alice@ops-a", "inv drain --env lab --server node3")]
    assert top[0]["commit"] == commit_of(clone_a) and top[0]["dirty"] is False
    # the commit of the repository holding clone B's inventories (the session's copy, outside git:
    # none), as for any inventory directory $LBTK_INVENTORIES names
    assert top[1]["commit"] == commit_of(inventory_dir())
    assert all(r["nodes"] == ["node1", "node2", "node3"] for r in top)
    assert all(CONF in r["files"] and "/var/lib/lbtk/runtime.json" in r["files"] for r in top)
    table = ok(b("history", "--env", "lab")).stdout
    assert top[0]["id"] in table and "alice@ops-a" in table
    # back to the files before the undrain: node3 drained again (and node2 not yet), the record with them
    ok(b("rollback", "--env", "lab", "--to", top[1]["id"]))
    assert all("weight 0" in sh(nodes[n], NODE3_WEIGHT).stdout for n in nodes)
    st = json.loads(ok(b("status", "--env", "lab", "--json")).stdout)
    assert st["runtime"]["drained"] == ["10.189.0.13"]
    newest = json.loads(ok(b("history", "--env", "lab", "--json")).stdout)["changes"][0]
    assert newest["task"].startswith("inv rollback --env lab --to") and newest["operator"] == "bob@ops-b"
    missing = b("rollback", "--env", "lab", "--to", "20000101T000000.000")
    assert missing.returncode == 2 and "no node keeps that run's backup" in missing.stderr
    ok(b("undrain", "--env", "lab", "--server", "node3"))
    assert all("weight 1" in sh(nodes[n], NODE3_WEIGHT).stdout for n in nodes)


def test_ctrl_c_while_the_lock_is_being_taken_leaves_no_record(deployed, nodes, monkeypatch):
    """Ctrl-C can land after node1 and node2 answered LOCK HELD but before the lock is held on
    every node (so `with Lock(...)` never reaches __exit__): what was taken is released, and the
    next run finds no stale lock. Real sshd and flock on the lab; only the interrupt is staged."""
    from fabfile.infra import remote, runinfo
    from fabfile.ops import lock as runlock
    real_hold = remote.hold

    def hold(c, command, until, timeout=30):
        if c.name == "node3":
            time.sleep(0.5)                              # node1 and node2 hold it by now
            raise KeyboardInterrupt
        return real_hold(c, command, until, timeout)
    monkeypatch.setattr(remote, "hold", hold)
    conns = [nodes[n] for n in ("node1", "node2", "node3")]
    info = runinfo.RunInfo(run="20261202T000000.000", operator="carol@ops-c", pid=os.getpid(), cwd=str(ROOT),
                           task="inv deploy --env lab", env="lab", since="2026-12-02T00:00:00+00:00",
                           commit="", dirty=False)
    with pytest.raises(KeyboardInterrupt):
        with runlock.Lock(conns, info):
            pytest.fail("the lock must not be held when a node's take was interrupted")
    for n in ("node1", "node2"):
        assert sh(nodes[n], "cat /var/lib/lbtk/lock 2>/dev/null").stdout == "", n
    ok(b("deploy", "--env", "lab"))                      # no stale lock in the way
