"""The kernel tier for integration tests: Debian's kernel (real IPVS) under qemu TCG, the three
systemd nodes inside, reached over SSH on lbtk-kbr0 (inventories/kernel.yaml).

Each kernel in turn: every test on Debian 12's (inventories/kernel.yaml), then the tests marked
`both_kernels` (the IPVS essentials) on Debian 13's (inventories/kernel-trixie.yaml: the same VM
booted on trixie's kernel); a test's id says which ([bookworm], [trixie]). LBTK_KERNEL_RELEASES
(default "bookworm trixie", as for `scripts/setup.sh --kernel`) names the kernels tested.

Package scope, per kernel: up once (`inv lab.up --env ENV`, `inv deploy --env ENV`), down afterwards
unless it was already up on that kernel (or LBTK_KEEP_LAB=1). Skipped when not root or the kernel tier is not set
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
ENV = "kernel"                     # the inventory every test reads its nodes and VIP from
KERNEL_ENVS = {"bookworm": "kernel", "trixie": "kernel-trixie"}   # the inventory booting each kernel
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


def tested_kernels(marked_both: bool) -> list[str]:
    """The kernels a test runs on: bookworm's; trixie's too for a `both_kernels` test; only those
    LBTK_KERNEL_RELEASES names."""
    wanted = os.environ.get("LBTK_KERNEL_RELEASES", "bookworm trixie").split()
    return [r for r in KERNEL_ENVS if r in wanted and (marked_both or r == "bookworm")]


def pytest_generate_tests(metafunc):
    if "klab" in metafunc.fixturenames:
        releases = tested_kernels(metafunc.definition.get_closest_marker("both_kernels") is not None)
        metafunc.parametrize("klab", releases, indirect=True, scope="package", ids=releases)


class KernelLab:
    """The running kernel lab: its spec, the kernel's release and the inventory that boots it."""

    def __init__(self, spec, release: str):
        self.spec, self.release, self.env = spec, release, KERNEL_ENVS[release]


@pytest.fixture(scope="package")
def klab(request):
    from fabfile.lab import kernel
    release = request.param
    why = None
    if os.geteuid() != 0:
        why = "the kernel tier needs root (tap, bridge, network namespaces, qemu)"
    elif not kernel.kernel_ready(release):
        why = f"the kernel tier is not set up for {release}'s kernel: run `bash scripts/setup.sh --kernel`"
    if not required():
        why = "kernel tier not requested: run `bash scripts/test.sh` (it sets LBTK_KERNEL_TESTS=1)"
    elif why:
        pytest.fail(f"{why} (LBTK_KERNEL_TESTS=1 requires the kernel tests)")
    if why:
        pytest.skip(why)
    from fabfile.lab.hooks import spec_for
    env = KERNEL_ENVS[release]
    spec = spec_for(env)
    was_up = all(s.running for s in kernel.status(spec)) and kernel.other_boot(
        spec, kernel.installed_kernel(release=release)[0]) is None     # up, on this kernel with these nodes
    try:
        with timed(f"lab.up --env {env}" + (" (was up)" if was_up else "")):
            times = kernel.up(spec, progress=lambda s: None)      # idempotent: waits for SSH if up
    except Exception:
        if not was_up:
            kernel.down(spec, progress=lambda s: None)       # no VM left behind by a failed boot
        raise
    STAYS_UP["lab"] = was_up or os.environ.get("LBTK_KEEP_LAB") == "1"
    TIMINGS.update({f"  {k} ({release} VM boot -> ...)": v for k, v in times.items()})
    yield KernelLab(spec, release)
    if not was_up and os.environ.get("LBTK_KEEP_LAB") != "1":
        with timed(f"lab.down --env {env}"):
            kernel.down(spec, progress=lambda s: None)


class Deployed:
    """Which inventory the kernel lab carries now; ensure(env) deploys only on a change. `env`: the
    inventory of the kernel the VM boots (kernel or kernel-trixie), the one ensure() deploys by default."""

    def __init__(self, env: str):
        self.current, self.env, self.release = None, env, next(r for r, e in KERNEL_ENVS.items() if e == env)

    def ensure(self, env: str | None = None) -> None:
        env = env or self.env
        if self.current != env:
            self.current = None
            name = f"deploy --env {env}" + (f" ({self.release} kernel)" if self.release != "bookworm" else "")
            with timed(name + (" (again)" if name in TIMINGS else "")):
                inv("deploy", "--env", env, check=True)
            self.current = env


@pytest.fixture(scope="package")
def deployed(klab):
    d = Deployed(klab.env)
    d.ensure()
    yield d
    if STAYS_UP["lab"] and d.current != klab.env:  # a lab left up carries its own kernel's inventory
        d.ensure()


@pytest.fixture(scope="package")
def nodes(klab):
    """{name: its link} over real SSH into the VM's nodes, host keys verified (one node group,
    closed when the package's tests end)."""
    from fabfile.infra import remote
    from fabfile.model.context import Env
    from fabfile.model.loading import load
    invy, path = load(ENV)
    with remote.nodes(Env(inv=invy, path=path, secrets={}, name=ENV)) as group:
        yield {c.name: c for c in group}


def sh(conn, cmd, timeout=60):
    from fabfile.infra import remote
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
