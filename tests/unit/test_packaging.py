"""Issue 29, installable: `pip install .` gives an `lbtk` command (Invoke's Program with the same
tasks) that finds inventories through --inventories DIR, $LBTK_INVENTORIES or ./inventories.

Building a wheel needs setuptools' bdist_wheel (the `wheel` package before setuptools 70), which
the checkout's virtualenv does not carry and a unit test may not fetch: what the wheel would
hold is checked from pyproject.toml instead (every file the package reads beside its code is in
its package data), and the console script's function is run as the installed script runs it,
from a directory outside the repository."""
from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from invoke import Program

from fabfile.model.loading import INVENTORIES_VAR, inventory_dir
from tests.cli import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def packages() -> list[str]:
    from setuptools import find_packages
    return find_packages(str(ROOT), **{k: v for k, v in SETUPTOOLS["packages"]["find"].items() if k == "include"})


def test_every_subpackage_is_packaged():
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "fabfile").rglob("__init__.py")}
    assert on_disk <= set(packages())


def test_every_file_read_beside_the_code_is_package_data():
    """Templates, the lab guest's scripts: any file under fabfile/ that is not Python."""
    data = SETUPTOOLS["package-data"]
    missing = []
    for p in (ROOT / "fabfile").rglob("*"):
        if not p.is_file() or p.suffix in (".py", ".pyc") or "__pycache__" in p.parts:
            continue
        package = ".".join(p.parent.relative_to(ROOT).parts)
        if not any(fnmatch.fnmatch(p.name, g) for g in data.get(package, [])):
            missing.append(str(p.relative_to(ROOT)))
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def test_runtime_requirements_are_pinned_once_and_apart_from_the_tests():
    assert SETUPTOOLS["dynamic"]["dependencies"] == {"file": ["requirements-runtime.txt"]}
    runtime = [line for line in (ROOT / "requirements-runtime.txt").read_text().splitlines()
               if line and not line.startswith("#")]
    assert all("==" in line and not line.startswith("-") for line in runtime)
    full = (ROOT / "requirements.txt").read_text().splitlines()
    assert "-r requirements-runtime.txt" in full
    names = {line.split("==")[0].lower() for line in runtime}
    assert not names & {line.split("==")[0].lower() for line in full if "==" in line}, "a version pinned twice"
    assert not names & {"pytest", "hypothesis", "pytest-xdist", "jsonschema", "prometheus-client"}


def test_the_entry_point_is_invoke_s_program_with_every_task():
    module, _, func = PYPROJECT["project"]["scripts"]["lbtk"].partition(":")
    assert (module, func) == ("fabfile.tasks.program", "main")
    from fabfile.tasks import namespace
    from fabfile.tasks import program
    assert issubclass(program.Program, Program)
    assert callable(program.main) and namespace.task_names


def lbtk(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """The installed script's code (`from fabfile.tasks.program import main; main()`), run from
    `cwd` with the package importable as an installed one is."""
    code = "import sys; sys.argv[0] = 'lbtk'; from fabfile.tasks.program import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**env, "PYTHONPATH": str(ROOT), "LBTK_FORMAT": "plain"})


def test_lbtk_finds_inventories_by_flag_by_variable_and_in_the_current_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != INVENTORIES_VAR}
    r = lbtk(["--inventories", str(inventory_dir()), "check", "--env", "lab"], tmp_path, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "configuration is valid" in r.stdout
    r = lbtk(["check", "--env", "lab"], tmp_path, env)     # no inventories/ here: one line, exit 2
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "--inventories DIR" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "inventories").symlink_to(inventory_dir())
    r = lbtk(["--list"], tmp_path, env)
    assert r.returncode == 0 and "check" in r.stdout and "rollback" in r.stdout
    r = lbtk(["render", "--env", "lab", "--node", "node1"], tmp_path, env)     # found in ./inventories
    assert r.returncode == 0 and "vrrp_instance" in r.stdout, r.stderr
