"""No input file, however broken, gets a traceback out of `inv check`, `inv render` or
`inv deploy --check`: each ends with one line per problem (exit 2), or succeeds.

Fed: every file in tests/inventories/broken/, the good inventories cut at many points
(truncated), binary and empty files. The tasks run in-process through their real entry
points (Invoke Task objects, with the error funnel), so the whole catalogue stays fast.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from invoke import Context, Exit

from fabfile.tasks.core import check, render
from fabfile.tasks.deploy import deploy
from fabfile.model.loading import inventory_dir

ROOT = Path(__file__).resolve().parents[2]
BROKEN = sorted((ROOT / "tests/inventories/broken").glob("*.yaml"))
GOOD = [inventory_dir() / f"{name}.yaml" for name in ("lab", "example", "kernel-nat")]


def run_task(task, path: Path, **kw) -> tuple[int, str]:
    try:
        task(Context(), env=str(path), **kw)
        return 0, ""
    except Exit as e:
        return e.code, str(e.message or "")


def feed(path: Path, capsys, tasks=("check", "render")) -> None:
    for name in tasks:
        task = {"check": check, "render": render, "deploy": deploy}[name]
        kw = {"check": True} if name == "deploy" else {}
        code, msg = run_task(task, path, **kw)
        out = capsys.readouterr()
        assert "Traceback" not in out.out + out.err + msg, (name, path.name)
        if code not in (0, 1):
            assert code == 2, (name, path.name, code, msg)
            lines = msg.splitlines()
            assert lines and all(ln.startswith("error: ") for ln in lines), (name, path.name, msg)


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("LBTK_TEST_LONG_SECRET", "123456789")
    monkeypatch.setenv("LAB_VRRP_PASS", "")
    monkeypatch.setenv("LBTK_FORMAT", "plain")


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_file_check_and_render(path, capsys):
    feed(path, capsys)


@pytest.mark.parametrize("good", GOOD, ids=[p.stem for p in GOOD])
def test_truncated_good_inventories(good, tmp_path, capsys):
    data = good.read_bytes()
    cuts = sorted({len(data) * k // 23 for k in range(1, 23)})
    for n in cuts:
        p = tmp_path / f"{good.stem}_cut{n}.yaml"
        p.write_bytes(data[:n])
        feed(p, capsys, tasks=("render",))


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02\xff\xfe", os.urandom(64), b"- a\n- b\n", b"cluster:\n",
                                     b"cluster: [1, 2]\nnodes: {}\n", b"{{{{", b"!!python/object:os.system\n"],
                         ids=["empty", "binary", "random", "list", "null-cluster", "wrong-types", "braces", "yaml-tag"])
def test_binary_and_empty_files_all_tasks(content, tmp_path, capsys):
    p = tmp_path / "x.yaml"
    p.write_bytes(content)
    feed(p, capsys, tasks=("check", "render", "deploy"))
    code, msg = run_task(render, p)
    assert code == 2 and msg.startswith("error: "), msg
