"""The local lab (fabfile/lab/): real systemd nodes in network namespaces on the lab bridge.

Pure checks (names, spec validation, apt sources parsing) run everywhere. The `lab` tests bring
two nodes of the real lab up (root, systemd-nspawn, debootstrap; the rootfs is built once and
cached under LBTK_LAB_DIR), check them through SSH with the lab's key and known_hosts, break
one, and take everything down again. They skip when the lab is already up.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .requirements import missing_for_lab

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fabfile import lab  # noqa: E402
from fabfile.lab import LabError, LabNode, LabSpec, ifname, nspawn, rootfs  # noqa: E402

NODES = (LabNode("node1", "10.189.0.11", "02:bd:00:00:01:11"),
         LabNode("node2", "10.189.0.12", "02:bd:00:00:01:12"))
SPEC = LabSpec(nodes=NODES)            # the real constants: bridge lbtk-br0, 10.189.0.1/24


# ---------------------------------------------------------------- pure

def test_ifname_fits_ifnamsiz_deterministically():
    assert ifname("lbtk-", "node1") == "lbtk-node1"
    long = ifname("lbtk-", "a-very-long-node-name")
    assert len(long) <= 15 and long == ifname("lbtk-", "a-very-long-node-name")
    assert long != ifname("lbtk-", "a-very-long-node-nam3")


@pytest.mark.parametrize("nodes,gateway,bridge,expect", [
    ((), "10.189.0.1/24", "lbtk-br0", "no nodes"),
    ((LabNode("n1", "10.189.0.11"), LabNode("n1", "10.189.0.12")), "10.189.0.1/24", "lbtk-br0", "twice"),
    ((LabNode("n1", "10.189.0.11"), LabNode("n2", "10.189.0.11")), "10.189.0.1/24", "lbtk-br0", "already used"),
    ((LabNode("n1", "10.189.0.1"),), "10.189.0.1/24", "lbtk-br0", "already used"),
    ((LabNode("n1", "192.168.189.135"),), "10.189.0.1/24", "lbtk-br0", "not a usable address"),
    ((LabNode("n_1", "10.189.0.11"),), "10.189.0.1/24", "lbtk-br0", "hostname label"),
    ((LabNode("n1", "10.189.0.11", "01:00:5e:00:00:01"),), "10.189.0.1/24", "lbtk-br0", "unicast MAC"),
    ((LabNode("n1", "10.189.0.11"),), "10.189.0.1", "lbtk-br0", "prefix length"),
    ((LabNode("n1", "10.189.0.11"),), "10.189.0.1/24", "a-bridge-name-too-long", "bridge name"),
])
def test_bad_spec_is_one_line_lab_error(nodes, gateway, bridge, expect):
    spec = LabSpec(nodes=nodes, gateway=gateway, bridge=bridge, lab_dir=Path("/nonexistent"))
    with pytest.raises(LabError, match=expect) as e:
        lab.up(spec, progress=lambda s: None)
    assert "\n" not in str(e.value)


V6 = "fd00:189::1/64"


@pytest.mark.parametrize("nodes,gateway6,expect", [
    ((LabNode("n1", "10.189.0.11", host6="fd00:189::11/64"),), None, "no gateway6"),
    ((LabNode("n1", "10.189.0.11"),), "fd00:189::1", "prefix length up to"),
    ((LabNode("n1", "10.189.0.11"),), "fe80::1/64", "routable-scope"),
    ((LabNode("n1", "10.189.0.11"),), "10.189.0.1/24", "not an IPv6 address"),
    ((LabNode("n1", "10.189.0.11", host6="fd00:189::1/64"),), V6, "already used"),
    ((LabNode("n1", "10.189.0.11", host6="fd00:189::11/64"),
      LabNode("n2", "10.189.0.12", host6="fd00:189::11/64")), V6, "already used"),
    ((LabNode("n1", "10.189.0.11", host6="fd00:9::11/64"),), V6, "not a usable address"),
    ((LabNode("n1", "10.189.0.11", host6="10.189.0.99/24"),), V6, "not an IPv6 address"),
    ((LabNode("n1", "10.189.0.11", host6="fd00:189::11/80"),), V6, "must carry the lab's prefix /64"),
])
def test_bad_ipv6_spec_is_one_line_lab_error(nodes, gateway6, expect):
    spec = LabSpec(nodes=nodes, gateway6=gateway6, lab_dir=Path("/nonexistent"))
    with pytest.raises(LabError, match=expect) as e:
        lab.up(spec, progress=lambda s: None)
    assert "\n" not in str(e.value)


def test_dual_stack_spec_passes_validation():
    from fabfile.lab import validate
    spec = LabSpec(nodes=(LabNode("n1", "10.189.0.11", host6="fd00:189::11/64"), LabNode("n2", "10.189.0.12")),
                   gateway6=V6, lab_dir=Path("/nonexistent"))
    assert str(validate(spec)) == "10.189.0.1/24"


def test_mirror_comes_from_apt_sources(tmp_path):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb deb-src\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\nSigned-By: /nonexistent.gpg\n")
    assert rootfs.apt_mirror(d, tmp_path / "none") == ("http://mirror.example/debian", None)
    (d / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text(
        "# deb http://old.example/debian bookworm main\n"
        "deb [arch=amd64] http://list.example/debian bookworm main contrib\n")
    assert rootfs.apt_mirror(d, tmp_path / "sources.list")[0] == "http://list.example/debian"
    with pytest.raises(LabError, match="LBTK_LAB_MIRROR"):
        rootfs.apt_mirror(d, tmp_path / "none")


def test_customize_makes_a_node_image(tmp_path):
    root = tmp_path / "base"
    for f in rootfs.REQUIRED_FILES + ("etc/ssh/ssh_host_rsa_key", "etc/ssh/ssh_host_rsa_key.pub",
                                      "var/cache/apt/archives/x.deb", "var/lib/apt/lists/deb_Packages"):
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("x")
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    for unit in ("keepalived.service", "nginx.service"):
        (wants / unit).symlink_to(f"/lib/systemd/system/{unit}")
    rootfs.customize(root)
    assert not list(wants.glob("keepalived*")) and not list(wants.glob("nginx*"))   # deploy enables them
    assert (wants / "ssh.service").is_symlink()
    assert os.readlink(root / "etc/systemd/system/apt-daily.timer") == "/dev/null"
    assert not list((root / "etc/ssh").glob("ssh_host_*"))                           # per node, at up
    assert not (root / "var/cache/apt/archives/x.deb").exists()
    assert "PermitRootLogin prohibit-password" in (root / "etc/ssh/sshd_config.d/lbtk-lab.conf").read_text()
    assert (root / "etc/machine-id").read_text() == ""


def test_changed_package_list_means_rebuild(tmp_path, monkeypatch):
    spec = LabSpec(nodes=NODES, lab_dir=tmp_path)
    (tmp_path / "base").mkdir()
    (tmp_path / "base.stamp").write_text(json.dumps(rootfs.stamp()))
    assert rootfs.is_current(spec)
    monkeypatch.setattr(rootfs, "PACKAGES", rootfs.PACKAGES + ("tcpdump",))
    assert not rootfs.is_current(spec)


def test_ssh_config_points_into_lab_dir(tmp_path):
    c = lab.ssh_config(LabSpec(nodes=NODES, lab_dir=tmp_path))
    assert c == {"user": "root", "key_filename": str(tmp_path / "id_ed25519"),
                 "known_hosts": str(tmp_path / "known_hosts")}


def test_status_of_a_lab_never_started(tmp_path):
    st = lab.status(LabSpec(nodes=NODES, bridge="lbtk-none0", lab_dir=tmp_path))
    assert [(s.name, s.running, s.pid, s.systemd_state, s.ssh_ok) for s in st] == \
        [("node1", False, None, "offline", False), ("node2", False, None, "offline", False)]


# ---------------------------------------------------------------- the real lab

def _skip_reason() -> str | None:
    if (why := missing_for_lab()) is not None:
        return why
    if any(s.running for s in lab.status(SPEC)) or Path("/sys/class/net", SPEC.bridge).exists():
        return f"the lab is already up (bridge {SPEC.bridge}); `inv lab.down` first"
    return None


@pytest.fixture(scope="module")
def lab_up():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    t0 = time.monotonic()
    lab.build_rootfs(SPEC, progress=print)          # about a minute once, then cached
    print(f"rootfs ready in {time.monotonic() - t0:.1f}s")
    lines: list[str] = []
    try:
        lab.up(SPEC, progress=lines.append)
        yield lines
    finally:
        lab.down(SPEC, progress=print)


def _ssh(host: str, cmd: str) -> subprocess.CompletedProcess:
    c = lab.ssh_config(SPEC)
    return subprocess.run(
        ["ssh", "-o", f"UserKnownHostsFile={c['known_hosts']}", "-o", "StrictHostKeyChecking=yes",
         "-o", "GSSAPIAuthentication=no", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
         "-i", c["key_filename"], f"{c['user']}@{host}", cmd],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.mark.lab
def test_up_boots_every_node(lab_up):
    assert sum("booted in" in ln for ln in lab_up) == len(NODES), lab_up
    for s in lab.status(SPEC):
        assert (s.running, s.systemd_state, s.ssh_ok) == (True, "running", True), s


@pytest.mark.lab
def test_up_again_leaves_running_nodes_alone(lab_up):
    before = {s.name: s.pid for s in lab.status(SPEC)}
    lines: list[str] = []
    lab.up(SPEC, progress=lines.append)
    assert {s.name: s.pid for s in lab.status(SPEC)} == before
    assert sum("already running" in ln for ln in lines) == len(NODES), lines


@pytest.mark.lab
def test_ssh_by_key_verifies_real_host_keys(lab_up):
    known = Path(lab.ssh_config(SPEC)["known_hosts"]).read_text().splitlines()
    assert {ln.split()[0] for ln in known} == {n.host for n in NODES}
    for n in NODES:
        r = _ssh(n.host, "hostname")
        assert r.returncode == 0 and r.stdout.strip() == n.name, r.stderr
        pub = (SPEC.lab_dir / "nodes" / n.name / "root/etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
        assert f"{n.host} {pub[0]} {pub[1]}" in known


@pytest.mark.lab
def test_node_has_the_packages_and_boots_without_the_services(lab_up):
    r = _ssh(NODES[0].host, "command -v keepalived nginx ipvsadm iptables curl python3; "
                            "systemctl is-enabled keepalived nginx ssh; ip -4 route; cat /etc/hosts")
    out = r.stdout.split()
    for b in ("/usr/sbin/keepalived", "/usr/sbin/nginx", "/usr/sbin/ipvsadm", "/usr/sbin/iptables"):
        assert b in out, r.stdout
    assert r.stdout.count("disabled") == 2 and "enabled" in out, r.stdout   # keepalived, nginx / ssh
    routes = [ln for ln in r.stdout.splitlines() if " dev eth0 " in ln]
    assert routes and all(ln.startswith("10.189.0.0/24 ") for ln in routes), r.stdout   # no way out
    assert "10.189.0.12\tnode2" in r.stdout


@pytest.mark.lab
def test_a_crashed_node_comes_back_with_up(lab_up):
    st = {s.name: s for s in lab.status(SPEC)}
    os.kill(st["node2"].pid, signal.SIGKILL)       # the nspawn this lab started (recorded pid)
    deadline = time.monotonic() + 5
    while lab.status(SPEC)[1].running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not lab.status(SPEC)[1].running
    lab.up(SPEC, progress=lambda s: None)          # cleans node2's left-overs, boots it again
    after = {s.name: s for s in lab.status(SPEC)}
    assert after["node1"].pid == st["node1"].pid
    assert after["node2"].running and after["node2"].pid != st["node2"].pid and after["node2"].ssh_ok
    r = _ssh(NODES[1].host, "hostname")
    assert r.stdout.strip() == "node2", r.stderr


@pytest.mark.lab
def test_down_removes_everything_it_made(lab_up):
    pids = [s.pid for s in lab.status(SPEC)]
    lab.down(SPEC, progress=lambda s: None)
    lab.down(SPEC, progress=lambda s: None)        # idempotent
    # (this machine's pid 1 reaps lazily: a stopped nspawn may linger a moment as a zombie)
    assert not any(nspawn._alive(p) for p in pids)
    netns = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True).stdout
    names = {x["name"] for x in json.loads(netns or "[]")}
    assert not names & {f"lbtk-{n.name}" for n in NODES}
    assert not Path("/sys/class/net", SPEC.bridge).exists()
    assert not any(Path("/sys/class/net", nspawn.ifname("lbtk-", n.name)).exists() for n in NODES)
    lab_dir = os.path.realpath(SPEC.lab_dir)
    assert lab_dir not in Path("/proc/self/mountinfo").read_text()
    assert not any(Path(h, f"lbtk-{n.name}").exists() for h in nspawn._cgroup_hierarchies() for n in NODES)
    assert not (SPEC.lab_dir / "nodes").exists() and not (SPEC.lab_dir / "known_hosts").exists()
    assert [s.running for s in lab.status(SPEC)] == [False, False]
