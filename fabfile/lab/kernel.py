"""The kernel tier: the same lab, on Debian's kernel (which has IPVS), under qemu with TCG.

Host side only (the guest side is fabfile/lab/guest/). Layout under KERNEL_DIR
(/var/tmp/lbtk-kernel, override LBTK_KERNEL_DIR):

    kernel/                    Debian 12's linux-image package, dpkg -x'd by `scripts/setup.sh --kernel`
                               (boot/vmlinuz-KVER, lib/modules/KVER with modules.dep); never in /boot
    kernel-trixie/             Debian 13's, the same way (usr/lib/modules/KVER, modules .ko.xz); the
                               inventory's `lab.kernel` picks one (true: bookworm's, or a release name)
    initrd.gz + initrd.stamp   busybox + the 9p/overlay modules + guest/init (rebuilt when they change);
                               initrd-trixie.gz + initrd-trixie.stamp for Debian 13's kernel
    id_ed25519{,.pub}          the tier's SSH client key; known_hosts: the nodes' real host keys
    share/                     the guest's writable 9p share: spec.json, guest.env, run.sh (host ->
                               guest); stages, guest.log, known_hosts, hostkeys/ (guest -> host)
    qemu.pid, console.log      the VM: `timeout` + qemu, recorded with start times, killed by PID only;
                               a VM process the record lost is still found: a `timeout` or qemu-system-*
                               whose -fsdev serves this share (path=KERNEL_DIR/share: ours, whoever
                               its parent is now); `up` waits on it, `down` stops it (_vm_procs)

The VM: `-accel tcg` (never KVM), the host root read-only over 9p with tmpfs overlays, a virtio-net
NIC on tap `lbtk-ktap0` enslaved to the host bridge (the inventory's `lab.bridge`, host address
`lab.gateway`). Inside, guest.sh bridges eth0, loads IPVS, and boots the inventory's nodes with
fabfile.lab's own nspawn code; the host reaches them over real SSH like the plain lab's nodes.
Network rule: only the lab subnet, behind bridges and taps made here; no default route, no NAT.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fabfile.lab import (CLIENT_NETNS, DEFAULT_RELEASE, LabError, LabNode, LabSpec, NodeStatus, lab_path, last_line, locked, one_line, require_root, run, validate)
from fabfile.lab import rootfs
from fabfile.parsers.kernel_console import guest_crash
from fabfile.lab.nspawn import _alive, _bridge_ready, _link_kind, _proc_stat, _ssh_banner

GUEST_DIR = Path(__file__).resolve().parent / "guest"
REPO = Path(__file__).resolve().parents[2]
TAP = "lbtk-ktap0"
CLIENT_VETH = "lbtk-kclient"
GUEST_BRIDGE = "lbtk-gbr0"          # inside the VM (its own kernel: no clash with the host)
BOOT_TIMEOUT = float(os.environ.get("LBTK_KERNEL_BOOT_TIMEOUT", 600))   # VM + 3 nodes: ~50 s on a quiet 2-core box
SSH_BANNER_S = 5.0                  # sshd under TCG on a busy machine greets slowly
MAX_UP = int(os.environ.get("LBTK_KERNEL_MAX_UP", 4 * 3600))   # `timeout` around qemu: never runs away
MEMORY = os.environ.get("LBTK_KERNEL_MEM", "2G")
SMP = os.environ.get("LBTK_KERNEL_SMP", "2")
CPU = os.environ.get("LBTK_KERNEL_CPU", "max")
# Loaded in the guest before the nodes start (the nodes have no /lib/modules of their own).
GUEST_MODULES = ("virtio_net", "bridge", "veth", "overlay", "nf_conntrack", "ip_vs", "ip_vs_rr",
                 "ip_vs_wrr", "ip_vs_sh", "ip_vs_lc", "ip_vs_wlc", "nf_tables", "nft_compat",
                 "x_tables", "ip_tables", "iptable_mangle", "xt_mac", "xt_mark",
                 "nf_nat", "iptable_nat", "nft_chain_nat", "xt_MASQUERADE", "xt_ipvs",
                 "8021q")   # VLAN interfaces: the two-legged NAT test's inside segment (test_kernel_nat2.py)
# In the initramfs: what mounting the host root over 9p and the overlays needs (deps resolved).
INITRD_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
INITRD_RECIPE = 2
# how a module file may be compressed (Debian 13's are .ko.xz): the initramfs gets the plain .ko
# (busybox's insmod takes no compressed module); the guest's own modprobe (kmod) reads them as they are
COMPRESSED = {".ko.xz": "xz", ".ko.gz": "gz", ".ko.zst": "zst"}


def kernel_dir() -> Path:
    return Path(os.environ.get("LBTK_KERNEL_DIR", "/var/tmp/lbtk-kernel"))


@dataclass(frozen=True)
class KernelSpec:
    """A lab spec for the kernel tier: `lab` is what the guest builds (its nodes, the host bridge);
    `client`: an address for the client namespace CLIENT_NETNS on the host bridge (or None)."""
    lab: LabSpec
    kernel_dir: Path
    client: str | None = None
    release: str = DEFAULT_RELEASE     # whose kernel the VM boots (lab.kernel: true / a release name)
    client6: str | None = None         # the client namespace's IPv6 address (a dual-stack tier)

    @property
    def share(self) -> Path:
        return self.kernel_dir / "share"

    @property
    def pidfile(self) -> Path:
        return self.kernel_dir / "qemu.pid"

    @property
    def console(self) -> Path:
        return self.kernel_dir / "console.log"

    @property
    def guest_addr(self) -> str:
        """The guest bridge's address: the host gateway + 1 (the host bridge holds the gateway)."""
        gw = ipaddress.IPv4Interface(self.lab.gateway)
        return f"{gw.ip + 1}/{gw.network.prefixlen}"

    @property
    def guest_addr6(self) -> str | None:
        """The guest bridge's IPv6 address: the host's gateway6 + 1 (None: an IPv4-only tier)."""
        if self.lab.gateway6 is None:
            return None
        gw = ipaddress.IPv6Interface(self.lab.gateway6)
        return f"{gw.ip + 1}/{gw.network.prefixlen}"


def spec(nodes: tuple[LabNode, ...], bridge: str, gateway: str, client: str | None = None,
         release: str = DEFAULT_RELEASE, gateway6: str | None = None, client6: str | None = None) -> KernelSpec:
    ks = KernelSpec(LabSpec(nodes=nodes, bridge=bridge, gateway=gateway, gateway6=gateway6), lab_path(kernel_dir()),
                    client, release, client6)
    if client6 is not None and gateway6 is None:
        raise LabError("lab client6 needs lab.gateway6 (the IPv6 segment it sits on)")
    _check_segment(ipaddress.IPv4Interface(gateway), [n.host for n in nodes], ks.guest_addr, client, "")
    if gateway6 is not None:
        _check_segment(ipaddress.IPv6Interface(gateway6), [n.host6.split("/")[0] for n in nodes if n.host6],
                       ks.guest_addr6, client6, "6")
    return ks


def _check_segment(gw, hosts: list[str], guest_addr: str, client: str | None, suffix: str) -> None:
    """One family's addresses on the tier's segment: the VM's bridge (gateway + 1) is no node's, the
    client a free address of the subnet. `suffix`: "" (IPv4) or "6", as the inventory keys say."""
    taken = {ipaddress.ip_address(h) for h in hosts} | {gw.ip}
    guest = ipaddress.ip_address(guest_addr.split("/")[0])
    if guest in taken:
        raise LabError(f"{guest} (gateway{suffix} + 1) is the VM's own bridge address: no node may use it")
    if client is not None:
        c = ipaddress.ip_address(client)
        if c.version != gw.version or c not in gw.network or c in taken or c == guest:
            raise LabError(f"lab client{suffix} {client} must be a free address of the lab subnet {gw.network}")


def ssh_config(ks: KernelSpec) -> dict:
    return {"user": "root", "key_filename": str(ks.kernel_dir / "id_ed25519"),
            "known_hosts": str(ks.kernel_dir / "known_hosts")}


# ---------------------------------------------------------------- the kernel and the initramfs

def kernel_tree(kdir: Path, release: str = DEFAULT_RELEASE) -> Path:
    """Where setup.sh unpacks `release`'s kernel: kernel/ for bookworm (where clones before
    releases put it), kernel-R for any other release R."""
    return kdir / ("kernel" if release == DEFAULT_RELEASE else f"kernel-{release}")


def initrd_paths(kdir: Path, release: str = DEFAULT_RELEASE) -> tuple[Path, Path]:
    """(initramfs, its stamp) for `release`'s kernel: one each, so switching kernels rebuilds none."""
    stem = "initrd" if release == DEFAULT_RELEASE else f"initrd-{release}"
    return kdir / f"{stem}.gz", kdir / f"{stem}.stamp"


def installed_kernel(kdir: Path | None = None, release: str = DEFAULT_RELEASE) -> tuple[str, Path, Path]:
    """(KVER, vmlinuz, modules dir) of `release`'s kernel setup.sh --kernel unpacked; LabError if none.
    The modules sit in lib/modules (bookworm) or usr/lib/modules (trixie, merged /usr)."""
    tree = kernel_tree(lab_path(kdir or kernel_dir()), release)
    found = sorted((tree / "boot").glob("vmlinuz-*"))
    for vmlinuz in reversed(found):
        kver = vmlinuz.name[len("vmlinuz-"):]
        for mods in (tree / "lib/modules" / kver, tree / "usr/lib/modules" / kver):
            if (mods / "modules.dep").is_file():
                return kver, vmlinuz, mods
    raise LabError(f"the kernel tier is not set up for {release}'s kernel (no Debian kernel under {tree}): "
                   "run `bash scripts/setup.sh --kernel`")


def kernel_ready(release: str = DEFAULT_RELEASE) -> bool:
    try:
        installed_kernel(release=release)
    except LabError:
        return False
    return shutil.which("qemu-system-x86_64") is not None and Path("/bin/busybox").exists()


def module_files(mods: Path, names: tuple[str, ...]) -> list[str]:
    """Relative .ko paths for `names` and their dependencies, dependencies first (modules.dep)."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (mods / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        by_name[Path(path).name.split(".ko")[0].replace("-", "_")] = path
    builtin = set()
    if (mods / "modules.builtin").is_file():
        builtin = {Path(p).name.split(".ko")[0].replace("-", "_") for p in (mods / "modules.builtin").read_text().split()}
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for d in deps.get(path, []):
            visit(d)
        order.append(path)
    for n in names:
        key = n.replace("-", "_")
        if key in builtin:
            continue
        if key not in by_name:
            raise LabError(f"kernel module {n} not found in {mods}")
        visit(by_name[key])
    return order


def initrd_modules(files: list[str]) -> list[tuple[str, str, str | None]]:
    """For each module file (modules.dep paths, load order kept): (its path, its plain name in the
    initramfs `NAME.ko`, how to decompress it: None, "xz", "gz" or "zst"). LabError for another suffix."""
    plan = []
    for rel in files:
        name = Path(rel).name
        suffix = next((s for s in (".ko", *COMPRESSED) if name.endswith(s)), None)
        if suffix is None:
            raise LabError(f"kernel module {rel}: neither .ko nor one of {', '.join(COMPRESSED)}")
        plan.append((rel, name[:-len(suffix)] + ".ko", COMPRESSED.get(suffix)))
    return plan


def _plain_module(src: Path, codec: str | None) -> bytes:
    if codec is None:
        return src.read_bytes()
    if codec == "xz":
        import lzma
        return lzma.decompress(src.read_bytes())
    if codec == "gz":
        import gzip
        return gzip.decompress(src.read_bytes())
    if shutil.which("zstd") is None:
        raise LabError(f"{src}: zstd-compressed module and no zstd command (apt-get install zstd)")
    r = subprocess.run(["zstd", "-dc", str(src)], capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    if r.returncode != 0:
        raise LabError(f"zstd -d {src}: {last_line(r.stderr.decode(errors='replace'))}")
    return r.stdout


def build_initrd(progress=print, release: str = DEFAULT_RELEASE) -> Path:
    """KERNEL_DIR/initrd.gz (initrd-R.gz for release R's kernel): busybox, the boot modules
    (decompressed), guest/init. Cached; rebuilt when inputs change."""
    kdir = lab_path(kernel_dir())
    kver, _, mods = installed_kernel(kdir, release)
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        raise LabError("/bin/busybox missing: run `bash scripts/setup.sh --kernel` (busybox-static)")
    plan = initrd_modules(module_files(mods, INITRD_MODULES))
    init = (GUEST_DIR / "init").read_bytes()
    want = hashlib.sha256(json.dumps([INITRD_RECIPE, kver, plan, str(mods)]).encode() + init
                          + hashlib.sha256(busybox.read_bytes()).digest()).hexdigest()
    out, st = initrd_paths(kdir, release)
    if out.exists() and st.exists() and st.read_text().strip() == want:
        return out
    t0 = time.monotonic()
    tree = kdir / "initrd.tree"
    shutil.rmtree(tree, ignore_errors=True)
    for d in ("bin", "proc", "sys", "dev", "newroot", "mods"):
        (tree / d).mkdir(parents=True)
    shutil.copy2(busybox, tree / "bin/busybox")
    for rel, name, codec in plan:
        (tree / "mods" / name).write_bytes(_plain_module(mods / rel, codec))
    (tree / "mods/order").write_text("\n".join(name[:-len(".ko")] for _, name, _ in plan) + "\n")
    (tree / "moddir").write_text(str(mods) + "\n")      # the guest's /usr/lib/modules/KVER points there
    (tree / "init").write_bytes(init)
    (tree / "init").chmod(0o755)
    listing = run(["sh", "-c", "cd \"$1\" && find . | sort", "sh", str(tree)]).stdout
    with open(out.with_suffix(".tmp"), "wb") as f:
        cpio = subprocess.Popen([str(busybox), "cpio", "-o", "-H", "newc"], cwd=tree, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        gz = subprocess.Popen(["gzip", "-1"], stdin=cpio.stdout, stdout=f)
        cpio.stdout.close()
        cpio.communicate(listing.encode())
        gz.wait()
    if cpio.returncode != 0 or gz.returncode != 0:
        raise LabError("building the initramfs failed (busybox cpio | gzip)")
    out.with_suffix(".tmp").replace(out)
    st.write_text(want + "\n")
    shutil.rmtree(tree, ignore_errors=True)
    progress(f"kernel: initramfs for {kver} built in {time.monotonic() - t0:.1f}s ({len(plan)} modules)")
    return out


# ---------------------------------------------------------------- the VM process (recorded PIDs, or the share's own)

def _vm_argv(argv: list[bytes], share: Path) -> str | None:
    """"timeout" or "qemu" when `argv` is this tier's VM: a `timeout` or `qemu-system-*` whose
    arguments serve `share` (the option `path=SHARE` of an -fsdev, see _qemu_cmd). The share is the
    project's own directory, so such a process is ours whoever its parent is now; the name alone
    never is. None otherwise."""
    if not argv or not argv[0]:
        return None
    name = os.path.basename(argv[0])
    kind = "timeout" if name == b"timeout" else "qemu" if name.startswith(b"qemu-system-") else None
    want = b"path=" + os.fsencode(str(share))
    return kind if kind and any(want in a.split(b",") for a in argv[1:]) else None


def _vm_procs(ks: KernelSpec) -> dict[int, tuple[int, str]]:
    """{pid: (start time, "timeout" | "qemu")} of this tier's VM processes, found in /proc by their
    command line (_vm_argv) whether the record names them or not; zombies are not counted."""
    found = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            argv = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        kind = _vm_argv(argv, ks.share)
        st = _proc_stat(int(d)) if kind else None
        if st is not None and st[0] not in ("Z", "X"):
            found[int(d)] = (st[1], kind)
    return found


def _check_record(ks: KernelSpec) -> tuple[tuple[int, int | None] | None, str]:
    """((pid, qemu pid), "") if the recorded process still runs (start time and command line
    checked): the `timeout` around qemu, or qemu itself when only it was left to record; else
    (None, why not), which says what became of the record when a VM runs unrecorded."""
    try:
        data = json.loads(ks.pidfile.read_text())
        pid, start = int(data["pid"]), int(data["start"])
    except FileNotFoundError:
        return None, f"{ks.pidfile} is gone"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return None, f"{ks.pidfile} is unreadable ({type(e).__name__})"
    st = _proc_stat(pid)
    if st is None:
        return None, f"the recorded pid {pid} has exited"
    if not _alive(pid, start):
        return None, (f"the recorded pid {pid} has exited (a zombie)" if st[0] in ("Z", "X") else
                      f"pid {pid} started at tick {st[1]}, the record says {start}")
    try:
        kind = _vm_argv(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"), ks.share)
    except OSError:
        return None, f"the recorded pid {pid} has exited"
    if kind is None:
        return None, f"the recorded pid {pid} runs something else"
    return (pid, pid if kind == "qemu" else _qemu_child(pid)), ""


def _recorded(ks: KernelSpec) -> tuple[int, int | None] | None:
    """(pid, qemu pid) if the recorded VM process still runs: see _check_record."""
    return _check_record(ks)[0]


def vm_state(recorded: bool, found: dict) -> str:
    """What the boot loop makes of the VM: "recorded" (the record names a live VM), "unrecorded"
    (the record names none, but this tier's VM processes run: `found`, from _vm_procs; the VM just
    started, still booting), "gone" (no VM process at all: it exited)."""
    return "recorded" if recorded else "unrecorded" if found else "gone"


def _qemu_child(pid: int) -> int | None:
    try:
        for f in Path(f"/proc/{pid}/task").glob("*/children"):
            for c in f.read_text().split():
                if Path(f"/proc/{c}/exe").resolve().name.startswith("qemu-system"):
                    return int(c)
    except OSError:
        pass
    return None


def _qemu_cmd(ks: KernelSpec, vmlinuz: Path, initrd: Path, mac: str) -> list[str]:
    return ["timeout", "--signal=TERM", "--kill-after=10", str(MAX_UP),
            "qemu-system-x86_64", "-accel", "tcg,tb-size=256", "-machine", "q35", "-cpu", CPU,
            "-smp", SMP, "-m", MEMORY, "-display", "none", "-monitor", "none", "-no-reboot",
            "-serial", f"file:{ks.console}",
            "-kernel", str(vmlinuz), "-initrd", str(initrd),
            "-append", "console=ttyS0 quiet loglevel=1 panic=-1",
            "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
            "-fsdev", f"local,id=share,path={ks.share},security_model=none",
            "-device", "virtio-9p-pci,fsdev=share,mount_tag=share",
            "-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={mac}"]


def _start_vm(ks: KernelSpec, cmd: list[str], kver: str) -> int:
    """Start `timeout ... qemu` in its own session (it outlives this process); record its pid and
    the kernel it boots."""
    with open(ks.kernel_dir / "qemu.log", "ab") as log:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    _PROCS[p.pid] = p          # ours while this process lives: polled (reaped) in _stop_vm
    _record(ks, p.pid, kver)
    return p.pid


def _record(ks: KernelSpec, pid: int, kver: str) -> None:
    """qemu.pid: the VM's pid and start time, the kernel it boots, its nodes' releases (written
    whole: a reader never sees half a record)."""
    st = _proc_stat(pid)
    tmp = ks.pidfile.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": pid, "start": st[1] if st else 0, "kver": kver,
                               "releases": _node_releases(ks)}) + "\n")
    tmp.replace(ks.pidfile)


_PROCS: dict[int, subprocess.Popen] = {}


def _node_releases(ks: KernelSpec) -> dict[str, str]:
    return {n.name: n.release for n in ks.lab.nodes}


def _recorded_kver(ks: KernelSpec) -> str | None:
    """The kernel the recorded VM boots (None: none recorded, or a record from before kernels had names)."""
    try:
        return json.loads(ks.pidfile.read_text()).get("kver")
    except (OSError, ValueError, AttributeError):
        return None


def other_boot(ks: KernelSpec, kver: str) -> str | None:
    """Why the recorded VM is not the one `ks` wants (another kernel, nodes of another release), or
    None. A record from before kernels were recorded counts as bookworm's with bookworm nodes."""
    try:
        rec = json.loads(ks.pidfile.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict):
        return None
    if rec.get("kver", kver) != kver:
        return f"boots {rec['kver']}, not {kver}"
    want = _node_releases(ks)
    had = rec.get("releases", {n: DEFAULT_RELEASE for n in want})
    if had != want:
        diff = sorted(n for n in set(had) | set(want) if had.get(n) != want.get(n))
        return f"runs other nodes or releases ({', '.join(f'{n}: {had.get(n)} -> {want.get(n)}' for n in diff)})"
    return None


def booted(ks: KernelSpec) -> str | None:
    """The kernel version the running VM booted (None: no VM, or one started before this was recorded)."""
    return _recorded_kver(ks) if _recorded(ks) is not None else None


def _stop_vm(ks: KernelSpec, progress) -> bool:
    """Stop the recorded VM and any other process of this tier's VM (_vm_procs: a `timeout` or a
    qemu serving this tier's share, which the record lost): SIGTERM, up to 10 s, then SIGKILL (qemu
    first), each by PID with its start time checked. True if there was one."""
    rec, why = _check_record(ks)
    targets = _vm_procs(ks)
    if rec is not None:                     # the record's own, checked just now (the scan may race it)
        for p, kind in ((rec[1], "qemu"), (rec[0], "timeout" if rec[0] != rec[1] else "qemu")):
            if p and p not in targets and (st := _proc_stat(p)):
                targets[p] = (st[1], kind)
    lost = sorted(p for p in targets if rec is None or p not in rec)
    if lost:
        progress("kernel: stopping VM processes the record does not name ("
                 + (why or "it names another") + "): "
                 + ", ".join(f"pid {p} ({targets[p][1]})" for p in lost))
    if not targets:
        return False
    for p in targets:
        try:
            os.kill(p, signal.SIGTERM)          # timeout forwards it to qemu, which quits at once
        except ProcessLookupError:
            pass
    for sig in (signal.SIGKILL, None):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p, s) for p, (s, _) in targets.items()):
            for p in targets:
                if p in _PROCS:
                    _PROCS[p].poll()
            time.sleep(0.05)
        left = sorted((p for p, (s, _) in targets.items() if _alive(p, s)), key=lambda p: targets[p][1] != "qemu")
        if not left:
            return True
        if sig is None:
            raise LabError(f"kernel: VM pid(s) {', '.join(map(str, left))} survive SIGKILL")
        for p in left:
            progress(f"kernel: pid {p} ({targets[p][1]}) did not stop on SIGTERM, killing it")
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
    return True


# ---------------------------------------------------------------- host network

def _host_net_up(ks: KernelSpec) -> None:
    from fabfile.lab.nspawn import _bridge_up, _mac, _no_ipv6
    gw = validate(ks.lab)
    _bridge_up(ks.lab, gw)
    if _link_kind(TAP) is not None:
        run(["ip", "link", "del", TAP], check=False)
    run(["ip", "tuntap", "add", "dev", TAP, "mode", "tap"], what=f"creating tap {TAP}")
    _no_ipv6(TAP)
    run(["ip", "link", "set", TAP, "address", _mac("02:bd:fc", TAP), "master", ks.lab.bridge, "up"],
        what=f"attaching {TAP} to {ks.lab.bridge}")


def _client_up(ks: KernelSpec) -> None:
    """The client namespace: a veth on the host bridge, the lab subnet only, no default route."""
    from fabfile.lab.nspawn import _mac, _no_ipv6
    if ks.client is None:
        return
    gw = ipaddress.IPv4Interface(ks.lab.gateway)
    from fabfile.lab.nspawn import _ipv6_on
    run(["ip", "netns", "add", CLIENT_NETNS], what=f"ip netns add {CLIENT_NETNS}")
    if ks.client6:
        _ipv6_on("default", CLIENT_NETNS)
    else:
        _no_ipv6("default", CLIENT_NETNS)
    run(["ip", "link", "add", CLIENT_VETH, "address", _mac("02:bd:fc", CLIENT_VETH), "type", "veth", "peer",
         "name", "eth0", "address", _mac("02:bd:fa", CLIENT_NETNS), "netns", CLIENT_NETNS],
        what=f"creating veth {CLIENT_VETH}")
    _no_ipv6(CLIENT_VETH)
    run(["ip", "link", "set", CLIENT_VETH, "master", ks.lab.bridge, "up"], what=f"attaching {CLIENT_VETH}")
    run(["ip", "-n", CLIENT_NETNS, "-batch", "-"], what=f"addressing {CLIENT_NETNS}",
        input=f"link set lo up\naddr add {ks.client}/{gw.network.prefixlen} dev eth0\nlink set eth0 up\n"
              + (f"addr add {ks.client6}/{ipaddress.IPv6Interface(ks.lab.gateway6).network.prefixlen} dev eth0 nodad\n"
                 if ks.client6 else ""))


def _client_down() -> None:
    if Path("/run/netns", CLIENT_NETNS).exists():
        run(["ip", "netns", "del", CLIENT_NETNS], what=f"ip netns del {CLIENT_NETNS}")
    if _link_kind(CLIENT_VETH) is not None:
        run(["ip", "link", "del", CLIENT_VETH], check=False)


def _host_net_down(ks: KernelSpec) -> None:
    _client_down()
    if _link_kind(TAP) is not None:
        run(["ip", "link", "del", TAP], what=f"deleting {TAP}")
    if _link_kind(ks.lab.bridge) == "bridge":
        run(["ip", "link", "del", ks.lab.bridge], what=f"deleting bridge {ks.lab.bridge}")


# ---------------------------------------------------------------- the share (host <-> guest)

def _write_share(ks: KernelSpec, base_lab: LabSpec, key: Path) -> None:
    sh = ks.share
    sh.mkdir(parents=True, exist_ok=True, mode=0o700)
    for f in ("stages", "guest.log", "known_hosts", "stop", "ready"):
        (sh / f).unlink(missing_ok=True)
    gw = ipaddress.IPv4Interface(ks.lab.gateway)
    (sh / "spec.json").write_text(json.dumps({
        "nodes": [{"name": n.name, "host": n.host, "mac": n.mac, "release": n.release, "host6": n.host6}
                  for n in ks.lab.nodes],
        "guest_bridge": GUEST_BRIDGE, "guest_addr": ks.guest_addr, "guest_addr6": ks.guest_addr6,
        "host_gateway": str(gw.ip),
        "bases": {r: {"base": str(rootfs.base_dir(base_lab, r)), "stamp": str(rootfs.stamp_path(base_lab, r))}
                  for r in rootfs.spec_releases(base_lab)},
        "client_key": str(key), "boot_timeout": BOOT_TIMEOUT}, indent=1) + "\n")
    _seed_host_keys(ks)
    (sh / "guest.env").write_text(
        f"GUEST_BRIDGE={shlex.quote(GUEST_BRIDGE)}\nGUEST_ADDR={shlex.quote(ks.guest_addr)}\n"
        f"GUEST_ADDR6={shlex.quote(ks.guest_addr6 or '')}\n"
        f"HOSTNAME=lbtk-kvm\nMODULES={shlex.quote(' '.join(GUEST_MODULES))}\n")
    (sh / "run.sh").write_text(f"exec /bin/bash {shlex.quote(str(GUEST_DIR / 'guest.sh'))} "
                               f"{shlex.quote(str(REPO))}\n")


def _seed_host_keys(ks: KernelSpec) -> None:
    """Each node's SSH host keys, made on the host (well under a second) when the share has none
    yet; the guest keeps them (share/hostkeys/NODE, as the plain lab's hostkeys/). Left to the
    guest, `ssh-keygen -A` (RSA 3072 under TCG) takes over a minute on a busy machine, past the
    node's 60 s budget: a first boot failed so."""
    for n in ks.lab.nodes:
        dst = ks.share / "hostkeys" / n.name
        if dst.is_dir() and any(dst.glob("ssh_host_*_key")):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "etc/ssh").mkdir(parents=True)
            run(["ssh-keygen", "-A", "-f", tmp], what=f"{n.name}: ssh-keygen -A")
            dst.mkdir(parents=True, exist_ok=True, mode=0o700)
            for f in sorted((Path(tmp) / "etc/ssh").glob("ssh_host_*")):
                shutil.copyfile(f, dst / f.name)
                (dst / f.name).chmod(0o644 if f.name.endswith(".pub") else 0o600)


def _stages(ks: KernelSpec) -> list[str]:
    try:
        return [ln for ln in (ks.share / "stages").read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return []


def _client_key(ks: KernelSpec) -> Path:
    key = ks.kernel_dir / "id_ed25519"
    if not key.exists() or not key.with_suffix(".pub").exists():
        for p in (key, key.with_suffix(".pub")):
            p.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lbtk-kernel", "-f", str(key)],
            what="generating the kernel tier's SSH key")
    return key


# ---------------------------------------------------------------- public interface

class GuestCrashed(LabError):
    """The guest kernel died while booting (an Oops or a panic on the console)."""


# Debian 13's kernel under qemu's multi-threaded TCG now and then takes an Oops on an int3 the
# kernel had left while patching its own code (static calls, jump labels) on the other vCPU: TCG's
# cross-modifying-code race, seen at ~2 s of boot in sched_clock_idle_wakeup_event (console
# captured in CI). Not a product fault; the VM panics (panic=-1, -no-reboot) and is booted again.
BOOT_ATTEMPTS = 3


def _boot(ks: KernelSpec, vmlinuz: Path, initrd: Path, kver: str, timeout: float, times: dict,
          progress) -> tuple[float, str | None]:
    """Start the VM and wait for its nodes: (start time, why its record was lost or None).
    GuestCrashed when the guest kernel died while booting."""
    from fabfile.lab.nspawn import _mac
    t0 = time.monotonic()
    pid = _start_vm(ks, _qemu_cmd(ks, vmlinuz, initrd, _mac("02:bd:fb", "guest-eth0")), kver)
    progress(f"kernel: booting Debian {kver} under qemu TCG (pid {pid}, {SMP} vCPUs, {MEMORY})")
    seen, unrecorded = 0, None
    deadline = t0 + timeout
    while True:
        stages = _stages(ks)
        for ln in stages[seen:]:
            _, _, msg = ln.partition(" ")
            now = time.monotonic() - t0
            if msg.startswith("userspace up"):
                times["boot_s"] = now
            if msg == "READY":
                times["up_s"] = now
            elif not msg.startswith("FAILED"):
                progress(f"kernel: [{now:5.1f}s] {msg}")
        seen = len(stages)
        failed = next((m for _, _, m in (ln.partition(" ") for ln in stages) if m.startswith("FAILED")), None)
        if failed is not None:
            raise LabError(f"kernel tier guest: {failed} (logs: {ks.share}/guest.log, {ks.console}; "
                           "`inv lab.down --env kernel` cleans up)")
        if "up_s" in times:
            break
        rec, why = _check_record(ks)
        found = _vm_procs(ks) if rec is None else {}
        state = vm_state(rec is not None, found)
        if state == "gone":
            time.sleep(0.5)                      # what qemu wrote last reaches the console file
            console = _read_console(ks)
            crash = guest_crash(console)
            if crash:
                raise GuestCrashed(f"the guest kernel crashed while booting ({crash})")
            raise LabError(f"the VM exited during boot: {last_line(console[-2000:])} "
                           f"(console: {ks.console}, qemu: {ks.kernel_dir}/qemu.log"
                           + (f"; {why}" if unrecorded else "") + ")")
        if state == "unrecorded" and unrecorded is None:
            unrecorded = why
            progress(f"kernel: the VM's record lost it ({why}), but the VM this run started still runs "
                     f"({', '.join(f'pid {p} ({k})' for p, (_, k) in sorted(found.items()))}): waiting on")
        if time.monotonic() > deadline:
            raise LabError(f"the VM's nodes are not up after {timeout:.0f}s (last stage: "
                           f"{stages[-1].partition(' ')[2] if stages else 'none'}; logs: {ks.share}/guest.log, "
                           f"{ks.console}; `inv lab.down --env kernel` cleans up)")
        time.sleep(0.1)
    return t0, unrecorded


@one_line
def up(ks: KernelSpec, progress=print, timeout: float = BOOT_TIMEOUT) -> dict:
    """Boot the VM and its nodes; returns measured timings (s). Idempotent: a running VM is kept."""
    validate(ks.lab)
    require_root("the kernel tier")
    for tool in ("qemu-system-x86_64", "timeout", "ip", "ssh-keygen"):
        if shutil.which(tool) is None:
            raise LabError(f"{tool}: command not found (run `bash scripts/setup.sh --kernel`)")
    kver, vmlinuz, _ = installed_kernel(ks.kernel_dir, ks.release)
    base_lab = LabSpec(nodes=ks.lab.nodes)           # the plain lab's dir holds the shared base rootfs
    rootfs.build_rootfs(base_lab, progress)
    initrd = build_initrd(progress, ks.release)
    times: dict[str, float] = {}
    with locked(ks.kernel_dir):
        if _recorded(ks) is not None and other_boot(ks, kver):
            progress(f"kernel: the running VM {other_boot(ks, kver)}: restarting it")
        elif _recorded(ks) is not None and _bridge_ready(ks.lab) and \
                any(ln.endswith(" READY") for ln in _stages(ks)):
            # up already: SSH may answer slowly on a loaded machine, which is no reason to reboot
            if ks.client is not None and not Path("/run/netns", CLIENT_NETNS).exists():
                _client_up(ks)
            _wait_ssh(ks, time.monotonic() + 60)
            progress("kernel: VM already running with every node up")
            return times
        _stop_vm(ks, progress)                       # a half-started VM of an earlier run
        _host_net_down(ks)
        key = _client_key(ks)
        (ks.kernel_dir / "known_hosts").unlink(missing_ok=True)
        _host_net_up(ks)
        _client_up(ks)
        for attempt in range(1, BOOT_ATTEMPTS + 1):
            _write_share(ks, base_lab, key)          # fresh stages for each boot
            ks.console.write_text("")
            try:
                t0, unrecorded = _boot(ks, vmlinuz, initrd, kver, timeout, times, progress)
                break
            except GuestCrashed as e:
                _stop_vm(ks, progress)
                if attempt == BOOT_ATTEMPTS:
                    raise LabError(f"{e} — {attempt} boots in a row crashed (console: {ks.console})") from None
                progress(f"kernel: {e}: booting again ({attempt + 1} of {BOOT_ATTEMPTS})")
        deadline = t0 + timeout
        if unrecorded is not None and _recorded(ks) is None and (found := _vm_procs(ks)):
            keep = min(found, key=lambda p: found[p][1] != "timeout")     # the `timeout` if it is left
            _record(ks, keep, kver)
            progress(f"kernel: recorded the VM again (pid {keep}, {found[keep][1]})")
        shutil.copyfile(ks.share / "known_hosts", ks.kernel_dir / "known_hosts")
        _wait_ssh(ks, deadline)
        times["ssh_s"] = time.monotonic() - t0
    progress(f"kernel: guest userspace after {times.get('boot_s', 0):.1f}s, {len(ks.lab.nodes)} nodes up "
             f"after {times['up_s']:.1f}s, SSH from the host after {times['ssh_s']:.1f}s")
    return times


def _wait_ssh(ks: KernelSpec, deadline: float) -> None:
    for n in ks.lab.nodes:
        while not _ssh_banner(n.host, SSH_BANNER_S):
            if time.monotonic() > deadline:
                raise LabError(f"{n.name}: no SSH answer from the host at {n.host}:22 (the VM says it is up; "
                               "`inv lab.down --env kernel` then `inv lab.up --env kernel`)")
            time.sleep(0.2)


def _read_console(ks: KernelSpec) -> str:
    try:
        return ks.console.read_text(errors="replace")
    except OSError:
        return ""


@one_line
def down(ks: KernelSpec, progress=print) -> None:
    """Kill the VM (its recorded PID, and any process of it the record lost: _stop_vm), remove tap and
    bridge and the run's files (host keys are kept)."""
    validate(ks.lab)
    require_root("the kernel tier")
    t0 = time.monotonic()
    if not ks.kernel_dir.exists() and _link_kind(ks.lab.bridge) is None and _link_kind(TAP) is None \
            and not Path("/run/netns", CLIENT_NETNS).exists() and not _vm_procs(ks):
        progress("kernel: already down")
        return
    with locked(ks.kernel_dir):
        stopped = _stop_vm(ks, progress)
        made = _link_kind(TAP) is not None or _link_kind(ks.lab.bridge) is not None or \
            Path("/run/netns", CLIENT_NETNS).exists()
        _host_net_down(ks)
        ks.pidfile.unlink(missing_ok=True)
        (ks.kernel_dir / "known_hosts").unlink(missing_ok=True)
        for f in ("known_hosts", "ready", "stop"):
            (ks.share / f).unlink(missing_ok=True)
    progress(f"kernel: VM stopped and network removed in {time.monotonic() - t0:.1f}s" if stopped or made
             else "kernel: already down")


@one_line
def status(ks: KernelSpec) -> list[NodeStatus]:
    """Per node: the VM running (its qemu pid; found by its share when its record is lost), SSH
    answering from the host."""
    validate(ks.lab)
    rec = _recorded(ks)
    if rec is None and (found := _vm_procs(ks)):
        by_kind = {k: p for p, (_, k) in sorted(found.items(), reverse=True)}
        rec = (by_kind.get("timeout") or by_kind["qemu"], by_kind.get("qemu"))
    bridge_ok = _bridge_ready(ks.lab)
    ready = any(ln.endswith(" READY") for ln in _stages(ks)) if rec else False
    out = []
    for n in ks.lab.nodes:
        ssh = bool(rec) and bridge_ok and _ssh_banner(n.host, SSH_BANNER_S)
        state = ("running" if ssh else "booting") if rec and ready else ("booting" if rec else "offline")
        out.append(NodeStatus(n.name, n.host, rec is not None, (rec[1] or rec[0]) if rec else None,
                              f"{state} (in VM)", ssh))
    return out
