"""The production-shaped lab (inventories/lab-bastion.yaml): directors behind a bastion, no root login.

`lab.up --env lab-bastion` boots lb1..lb3 on the inner bridge (no host address: this machine cannot
reach them) and the bastion, with one leg on the lab bridge and one on the inner bridge, forwarding
nothing. Root login is refused everywhere; `ops` logs in with the lab key, has sudo on the
directors (NOPASSWD, a password on lb3, kept in inventories/secrets/lab-bastion.sudo), none on the
bastion. lab.up writes the ssh_config naming every node and the nodes' real host keys in
known_hosts, so SSH through the bastion verifies every key.

The module fixture holds /tmp/lbtk-lab.lock (the shared lab's lock; not taken again when a parent
process, `flock /tmp/lbtk-lab.lock pytest ...`, already holds it) from up to down, brings the lab
up (the four nodes boot at once) and takes it down at the end unless it was up already
(or LBTK_KEEP_LAB=1). Pure checks (spec validation, the ssh_config text) run everywhere.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from .requirements import missing_for_lab

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fabfile import lab  # noqa: E402
from fabfile.lab import LabBastion, LabError, LabNode, LabSpec, LabUsers, nspawn  # noqa: E402
from fabfile.model.loading import inventory_dir  # noqa: E402

ENV = "lab-bastion"
LOCK = Path(os.environ.get("LBTK_LAB_LOCK", "/tmp/lbtk-lab.lock"))
PW_NODES = ("lb3",)


def _spec():
    from fabfile.lab.hooks import spec_for
    return spec_for(ENV)


# ---------------------------------------------------------------- pure

def _pure_spec(tmp_path, **kw) -> LabSpec:
    base = dict(nodes=(LabNode("lb1", "10.189.0.71"), LabNode("lb2", "10.189.0.72")), lab_dir=tmp_path,
                name="lab-bastion", inner_bridge="lbtk-ibr0",
                bastion=LabBastion("bastion", "10.189.0.30", "10.189.0.94/27"),
                users=LabUsers("ops", ("lb2",), tmp_path / "sudo"), ssh_config=tmp_path / "cfg")
    base.update(kw)
    return LabSpec(**base)


def test_inventory_makes_the_bastion_spec():
    spec = _spec()
    assert [n.name for n in spec.nodes] == ["lb1", "lb2", "lb3"]
    assert (spec.bridge, spec.inner_bridge, spec.name) == ("lbtk-br0", "lbtk-ibr0", "lab-bastion")
    assert (spec.bastion.name, spec.bastion.host, spec.bastion.inner) == ("bastion", "10.189.0.30", "10.189.0.94/27")
    assert spec.users.name == "ops" and spec.users.sudo_password_nodes == PW_NODES
    assert spec.users.password_file == inventory_dir() / "secrets/lab-bastion.sudo"
    assert str(spec.ssh_config) == "/var/tmp/lbtk-lab/lab-bastion.ssh_config"
    lab.validate(spec)


@pytest.mark.parametrize("change,expect", [
    (dict(inner_bridge=None), "go together"),
    (dict(inner_bridge="lbtk-br0"), "is the lab bridge"),
    (dict(nodes=(LabNode("lb1", "10.189.0.11"),)), "not a usable address of the lab subnet 10.189.0.64/27"),
    (dict(nodes=(LabNode("lb1", "10.189.0.94"),)), "already used"),
    (dict(nodes=(LabNode("bastion", "10.189.0.71"),)), "twice"),
    (dict(bastion=LabBastion("bastion", "10.189.1.30", "10.189.0.94/27")), "not a usable address"),
    (dict(bastion=LabBastion("bastion", "10.189.0.30", "10.189.0.94")), "prefix length"),
    (dict(users=LabUsers("root")), "other than root"),
    (dict(users=LabUsers("ops", ("lb9",), Path("/x"))), "lb9, not a node"),
    (dict(users=LabUsers("ops", ("lb1",), None)), "password_file"),
])
def test_bad_bastion_spec_is_one_line_lab_error(tmp_path, change, expect):
    with pytest.raises(LabError, match=expect) as e:
        lab.up(_pure_spec(tmp_path, **change), progress=lambda s: None)
    assert "\n" not in str(e.value)


def test_ssh_config_names_every_node_without_proxyjump(tmp_path):
    text = nspawn._ssh_config_text(_pure_spec(tmp_path))
    hosts = _parse_ssh_config(text)
    assert list(hosts) == ["bastion", "lb1", "lb2"]
    assert hosts["bastion"]["hostname"] == "10.189.0.30" and hosts["lb2"]["hostname"] == "10.189.0.72"
    assert all(h["user"] == "ops" for h in hosts.values())
    assert "proxyjump" not in text.lower()


def test_sudo_password_is_made_once_0600(tmp_path):
    spec = _pure_spec(tmp_path)
    pw = nspawn._sudo_password(spec)
    assert len(pw) >= 16 and ":" not in pw
    assert (tmp_path / "sudo").stat().st_mode & 0o777 == 0o600
    assert nspawn._sudo_password(spec) == pw
    assert nspawn._sudo_password(replace(spec, users=LabUsers("ops"))) is None


def test_old_base_is_kept_while_a_node_runs_on_it(tmp_path, monkeypatch):
    """A rebuilt base sets the old one aside (base.old-N) while another lab's nodes run on it;
    it goes once no node does. Which base a node runs on: the inode of a file it never changes."""
    from fabfile.lab import rootfs
    for b in ("base", "base.old-1"):
        (tmp_path / b / rootfs.MARKER).parent.mkdir(parents=True)
        (tmp_path / b / rootfs.MARKER).write_text(b)
    root = tmp_path / "nodes/n1/root"
    (root / rootfs.MARKER).parent.mkdir(parents=True)
    os.link(tmp_path / "base.old-1" / rootfs.MARKER, root / rootfs.MARKER)     # n1 runs on base.old-1
    monkeypatch.setattr(rootfs, "_running_roots", lambda d: [root])
    assert rootfs.in_use(tmp_path, tmp_path / "base.old-1") and not rootfs.in_use(tmp_path, tmp_path / "base")
    rootfs.gc_old_bases(tmp_path, progress=lambda s: None)
    assert (tmp_path / "base.old-1").is_dir()
    (root / rootfs.MARKER).unlink()
    (root / rootfs.MARKER).write_text("copied up: cannot tell")                  # unknown: keep every base
    assert rootfs.in_use(tmp_path, tmp_path / "base.old-1") and rootfs.in_use(tmp_path, tmp_path / "base")
    monkeypatch.setattr(rootfs, "_running_roots", lambda d: [])
    rootfs.gc_old_bases(tmp_path, progress=lambda s: None)
    assert not (tmp_path / "base.old-1").exists() and (tmp_path / "base").is_dir()


def _parse_ssh_config(text: str) -> dict[str, dict[str, str]]:
    hosts: dict[str, dict[str, str]] = {}
    cur = None
    for line in text.splitlines():
        words = line.split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        key, val = words[0].lower(), words[1].strip() if len(words) > 1 else ""
        if key == "host":
            cur = hosts.setdefault(val, {})
        elif cur is not None:
            cur[key] = val
    return hosts


# ---------------------------------------------------------------- the lab lock and the real lab

def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return pids


def _held_by_ancestor(path: Path) -> bool:
    """A parent (`flock LOCK pytest ...`) holds the flock on `path` already."""
    st = os.stat(path)
    try:
        locks = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return False
    mine = _ancestors()
    for ln in locks:
        f = ln.split()
        if len(f) >= 6 and f[1] == "FLOCK" and f[3] == "WRITE":
            maj, mn, ino = f[5].split(":")
            if int(ino) == st.st_ino and os.makedev(int(maj, 16), int(mn, 16)) == st.st_dev \
                    and int(f[4]) in mine:
                return True
    return False


@contextlib.contextmanager
def _lab_lock():
    with open(LOCK, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if _held_by_ancestor(LOCK):
                yield
                return
            print(f"waiting for {LOCK} (someone else is using the lab)")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _skip_reason() -> str | None:
    return missing_for_lab()


@pytest.fixture(scope="module")
def blab():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    spec = _spec()
    with _lab_lock():
        was_up = all(s.running for s in lab.status(spec))
        lab.build_rootfs(spec, progress=print)        # about a minute once, then cached
        lines: list[str] = []
        t0 = time.monotonic()
        lab.up(spec, progress=lines.append)
        print(f"lab.up --env {ENV}: {time.monotonic() - t0:.1f}s ({'was up' if was_up else 'booted'})")
        try:
            yield spec, lines, was_up
        finally:
            if not was_up and os.environ.get("LBTK_KEEP_LAB") != "1":
                lab.down(spec, progress=print)


def _ssh(spec: LabSpec, target: str, cmd: str, jump: bool = True, input: str | None = None):
    c = lab.ssh_config(spec)
    argv = ["ssh", "-F", c["config_file"], "-i", c["key_filename"], "-o", f"UserKnownHostsFile={c['known_hosts']}",
            "-o", "StrictHostKeyChecking=yes", "-o", "GSSAPIAuthentication=no", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=5"]
    if jump:
        argv += ["-J", f"{spec.users.name}@{spec.bastion.name}"]
    return subprocess.run(argv + [target, cmd], capture_output=True, text=True, timeout=30,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)


def _sudo(spec: LabSpec, node: str, cmd: str):
    """`cmd` as root on a node through sudo: -n, or -S with the lab's password where sudo asks one."""
    if node in spec.users.sudo_password_nodes:
        pw = spec.users.password_file.read_text().strip()
        return _ssh(spec, node, f"sudo -S -p '' sh -c {shlex.quote(cmd)}", input=pw + "\n")
    return _ssh(spec, node, f"sudo -n sh -c {shlex.quote(cmd)}")


def _icmp_echo(host: str, timeout: float = 1.0) -> bool:
    """One ICMP echo from this machine (what `ping -c1 -W1 host` does; no ping binary needed)."""
    def csum(b: bytes) -> int:
        s = sum(struct.unpack(f"!{len(b) // 2}H", b))
        s = (s >> 16) + (s & 0xFFFF)
        return ~(s + (s >> 16)) & 0xFFFF
    ident, payload = os.getpid() & 0xFFFF, b"lbtk"
    pkt = struct.pack("!BBHHH", 8, 0, csum(struct.pack("!BBHHH", 8, 0, 0, ident, 1) + payload), ident, 1) + payload
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        try:
            s.sendto(pkt, (host, 0))
        except OSError:
            return False
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                data, addr = s.recvfrom(1500)
            except OSError:
                return False
            ihl = (data[0] & 0xF) * 4
            kind, _, _, got, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if kind == 0 and got == ident and addr[0] == host:
                return True
    return False


@pytest.mark.lab
def test_up_boots_the_four_nodes_at_once(blab):
    spec, lines, was_up = blab
    names = [n.name for n in spec.nodes] + [spec.bastion.name]
    if not was_up:
        assert sum("booted in" in ln for ln in lines) == 4, lines
        assert any(ln.startswith("lab: 4 node(s) up in") for ln in lines), lines
    st = lab.status(spec)
    assert [s.name for s in st] == names
    for s in st:
        assert (s.running, s.systemd_state, s.ssh_ok) == (True, "running", True), s


@pytest.mark.lab
def test_up_again_leaves_running_nodes_alone(blab):
    spec, _, _ = blab
    before = {s.name: s.pid for s in lab.status(spec)}
    lines: list[str] = []
    lab.up(spec, progress=lines.append)
    assert {s.name: s.pid for s in lab.status(spec)} == before
    assert sum("already running" in ln for ln in lines) == 4, lines


@pytest.mark.lab
def test_host_reaches_the_bastion_only(blab):
    spec, _, _ = blab
    # the lab bridge holds the lab subnet: nothing sent below can follow this machine's default route
    assert nspawn._bridge_ready(spec)
    assert _icmp_echo(spec.bastion.host)
    for n in spec.nodes:
        assert not _icmp_echo(n.host), f"this machine reaches {n.name} ({n.host})"
    assert not _icmp_echo(spec.bastion.inner.split("/")[0])          # its inner leg neither
    addrs = json.loads(subprocess.run(["ip", "-j", "addr", "show", "dev", spec.inner_bridge],
                                      capture_output=True, text=True, check=True).stdout)
    assert [a for a in addrs[0].get("addr_info", []) if a.get("family") == "inet"] == []
    with pytest.raises(OSError):
        socket.create_connection((spec.nodes[0].host, 22), timeout=2).close()


PROBE_NETNS, PROBE_VETH, PROBE_ADDR = "lbtk-tprobe", "lbtk-tprobe", "10.189.0.29"


def _sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=check)


def _reaches(netns: str, host: str, port: int = 22) -> bool:
    probe = ("import socket,sys\ns=socket.socket(); s.settimeout(2)\n"
             f"sys.exit(0 if s.connect_ex(('{host}', {port})) == 0 else 3)\n")
    return _sh("ip", "netns", "exec", netns, sys.executable, "-c", probe, check=False).returncode == 0


@pytest.mark.lab
def test_bastion_forwards_nothing(blab):
    """A peer on the lab bridge routes lb1's segment via the bastion, lb1 routes the peer back via
    the bastion: no connection while the bastion forwards nothing, one as soon as it would."""
    spec, _, _ = blab
    r = _ssh(spec, spec.bastion.name, "cat /proc/sys/net/ipv4/ip_forward; ip -4 -o addr show", jump=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "0"
    assert f"{spec.bastion.host}/24" in r.stdout and spec.bastion.inner in r.stdout
    inner_ip, inner_net = spec.bastion.inner.split("/")[0], lab.inner_network(spec).network
    lb1, bns = spec.nodes[0], f"lbtk-{spec.bastion.name}"
    _sh("ip", "netns", "del", PROBE_NETNS, check=False)
    _sh("ip", "netns", "add", PROBE_NETNS)
    try:
        _sh("ip", "link", "add", PROBE_VETH, "type", "veth", "peer", "name", "eth0", "netns", PROBE_NETNS)
        _sh("ip", "link", "set", PROBE_VETH, "master", spec.bridge, "up")
        _sh("ip", "-n", PROBE_NETNS, "addr", "add", f"{PROBE_ADDR}/24", "dev", "eth0")
        _sh("ip", "-n", PROBE_NETNS, "link", "set", "eth0", "up")
        _sh("ip", "-n", PROBE_NETNS, "route", "add", str(inner_net), "via", spec.bastion.host)
        _sh("ip", "-n", f"lbtk-{lb1.name}", "route", "add", f"{PROBE_ADDR}/32", "via", inner_ip)
        assert _reaches(PROBE_NETNS, spec.bastion.host)                 # the bastion itself: yes
        assert not _reaches(PROBE_NETNS, lb1.host), "the bastion forwarded to lb1"
        # control: the same path works once the bastion forwards (so the check above means something)
        _sh("ip", "netns", "exec", bns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        try:
            assert _reaches(PROBE_NETNS, lb1.host), "no path to lb1 even with forwarding on"
        finally:
            _sh("ip", "netns", "exec", bns, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        assert not _reaches(PROBE_NETNS, lb1.host)
    finally:
        _sh("ip", "-n", f"lbtk-{lb1.name}", "route", "del", f"{PROBE_ADDR}/32", check=False)
        _sh("ip", "netns", "del", PROBE_NETNS, check=False)
        _sh("ip", "link", "del", PROBE_VETH, check=False)


@pytest.mark.lab
def test_root_login_is_refused_everywhere(blab):
    spec, _, _ = blab
    r = _ssh(spec, f"root@{spec.bastion.name}", "true", jump=False)
    assert r.returncode == 255 and "Permission denied" in r.stderr, r.stderr
    for n in spec.nodes:
        r = _ssh(spec, f"root@{n.name}", "true")
        assert r.returncode == 255 and "Permission denied" in r.stderr, (n.name, r.stderr)
        r = _sudo(spec, n.name, "sshd -T | grep -i '^permitrootlogin'; ls -A /root/.ssh")
        assert r.stdout.split() == ["permitrootlogin", "no"], (n.name, r.stdout, r.stderr)


@pytest.mark.lab
def test_ops_has_sudo_nopasswd_except_on_the_password_nodes(blab):
    spec, _, _ = blab
    for n in spec.nodes:
        r = _ssh(spec, n.name, "hostname; id -un; sudo -n id -un")
        if n.name in PW_NODES:
            assert r.stdout.split() == [n.name, "ops"] and "password is required" in r.stderr, (n.name, r)
        else:
            assert r.returncode == 0 and r.stdout.split() == [n.name, "ops", "root"], (n.name, r.stderr)
    pw = spec.users.password_file.read_text().strip()
    for n in spec.nodes:
        if n.name in PW_NODES:
            r = _ssh(spec, n.name, "sudo -S -p '' id -un", input=pw + "\n")
            assert r.returncode == 0 and r.stdout.split() == ["root"], r.stderr
            r = _ssh(spec, n.name, "sudo -S -p '' id -un", input="not-the-password\n")
            assert r.returncode != 0 and "incorrect password" in r.stderr, r.stderr
    # the bastion is only a way in: ops logs in there, with no sudo
    r = _ssh(spec, spec.bastion.name, "id -un; sudo -n true", jump=False)
    assert r.stdout.split() == ["ops"] and r.returncode != 0, r


@pytest.mark.lab
def test_password_file_is_made_once_mode_0600(blab):
    spec, _, _ = blab
    f = spec.users.password_file
    assert f.stat().st_mode & 0o777 == 0o600
    before = f.read_text()
    lab.up(spec, progress=lambda s: None)
    assert f.read_text() == before


@pytest.mark.lab
def test_ssh_config_and_known_hosts_are_written(blab):
    spec, _, _ = blab
    hosts = _parse_ssh_config(spec.ssh_config.read_text())
    assert hosts[spec.bastion.name]["hostname"] == spec.bastion.host
    for n in spec.nodes:
        assert hosts[n.name]["hostname"] == n.host
    assert all(h["user"] == "ops" and "proxyjump" not in h for h in hosts.values())
    known = Path(lab.ssh_config(spec)["known_hosts"]).read_text().splitlines()
    for name, host in [(n.name, n.host) for n in spec.nodes] + [(spec.bastion.name, spec.bastion.host)]:
        pub = (spec.lab_dir / "nodes" / name / "root/etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
        assert f"{host} {pub[0]} {pub[1]}" in known, name


@pytest.mark.lab
def test_status_sees_the_nodes_through_the_bastion_netns(blab):
    spec, _, _ = blab
    # the same probe status uses: a socket made in the bastion's netns reaches lb1's sshd
    assert nspawn._ssh_banner(spec.nodes[0].host, netns=f"lbtk-{spec.bastion.name}")
    assert nspawn._bridge_ready(spec)                                     # stays on the lab bridge
    assert not nspawn._ssh_banner(spec.nodes[0].host, timeout=1.0)     # from this machine: no


@pytest.mark.lab
def test_another_lab_shares_the_dir_and_the_bridge(blab):
    """A second lab (a plain one, one node) comes up beside it on the same bridge and lab dir and
    goes again: the bastion lab's nodes, keys and bridge are left as they were."""
    spec, _, _ = blab
    other = LabSpec(nodes=(LabNode("coex1", "10.189.0.21", "02:bd:00:00:03:21"),), name="coexist")
    if any(s.running for s in lab.status(other)):
        pytest.skip("lab 'coexist' is up already")
    before = {s.name: s.pid for s in lab.status(spec)}
    kh = spec.lab_dir / "known_hosts"
    ours = {n.host for n in spec.nodes} | {spec.bastion.host}
    try:
        lab.up(other, progress=lambda s: None)
        assert ours | {"10.189.0.21"} <= {ln.split()[0] for ln in kh.read_text().splitlines()}
        c = lab.ssh_config(other)
        r = subprocess.run(["ssh", "-o", f"UserKnownHostsFile={c['known_hosts']}", "-o", "StrictHostKeyChecking=yes",
                            "-o", "GSSAPIAuthentication=no", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                            "-i", c["key_filename"], "root@10.189.0.21", "hostname"],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert r.stdout.strip() == "coex1", r.stderr
        with pytest.raises(LabError, match="node of the lab 'coexist'"):      # same name, other lab
            lab.up(LabSpec(nodes=(LabNode("coex1", "10.189.0.22"),), name="thief"), progress=lambda s: None)
        # same address, other name: refused before anything is made, naming the lab that holds it
        thief = LabSpec(nodes=(LabNode("coex9", "10.189.0.21"),), name="thief")
        with pytest.raises(LabError, match=r"coex9: 10\.189\.0\.21 on lbtk-br0 is taken by coex1 of the "
                                           r"running lab 'coexist' .*inv lab\.down --env coexist"):
            lab.up(thief, progress=lambda s: None)
        assert not (spec.lab_dir / "nodes/coex9").exists()
    finally:
        lab.down(other, progress=lambda s: None)
        shutil.rmtree(spec.lab_dir / "hostkeys/coex1", ignore_errors=True)
    assert not (spec.lab_dir / "nodes/coex1").exists()
    assert {s.name: s.pid for s in lab.status(spec)} == before
    assert all(s.ssh_ok for s in lab.status(spec))
    assert ours <= {ln.split()[0] for ln in kh.read_text().splitlines()}
    assert "10.189.0.21" not in kh.read_text()
    assert Path("/sys/class/net", spec.bridge, "brif", f"lbtk-{spec.bastion.name}").exists()


@pytest.mark.lab
def test_down_removes_the_nodes_bastion_and_inner_bridge(blab):
    spec, _, was_up = blab
    if was_up:
        pytest.skip("the bastion lab was up before these tests: left up")
    others = {s.name: s.pid for s in lab.status(_other_lab(spec)) if s.running}
    lab.down(spec, progress=lambda s: None)
    lab.down(spec, progress=lambda s: None)          # idempotent
    netns = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True).stdout
    names = {x["name"] for x in json.loads(netns or "[]")}
    mine = [n.name for n in spec.nodes] + [spec.bastion.name]
    assert not names & {f"lbtk-{n}" for n in mine}
    assert not Path("/sys/class/net", spec.inner_bridge).exists()
    assert not Path("/sys/class/net", f"lbtk-i{spec.bastion.name}").exists()
    assert not any((spec.lab_dir / "nodes" / n).exists() for n in mine)
    assert not spec.ssh_config.exists()
    kh = spec.lab_dir / "known_hosts"
    if kh.exists():
        hosts = {ln.split()[0] for ln in kh.read_text().splitlines()}
        assert not hosts & ({n.host for n in spec.nodes} | {spec.bastion.host})
    # another lab sharing the bridge (the plain lab) is left as it was
    assert {s.name: s.pid for s in lab.status(_other_lab(spec)) if s.running} == others
    assert Path("/sys/class/net", spec.bridge).exists() == bool(others)


def _other_lab(spec: LabSpec) -> LabSpec:
    from fabfile.lab.hooks import spec_for
    return spec_for("lab")
