"""The toolkit's records on a director (/var/lib/lbtk: history, lock, pending, backups, runtime.json)
are root's only (issue 24): the writing commands run here against a temporary directory that
stands in for /var/lib/lbtk, under a permissive umask, over records an older lbtk left 0644."""
from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from fabfile.core import history
from fabfile.core.actions import Action
from fabfile.infra import facts as F
from fabfile.ops import apply
from fabfile.ops import lock as runlock
from fabfile.infra.runinfo import RunInfo

INFO = RunInfo("20261201T183000.123", "alice@ops1", 4242, "/home/alice/lbtk", "inv deploy --env lab", "lab",
               "2026-12-01T18:30:00+00:00", "abc1234", False)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def records(tmp_path):
    """An older lbtk's records: directory 0755, files 0644."""
    d = tmp_path / "lbtk"
    (d / "backup").mkdir(parents=True)
    for name in ("history", "lock", "lock.flock", "pending"):
        (d / name).write_text("")
        (d / name).chmod(0o644)
    d.chmod(0o755)
    (d / "backup").chmod(0o755)
    return d


def run_here(cmd: str, d: Path, stdin: str = "") -> subprocess.CompletedProcess:
    cmd = cmd.replace(F.RECORDS_DIR, str(d))
    r = subprocess.run(["sh", "-c", "umask 022; " + cmd], input=stdin, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r


def test_history_is_private(records):
    run_here(history.append_command(INFO.entry(["/etc/x"], [])), records)
    assert mode(records) == 0o700 and mode(records / "history") == 0o600
    (records / "history").unlink()
    run_here(history.append_command(INFO.entry(["/etc/x"], [])), records)
    assert mode(records / "history") == 0o600


def test_the_lock_and_its_record_are_private(records):
    (records / "lock").unlink()
    r = run_here(runlock.script(INFO, break_stale=False), records)      # stdin at EOF: the record stays
    assert runlock.HELD in r.stdout
    assert mode(records) == 0o700
    assert mode(records / "lock") == 0o600 and mode(records / "lock.flock") == 0o600


def test_the_swap_keeps_pending_and_backups_private(records, tmp_path):
    live = tmp_path / "etc" / "keepalived.conf"
    live.parent.mkdir()
    live.write_text("old")
    live.chmod(0o644)
    (tmp_path / "etc" / ("keepalived.conf" + apply.NEW)).write_text("new")
    change = SimpleNamespace(file=SimpleNamespace(path=str(live)))
    run_here(apply._backup_and_swap([change], [], "20261201T183000.123", [Action("reload", "keepalived")]), records)
    assert live.read_text() == "new"
    assert mode(records) == 0o700 and mode(records / "backup") == 0o700
    assert mode(records / "pending") == 0o600
    stamp = records / "backup" / "20261201T183000.123"
    assert mode(stamp) == 0o700 and mode(stamp / ".paths") == 0o600
    assert mode(Path(f"{stamp}{live}")) == 0o644          # the live file's own mode: a restore puts it back


def test_runtime_json_is_written_0600_and_an_old_0644_one_is_made_private():
    from fabfile.core import runtime
    from fabfile.model.context import load_env
    from fabfile.ops.deploy import plan_node
    from fabfile.parsers.lbtk import LiveFile
    from fabfile.parsers.lbtk_state import RuntimeRecord
    from .core_fixtures import deploy_state
    env = load_env("lab")
    rec = RuntimeRecord(1, (env.inv.node("node2").ip,), "a@x", "t")
    eff = runtime.effective(env, rec)
    p = plan_node(eff, "node1", deploy_state(env, "node1"), ["keepalived"])
    new = next(ch for ch in p.changes if ch.file.path == F.RUNTIME_PATH)
    assert new.kind == "create" and new.file.mode == 0o600
    old = deploy_state(env, "node1")
    old.files[F.RUNTIME_PATH] = LiveFile(0o644, runtime.content(rec).encode())
    p = plan_node(eff, "node1", old, ["keepalived"])
    assert [(ch.kind, ch.file.mode) for ch in p.changes if ch.file.path == F.RUNTIME_PATH] == [("mode", 0o600)]


@pytest.mark.parametrize("kept_before", [0, 3, apply.KEEP_BACKUPS, apply.KEEP_BACKUPS + 4])
def test_pruning_keeps_the_newest_backup_sets(records, kept_before):
    """The shell's own glob (C locale) orders the stamps: the oldest go, the newest KEEP_BACKUPS stay,
    whatever the shell (dash here, bash on a node's login)."""
    stamps = [f"2026120{d}T0{h}0000.{k:03d}" for d in (1, 2) for h in range(3) for k in (5, 40)][:kept_before]
    for s in stamps:
        (records / "backup" / s).mkdir()
    (records / "backup" / "stray-file").write_text("")           # not a set: never removed
    for shell in ("sh", "bash"):
        cmd = apply._prune().replace(F.RECORDS_DIR, str(records))
        r = subprocess.run([shell, "-c", cmd + "; true"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        left = sorted(p.name for p in (records / "backup").iterdir() if p.is_dir())
        assert left == sorted(stamps)[-apply.KEEP_BACKUPS:] if stamps else left == []
    assert (records / "backup" / "stray-file").exists()
