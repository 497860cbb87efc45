"""The kernel tier finds its VM without the pid record: a `timeout` or `qemu-system-*` process whose
command line serves the tier's own share (`path=SHARE` of an -fsdev) is this tier's VM, whatever became
of qemu.pid. The boot loop keeps waiting on such a VM, lab.down stops it (no orphan qemu is left), a
process of another share, or with the share but another name, is never touched.

Real processes, not /proc text: GNU `timeout` around a bash renamed qemu-system-x86_64 (`exec -a`),
both carrying the -fsdev argument of a temporary share; every one is killed by its PID at the end."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fabfile.lab import LabNode, LabSpec, kernel

NODES = (LabNode("node1", "10.189.0.131"), LabNode("node2", "10.189.0.132"))


def ks_in(d: Path) -> kernel.KernelSpec:
    d.mkdir(parents=True, exist_ok=True)
    return kernel.KernelSpec(LabSpec(nodes=NODES, bridge="lbtk-kbr0", gateway="10.189.0.129/25"), d)


def fsdev(share: Path) -> list[str]:
    return ["-fsdev", f"local,id=share,path={share},security_model=none"]


def children(pid: int) -> list[int]:
    out = []
    for f in Path(f"/proc/{pid}/task").glob("*/children"):
        out += [int(c) for c in f.read_text().split()]
    return out


class FakeVM:
    """`timeout 60 <bash named qemu-system-x86_64> ... -fsdev ...path=SHARE...`: the shape of
    kernel._qemu_cmd; the "qemu" waits on a pipe, so closing it (or a signal) ends both."""

    def __init__(self, share: Path, wrapper: bool = True, name: str = "qemu-system-x86_64"):
        inner = ["bash", "-c", f'exec -a {name} bash -c "read -t 60" "$@"', "x", *fsdev(share)]
        self.p = subprocess.Popen((["timeout", "--signal=TERM", "--kill-after=10", "60"] if wrapper else []) + inner,
                                  stdin=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 10
        while True:                      # until the renamed bash runs (its exec done)
            pid = (children(self.p.pid) or [None])[0] if wrapper else self.p.pid
            if pid and Path(f"/proc/{pid}/cmdline").read_bytes().startswith(name.encode() + b"\0"):
                break
            assert time.monotonic() < deadline, "the fake qemu did not start"
            time.sleep(0.02)
        self.timeout = self.p.pid if wrapper else None
        self.qemu = pid

    def start(self, pid: int) -> int:
        return kernel._proc_stat(pid)[1]

    def gone(self) -> bool:
        return all(not kernel._alive(p) for p in (self.timeout, self.qemu) if p)

    def end(self) -> None:
        for p in (self.qemu, self.timeout):
            if p and kernel._alive(p):
                os.kill(p, signal.SIGKILL)
        self.p.stdin.close()
        self.p.wait(timeout=10)


@pytest.fixture
def vms():
    made: list[FakeVM] = []
    yield lambda *a, **kw: made.append(FakeVM(*a, **kw)) or made[-1]
    for vm in made:
        vm.end()


def test_vm_argv_is_the_tiers_own_command_line_only(tmp_path):
    ks = ks_in(tmp_path / "k")
    cmd = [a.encode() for a in kernel._qemu_cmd(ks, Path("/vmlinuz"), Path("/initrd"), "02:bd:fb:00:00:01")]
    assert kernel._vm_argv(cmd, ks.share) == "timeout"
    assert kernel._vm_argv(cmd[4:], ks.share) == "qemu"                  # what timeout runs
    assert kernel._vm_argv([b"/usr/bin/" + cmd[4]] + cmd[5:], ks.share) == "qemu"
    assert kernel._vm_argv(cmd, tmp_path / "other" / "share") is None     # another tier's share
    assert kernel._vm_argv(cmd, Path(str(ks.share)[:-1])) is None         # a prefix of it is not it
    assert kernel._vm_argv([b"sleep"] + cmd[1:], ks.share) is None         # the share, not the name
    assert kernel._vm_argv([b"qemu-system-x86_64", b"-m", b"2G"], ks.share) is None   # the name, not the share
    assert kernel._vm_argv([], ks.share) is None and kernel._vm_argv([b""], ks.share) is None


def test_vm_state_decides_on_the_record_then_the_processes():
    assert kernel.vm_state(True, {}) == "recorded"
    assert kernel.vm_state(False, {123: (4, "qemu")}) == "unrecorded"     # record lost: the VM still boots
    assert kernel.vm_state(False, {}) == "gone"                           # exited during boot


def test_vm_procs_finds_timeout_and_qemu_of_this_share_only(tmp_path, vms):
    ks = ks_in(tmp_path / "k")
    vm = vms(ks.share)
    other = vms(tmp_path / "other" / "share")                 # another share: never ours
    named = vms(ks.share, wrapper=False, name="sleepy")       # our share under another name: not a VM
    assert kernel._vm_procs(ks) == {vm.timeout: (vm.start(vm.timeout), "timeout"),
                                    vm.qemu: (vm.start(vm.qemu), "qemu")}
    assert other.qemu not in kernel._vm_procs(ks) and named.qemu not in kernel._vm_procs(ks)


def test_a_lost_record_leaves_the_vm_findable_and_stoppable(tmp_path, vms):
    """The flake's two shapes: the `timeout` wrapper killed (qemu lives on, reparented), and the record
    removed. Either way the boot loop sees a VM still running, and _stop_vm stops it."""
    ks = ks_in(tmp_path / "k")
    vm = vms(ks.share)
    other = vms(tmp_path / "other" / "share")
    kernel._record(ks, vm.timeout, "6.1.0-9-amd64")
    assert kernel._recorded(ks) is not None and kernel._recorded(ks)[0] == vm.timeout
    os.kill(vm.timeout, signal.SIGKILL)                 # the wrapper dies; its child does not
    vm.p.wait(timeout=10)
    rec, why = kernel._check_record(ks)
    assert rec is None and why == f"the recorded pid {vm.timeout} has exited"
    found = kernel._vm_procs(ks)
    assert found == {vm.qemu: (vm.start(vm.qemu), "qemu")}
    assert kernel.vm_state(rec is not None, found) == "unrecorded"
    lines: list[str] = []
    assert kernel._stop_vm(ks, lines.append) is True
    assert vm.gone() and kernel.vm_state(kernel._recorded(ks) is not None, kernel._vm_procs(ks)) == "gone"
    assert len(lines) == 1 and f"pid {vm.qemu} (qemu)" in lines[0] and why in lines[0]
    assert not other.gone()                              # another share's VM is left alone
    assert kernel._stop_vm(ks, lines.append) is False and len(lines) == 1

    vm2 = vms(ks.share)                                  # the record removed under a running VM
    ks.pidfile.unlink()
    assert kernel._check_record(ks) == (None, f"{ks.pidfile} is gone")
    assert set(kernel._vm_procs(ks)) == {vm2.timeout, vm2.qemu}
    assert kernel._stop_vm(ks, lines.append) is True and vm2.gone()
    assert f"pid {vm2.timeout} (timeout)" in lines[-1] and f"pid {vm2.qemu} (qemu)" in lines[-1]


def test_a_record_is_checked_by_start_time_and_may_name_qemu_itself(tmp_path, vms):
    ks = ks_in(tmp_path / "k")
    vm = vms(ks.share)
    kernel._record(ks, vm.qemu, "6.1.0-9-amd64")         # what up() records when only qemu was left
    assert kernel._recorded(ks) == (vm.qemu, vm.qemu)
    assert kernel.other_boot(ks, "6.1.0-9-amd64") is None and kernel._recorded_kver(ks) == "6.1.0-9-amd64"
    ks.pidfile.write_text(f'{{"pid": {vm.timeout}, "start": {vm.start(vm.timeout) + 1}}}\n')
    assert kernel._check_record(ks) == (None, f"pid {vm.timeout} started at tick {vm.start(vm.timeout)}, "
                                              f"the record says {vm.start(vm.timeout) + 1}")
    ks.pidfile.write_text(f'{{"pid": {os.getpid()}, "start": {kernel._proc_stat(os.getpid())[1]}}}\n')
    assert kernel._check_record(ks) == (None, f"the recorded pid {os.getpid()} runs something else")
    ks.pidfile.write_text("{")
    assert kernel._check_record(ks) == (None, f"{ks.pidfile} is unreadable (JSONDecodeError)")
