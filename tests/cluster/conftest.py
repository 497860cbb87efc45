"""The lab cluster for integration tests: real nspawn nodes with sshd, keepalived, nginx.

Package scope: up once for tests/cluster, down afterwards (unless it was already up, or
LBTK_KEEP_LAB=1). Tests drive the toolkit through its real CLI, as an operator would.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from fabfile.model.loading import inventory_dir

from ..cli import inv, inv_json, shown  # noqa: F401 - the tests import them from here

__all__ = ["inv", "inv_json", "shown", "ROOT", "sh"]

ROOT = Path(__file__).resolve().parents[2]


TIMINGS: list[tuple[str, float]] = []


@pytest.fixture
def timings() -> list[tuple[str, float]]:
    """(what, seconds) a test measured, printed after the run (the closing notes quote them)."""
    return TIMINGS


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.write_sep("-", "lab tier timings")
        for k, v in TIMINGS:
            terminalreporter.write_line(f"{k:60s} {v:6.2f} s")


@pytest.fixture(scope="package")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, systemd-nspawn)")
    from fabfile.lab.hooks import spec_for
    from fabfile import lab as labmod
    spec = spec_for("lab")
    was_up = all(s.running for s in labmod.status(spec))
    if not was_up:
        labmod.build_rootfs(spec, progress=lambda s: None)
        labmod.up(spec, progress=lambda s: None)
    yield spec
    if not was_up and os.environ.get("LBTK_KEEP_LAB") != "1":
        labmod.down(spec, progress=lambda s: None)


@pytest.fixture(scope="package")
def deployed(lab):
    r = inv("deploy", "--env", "lab", check=True)
    return r


@pytest.fixture(scope="package")
def nodes(lab):
    """{name: its link} over the lab's real SSH, host keys verified (one node group, closed when
    the package's tests end)."""
    from fabfile.infra import remote
    from fabfile.model.context import Env
    from fabfile.model.loading import load
    invy, path = load("lab")
    with remote.nodes(Env(inv=invy, path=path, secrets={}, name="lab")) as group:
        yield {c.name: c for c in group}


@contextlib.contextmanager
def lab_variant(name: str, edit):
    """A temporary copy of the lab inventory, changed by `edit(data)`, as NAME.yaml in the session's
    inventories (beside lab.yaml: the same secret file); afterwards it is gone and the plain lab
    deployed again, as the next test expects."""
    import yaml
    data = yaml.safe_load((inventory_dir() / "lab.yaml").read_text())
    edit(data)
    path = inventory_dir() / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        yield name
    finally:
        path.unlink()
        (inventory_dir() / ".state" / f"{name}.owed.yaml").unlink(missing_ok=True)
        inv("deploy", "--env", "lab", check=True)


def sh(conn, cmd):
    from fabfile.infra import remote
    return remote.run(conn, cmd, check=False)
