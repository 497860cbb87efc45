"""Every broken inventory in tests/inventories/broken/ gives its one-line error and exits non-zero.

Each file's first line says `# expect: <text the error must contain>`. They run through the
real CLI, as a user would type it.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROKEN = sorted((ROOT / "tests/inventories/broken").glob("*.yaml"))


def inv(*args, env=None):
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=60)


def test_catalogue_is_large_enough():
    assert len(BROKEN) >= 10


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_inventory_gives_one_line_error(path):
    expect = path.read_text().splitlines()[0].removeprefix("# expect: ")
    r = inv("check", "--env", str(path.relative_to(ROOT)),
            env={"LBTK_TEST_LONG_SECRET": "123456789", "LAB_VRRP_PASS": ""})
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert lines[0].startswith(f"error: tests/inventories/broken/{path.name}")
    assert expect in lines[0], lines[0]


def test_unknown_env_names_the_choices():
    r = inv("check", "--env", "nosuch")
    assert r.returncode == 2
    choices = sorted(p.stem for p in (ROOT / "inventories").glob("*.yaml"))
    assert {"example", "lab"} <= set(choices)
    assert f"no such inventory — choose --env from {', '.join(choices)}" in r.stderr
