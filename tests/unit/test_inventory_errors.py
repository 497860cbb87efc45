"""Every broken inventory in tests/inventories/broken/ gives its one-line error(s) and exits non-zero.

Each file's first line says `# expect: <text the error must contain>`. They run through the
real CLI, as a user would type it.
"""
import os
from pathlib import Path

import pytest

from fabfile.model.loading import inventory_dir
from tests.cli import run_inv

ROOT = Path(__file__).resolve().parents[2]
BROKEN = sorted((ROOT / "tests/inventories/broken").glob("*.yaml"))


def inv(*args, env=None):
    return run_inv(args, {**os.environ, **(env or {})}, timeout=60)   # `python -m invoke`, forked warm


def test_catalogue_is_large_enough():
    assert len(BROKEN) >= 10


def check_in_process(path: Path, monkeypatch) -> tuple[int, list[str]]:
    """`inv check --env PATH` through the task's real entry point and error funnel, in-process
    (the catalogue is large: a subprocess each would cost the unit tier half a minute)."""
    from invoke import Context, Exit
    from fabfile.tasks.core import check
    monkeypatch.setenv("LBTK_TEST_LONG_SECRET", "123456789")
    monkeypatch.setenv("LAB_VRRP_PASS", "")
    monkeypatch.chdir(ROOT)
    # the broken catalogue names secrets/lab.auth_pass (without generate:, which only lab inventories
    # may use): the session's copy of inventories/ holds one whatever ran before
    secret = inventory_dir() / "secrets" / "lab.auth_pass"
    if not secret.exists():
        secret.parent.mkdir(parents=True, exist_ok=True)
        secret.write_text("lab3cr3t\n")
        secret.chmod(0o600)
    try:
        check(Context(), env=str(path.relative_to(ROOT)))
    except Exit as e:
        return e.code, str(e.message or "").splitlines()
    return 0, []


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_inventory_gives_one_line_error(path, monkeypatch, capsys):
    expect = path.read_bytes().splitlines()[0].decode().removeprefix("# expect: ") if path.stat().st_size else ""
    code, lines = check_in_process(path, monkeypatch)
    out = capsys.readouterr()
    assert code == 2, (code, lines)
    assert lines
    assert "Traceback" not in out.out + out.err
    for line in lines:   # one line per problem, each naming the file (and the field)
        assert line.startswith(f"error: tests/inventories/broken/{path.name}"), lines
    assert any(expect in line for line in lines), lines


@pytest.mark.parametrize("name", ["typo_key", "several_problems", "secret_with_hash"])
def test_broken_inventory_through_the_real_cli(name):
    """The same, as a user types it: exit 2, stderr holds only the error lines."""
    path = ROOT / "tests/inventories/broken" / f"{name}.yaml"
    expect = path.read_text().splitlines()[0].removeprefix("# expect: ")
    r = inv("check", "--env", str(path.relative_to(ROOT)),
            env={"LBTK_TEST_LONG_SECRET": "123456789", "LAB_VRRP_PASS": ""})
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines and all(ln.startswith(f"error: tests/inventories/broken/{name}.yaml") for ln in lines), r.stderr
    assert any(expect in ln for ln in lines) and "Traceback" not in r.stderr + r.stdout


def test_several_problems_are_all_listed(monkeypatch, capsys):
    code, lines = check_in_process(ROOT / "tests/inventories/broken/several_problems.yaml", monkeypatch)
    assert code == 2 and len(lines) == 3, lines
    assert any("nodes[0].priority: 300 is out of range" in ln for ln in lines)
    assert any("virtual_servers[0].lb_algo: 'roundrobin' is not allowed" in ln for ln in lines)
    assert any("virtual_servers[0].real_servers[0].weight: -1 is out of range" in ln for ln in lines)


def test_unknown_env_names_the_choices():
    r = inv("check", "--env", "nosuch")
    assert r.returncode == 2
    choices = sorted(p.stem for p in inventory_dir().glob("*.yaml"))
    assert {"example", "lab"} <= set(choices)
    assert f"no such inventory — choose --env from {', '.join(choices)}" in r.stderr
