"""The kernel tier for integration tests: Debian's kernel (real IPVS) under qemu TCG, the three
systemd nodes inside, reached over SSH on lbtk-kbr0 (inventories/kernel.yaml).

Package scope: up once (`inv lab.up --env kernel`, `inv deploy --env kernel`), down afterwards
unless it was already up (or LBTK_KEEP_LAB=1). Skipped when not root or the kernel tier is not set
up (`bash scripts/setup.sh --kernel`). `bash scripts/test.sh` (the README's test command, and CI)
sets LBTK_KERNEL_TESTS=1: then a missing install FAILS instead of being skipped. A bare `pytest`
without it skips them. Timings go to the terminal summary.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from .. import cli

ROOT = Path(__file__).resolve().parents[2]
ENV = "kernel"
TIMINGS: dict[str, float] = {}
STAYS_UP = {"lab": False}        # the lab outlives the tests (it was up before, or LBTK_KEEP_LAB=1)


def inv(*args, check=False, timeout=600):
    return cli.inv(*args, check=check, timeout=timeout)


def inv_json(*args, timeout=600):
    return cli.inv_json(*args, timeout=timeout)


def timed(name: str):
    class _T:
        def __enter__(self):
            self.t0 = time.monotonic()

        def __exit__(self, *exc):
            TIMINGS[name] = time.monotonic() - self.t0
    return _T()


def required() -> bool:
    # scripts/test.sh sets it; a bare `pytest` (a quick local run) skips the 7-minute tier
    return os.environ.get("LBTK_KERNEL_TESTS") == "1"


@pytest.fixture(scope="package")
def klab():
    from fabfile.lab import kernel
    why = None
    if os.geteuid() != 0:
        why = "the kernel tier needs root (tap, bridge, network namespaces, qemu)"
    elif not kernel.kernel_ready():
        why = "the kernel tier is not set up: run `bash scripts/setup.sh --kernel`"
    if not required():
        why = "kernel tier not requested: run `bash scripts/test.sh` (it sets LBTK_KERNEL_TESTS=1)"
    elif why:
        pytest.fail(f"{why} (LBTK_KERNEL_TESTS=1 requires the kernel tests)")
    if why:
        pytest.skip(why)
    from fabfile.tasks.lab import spec_for
    spec = spec_for(ENV)
    was_up = all(s.running for s in kernel.status(spec))
    try:
        with timed("lab.up --env kernel" + (" (was up)" if was_up else "")):
            times = kernel.up(spec, progress=lambda s: None)      # idempotent: waits for SSH if up
    except Exception:
        if not was_up:
            kernel.down(spec, progress=lambda s: None)       # no VM left behind by a failed boot
        raise
    STAYS_UP["lab"] = was_up or os.environ.get("LBTK_KEEP_LAB") == "1"
    TIMINGS.update({f"  {k} (VM boot -> ...)": v for k, v in times.items()})
    yield spec
    if not was_up and os.environ.get("LBTK_KEEP_LAB") != "1":
        with timed("lab.down --env kernel"):
            kernel.down(spec, progress=lambda s: None)


class Deployed:
    """Which inventory the kernel lab carries now; ensure(env) deploys only on a change."""

    def __init__(self):
        self.current = None

    def ensure(self, env: str = ENV) -> None:
        if self.current != env:
            self.current = None
            with timed(f"deploy --env {env}" + (" (again)" if f"deploy --env {env}" in TIMINGS else "")):
                inv("deploy", "--env", env, check=True)
            self.current = env


@pytest.fixture(scope="package")
def deployed(klab):
    d = Deployed()
    d.ensure(ENV)
    yield d
    if STAYS_UP["lab"] and d.current != ENV:  # a lab left up carries inventories/kernel.yaml
        d.ensure(ENV)


@pytest.fixture(scope="package")
def nodes(klab):
    """{name: fabric Connection} over real SSH into the VM's nodes, host keys verified."""
    from fabfile import remote
    from fabfile.inventory import load
    invy, _ = load(ENV)
    conns = {n.name: remote.connect(invy, n) for n in invy.nodes}
    yield conns
    remote.close(list(conns.values()))


def sh(conn, cmd, timeout=60):
    from fabfile import remote
    return remote.run(conn, cmd, check=False, timeout=timeout)


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.write_sep("-", "kernel tier timings")
        for k, v in TIMINGS.items():
            terminalreporter.write_line(f"{k:45s} {v:7.1f} s")


@pytest.fixture(autouse=True)
def _time_each_test(request):
    t0 = time.monotonic()
    yield
    TIMINGS[request.node.name] = time.monotonic() - t0
