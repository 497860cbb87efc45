"""Lab nodes: one systemd-nspawn --boot container per node, each in its own network namespace.

Per node: netns `lbtk-<name>`, a veth pair (host side `lbtk-<name>` on the lab bridge, node side
`eth0` with the node's MAC and address, no default route), an overlay over the shared base,
its own cgroup (hybrid hosts: in the `systemd` and `unified` hierarchies), and nspawn started
detached with its pid (plus start time, against pid reuse) in `nodes/<name>/nspawn.pid`.
Only those recorded processes, and the processes inside the cgroups the lab made, are ever
signalled, always by PID.

With a bastion (LabSpec.bastion + inner_bridge) the nodes' eth0 hangs on the inner bridge, which
has no host address; the bastion's eth0 is on the lab bridge and its eth1 (host side
`lbtk-i<name>`) on the inner one, with forwarding off. The host never connects to a node there:
sshd is probed from a socket made inside the bastion's network namespace.
With `users`, each node gets the login user (the lab key), sshd refuses root, and the nodes'
sudoers grant the user sudo (NOPASSWD, or with the lab's password on sudo_password_nodes).
"""
from __future__ import annotations

import ctypes
import glob
import hashlib
import ipaddress
import json
import os
import secrets as _random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from fabfile.lab import (DEFAULT_RELEASE, INNER_PREFIX, LabError, LabNode, LabSpec, NodeStatus, ifname, inner_network, lab_path, last_line, locked, mounts_under, one_line, remove_tree, require_root, run, unmount_under, validate)
from fabfile.lab import rootfs
from fabfile.parsers import ParseError
from fabfile.parsers.ip_addr import link_kind
from fabfile.parsers.lbtk import first_cause, first_int
from fabfile.parsers.systemctl import parse_failed_units, parse_system_state

BOOT_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
SYSTEMCTL_TIMEOUT = 5.0    # nsenter + systemctl in a node; the kernel tier (TCG) raises it
BANNER_TIMEOUT = 0.5       # sshd's greeting while booting; the kernel tier (TCG) raises it too
NSPAWN_ENV = {"SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}   # the toolkit's sysctls under /proc/sys/net
CAPS = "CAP_NET_ADMIN,CAP_NET_RAW"                             # VIPs, IPVS, iptables; raw for VRRP/ping
HOSTKEY_TYPES = ("ed25519", "ecdsa", "rsa")


# ---------------------------------------------------------------- names and paths

@dataclass(frozen=True)
class _Node:
    """Everything the lab makes for one node, derived from its name (and recorded in node.json)."""
    name: str
    host: str
    mac: str | None
    dir: Path
    lab: str = "lab"                  # the lab (LabSpec.name) it belongs to
    bridge: str = "lbtk-br0"          # where its eth0 hangs
    prefix: int = 24
    role: str = "node"                # "node", or "bastion" (eth1 on inner_bridge, forwards nothing)
    inner: str | None = None          # bastion: eth1's address/prefix
    inner_mac: str | None = None
    inner_bridge: str | None = None
    via: str | None = None            # the netns its sshd is probed from (the bastion's); None: the host
    release: str = DEFAULT_RELEASE    # the base its overlay sits on (rootfs.py)
    host6: str | None = None          # eth0's IPv6 address/prefix; None: IPv6 off in the node

    @property
    def addresses(self) -> list[str]:
        """The addresses it answers on, on its bridge (IPv6 without its prefix)."""
        return [self.host] + ([self.host6.split("/")[0]] if self.host6 else [])

    @property
    def netns(self) -> str:
        return f"lbtk-{self.name}"

    @property
    def veth(self) -> str:
        return ifname("lbtk-", self.name)

    @property
    def inner_veth(self) -> str:
        return ifname(INNER_PREFIX, self.name)

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def pidfile(self) -> Path:
        return self.dir / "nspawn.pid"

    @property
    def log(self) -> Path:
        return self.dir / "nspawn.log"

    @property
    def cgroups(self) -> list[Path]:
        return [h / f"lbtk-{self.name}" for h in _cgroup_hierarchies()]


def _nodes_dir(spec: LabSpec) -> Path:
    return lab_path(spec.lab_dir) / "nodes"


def _node(spec: LabSpec, n: LabNode) -> _Node:
    inner = inner_network(spec)
    if inner is None:
        bridge, prefix, via = spec.bridge, ipaddress.IPv4Interface(spec.gateway).network.prefixlen, None
    else:
        bridge, prefix, via = spec.inner_bridge, inner.network.prefixlen, f"lbtk-{spec.bastion.name}"
    return _Node(n.name, n.host, n.mac, _nodes_dir(spec) / n.name, spec.name, bridge, prefix, via=via,
                 release=n.release, host6=n.host6)


def _bastion(spec: LabSpec) -> _Node | None:
    b = spec.bastion
    if b is None:
        return None
    return _Node(b.name, b.host, b.mac, _nodes_dir(spec) / b.name, spec.name, spec.bridge,
                 ipaddress.IPv4Interface(spec.gateway).network.prefixlen, "bastion", b.inner, b.inner_mac,
                 spec.inner_bridge, release=b.release)


def _lab_nodes(spec: LabSpec) -> list[_Node]:
    """The spec's nodes, then its bastion."""
    b = _bastion(spec)
    return [_node(spec, n) for n in spec.nodes] + ([b] if b else [])


def _recorded(d: Path) -> _Node | None:
    """The node a lab made in `d`, from its node.json; None when that cannot be read."""
    m = _meta(d)
    try:
        return _Node(m["name"], m["host"], m.get("mac"), d, m.get("lab", "lab"), m.get("bridge", ""),
                     int(m.get("prefix", 24)), m.get("role", "node"), m.get("inner"),
                     release=m.get("release", DEFAULT_RELEASE), host6=m.get("host6"))
    except (ValueError, KeyError, TypeError):
        return None


def _meta(d: Path) -> dict:
    """The node.json a lab wrote in `d` ({} when there is none or it cannot be read)."""
    try:
        m = json.loads((d / "node.json").read_text())
        return m if isinstance(m, dict) else {}
    except (OSError, ValueError):
        return {}


def _owner(nd: _Node) -> str | None:
    """The lab the node's directory was made by (node.json), None when there is none."""
    rec = _recorded(nd.dir)
    return rec.lab if rec else None


def _all_nodes(spec: LabSpec) -> list[_Node]:
    """The spec's nodes plus any node this lab made earlier (a changed inventory, a crash).
    A node directory another lab made (node.json names it) is never this lab's."""
    nodes = {nd.name: nd for nd in _lab_nodes(spec)}
    for d in sorted(_nodes_dir(spec).glob("*")) if _nodes_dir(spec).is_dir() else []:
        if not d.is_dir() or d.name in nodes:
            continue
        rec = _recorded(d)
        if rec is None:
            nodes[d.name] = _Node(d.name, "", None, d)      # never started (node.json comes first)
        elif rec.lab == spec.name:
            nodes[d.name] = rec
    return [nd for nd in nodes.values() if _owner(nd) in (None, spec.name)]


def _cgroup_hierarchies() -> list[Path]:
    cg = Path("/sys/fs/cgroup")
    if (cg / "cgroup.controllers").exists():          # pure cgroup v2
        return [cg]
    return [h for h in (cg / "systemd", cg / "unified") if (h / "cgroup.procs").exists()]


def _mac(prefix: str, name: str) -> str:
    h = hashlib.sha1(name.encode()).hexdigest()
    return f"{prefix}:{h[0:2]}:{h[2:4]}:{h[4:6]}"


# ---------------------------------------------------------------- processes (by recorded PID only)

def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of a pid, or None if it does not exist."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()
    return fields[0], int(fields[19])


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _alive(pid: int, start: int | None = None) -> bool:
    st = _proc_stat(pid)
    if st is None:
        return False
    if st[0] in ("Z", "X"):
        _reap(pid)
        return False
    return start is None or st[1] == start


def _recorded_pid(nd: _Node) -> int | None:
    """The node's nspawn pid if that very process (same start time, nspawn) still runs."""
    try:
        pid_s, start_s = nd.pidfile.read_text().split()
        pid, start = int(pid_s), int(start_s)
    except (OSError, ValueError):
        return None
    if not _alive(pid, start):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if not cmdline or not cmdline[0].endswith(b"systemd-nspawn") or \
            f"--directory={nd.root}".encode() not in cmdline:
        return None
    return pid


def _container_init(nspawn_pid: int) -> int | None:
    """Host pid of the node's systemd (pid 1 in the node's pid namespace), a child of nspawn."""
    for f in glob.glob(f"/proc/{nspawn_pid}/task/*/children"):
        try:
            children = Path(f).read_text().split()
        except OSError:
            continue
        for c in children:
            try:
                status = Path(f"/proc/{c}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("NSpid:") and line.split()[-1] == "1" and len(line.split()) > 2:
                    return int(c)
    return None


def _cgroup_pids(nd: _Node) -> set[int]:
    pids: set[int] = set()
    for cg in nd.cgroups:
        for procs in glob.glob(f"{cg}/**/cgroup.procs", recursive=True):
            try:
                pids |= {int(p) for p in Path(procs).read_text().split()}
            except (OSError, ValueError):
                pass
    return pids


def _kill_cgroup(nd: _Node, timeout: float = 5.0) -> None:
    """SIGKILL, by PID, what is left in the node's own cgroups (its nspawn and container)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = {p for p in _cgroup_pids(nd) if _alive(p)}
        if not pids:
            return
        if time.monotonic() > deadline:
            raise LabError(f"{nd.name}: processes {sorted(pids)[:5]} in the lab's cgroup survive SIGKILL")
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def _remove_cgroups(nd: _Node) -> None:
    for cg in nd.cgroups:
        if not cg.is_dir():
            continue
        for d in sorted((Path(p) for p in glob.glob(f"{cg}/**/", recursive=True)),
                        key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                pass
        if cg.is_dir():
            raise LabError(f"{nd.name}: cannot remove cgroup {cg} (processes left?)")


# ---------------------------------------------------------------- network

def _link_kind(name: str) -> str | None:
    """'bridge', 'veth', ... for an existing host interface; None if there is none."""
    r = run(["ip", "-j", "-d", "link", "show", "dev", name], check=False)
    if r.returncode != 0:
        return None
    try:
        return link_kind(r.stdout)
    except ParseError:
        return ""


def _no_ipv6(ifname_: str, netns: str | None = None) -> None:
    """IPv6 off on a lab interface: no router solicitations or DAD chatter on the lab bridge."""
    if not Path("/proc/sys/net/ipv6").exists():
        return
    if netns:
        run(["ip", "netns", "exec", netns, "sysctl", "-qw", f"net.ipv6.conf.{ifname_}.disable_ipv6=1"],
            check=False)
    else:
        try:
            Path(f"/proc/sys/net/ipv6/conf/{ifname_}/disable_ipv6").write_text("1\n")
        except OSError:
            pass


def _ipv6_on(ifname_: str, netns: str | None = None) -> None:
    """IPv6 on a lab interface, taking no router advertisements (nothing routes out of the lab)."""
    if not Path("/proc/sys/net/ipv6").exists():
        raise LabError("IPv6 is disabled in this kernel (no /proc/sys/net/ipv6): a dual-stack lab needs it")
    keys = [f"net.ipv6.conf.{ifname_}.accept_ra=0", f"net.ipv6.conf.{ifname_}.disable_ipv6=0"]
    run((["ip", "netns", "exec", netns] if netns else []) + ["sysctl", "-qw", *keys],
        what=f"IPv6 on {ifname_}" + (f" in {netns}" if netns else ""))


def _bridge_up(spec: LabSpec, gw: ipaddress.IPv4Interface) -> None:
    kind = _link_kind(spec.bridge)
    if kind is None:
        run(["ip", "link", "add", spec.bridge, "address", _mac("02:bd:fe", spec.bridge), "type", "bridge"],
            what=f"creating bridge {spec.bridge}")
        _no_ipv6(spec.bridge)
    elif kind != "bridge":
        raise LabError(f"{spec.bridge} exists and is not a bridge ({kind or 'unknown kind'}); "
                       "pick another lab bridge name")
    run(["ip", "addr", "replace", str(gw), "dev", spec.bridge], what=f"addressing bridge {spec.bridge}")
    if spec.gateway6:
        # a dual-stack lab: IPv6 on the bridge (another lab may have made it with IPv6 off), no
        # router advertisements taken, the gateway address without waiting for DAD
        _ipv6_on(spec.bridge)
        run(["ip", "-6", "addr", "replace", spec.gateway6, "dev", spec.bridge, "nodad"],
            what=f"addressing bridge {spec.bridge} (IPv6)")
    run(["ip", "link", "set", spec.bridge, "up"], what=f"bringing up {spec.bridge}")


def _inner_bridge_up(name: str) -> None:
    """A bridge the host has no address on (nothing routes there from the host)."""
    kind = _link_kind(name)
    if kind is None:
        run(["ip", "link", "add", name, "address", _mac("02:bd:fe", name), "type", "bridge"],
            what=f"creating bridge {name}")
        _no_ipv6(name)
    elif kind != "bridge":
        raise LabError(f"{name} exists and is not a bridge ({kind or 'unknown kind'}); "
                       "pick another inner bridge name")
    run(["ip", "addr", "flush", "dev", name], what=f"clearing addresses of {name}")
    run(["ip", "link", "set", name, "up"], what=f"bringing up {name}")


def _bridge_ports(name: str) -> list[str]:
    """Interfaces still enslaved to a bridge (another lab's nodes, a kernel tier's tap)."""
    try:
        return sorted(os.listdir(f"/sys/class/net/{name}/brif"))
    except OSError:
        return []


def _bridge_down(name: str, progress) -> None:
    """Delete a lab bridge, unless something still hangs on it (another lab sharing it)."""
    if _link_kind(name) != "bridge":
        return
    ports = _bridge_ports(name)
    if ports:
        if progress is not None:
            progress(f"lab: bridge {name} kept: still used by {', '.join(ports[:4])}"
                     + (" ..." if len(ports) > 4 else ""))
        return
    run(["ip", "link", "del", name], what=f"deleting bridge {name}")


def _bridge_ready(spec: LabSpec) -> bool:
    """The bridge exists and holds the gateway(s): only then may the host connect to node addresses
    (otherwise 10.189.0.x would follow the host's default route out of the machine)."""
    from fabfile.lab.guard import segment_up
    return segment_up(spec.bridge, [spec.gateway] + ([spec.gateway6] if spec.gateway6 else []))


def _netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


# the bastion routes nothing between its legs, and answers ARP on each leg only for that leg's
# address (the host never learns a way to the inner segment)
BASTION_SYSCTLS = {"net.ipv4.ip_forward": "0", "net.ipv4.conf.all.forwarding": "0",
                   "net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2"}


def _veth(nd: _Node, host_side: str, node_side: str, mac: str | None, bridge: str, mac_seed: str) -> None:
    cmd = ["ip", "link", "add", host_side, "address", _mac("02:bd:fd", mac_seed), "type", "veth",
           "peer", "name", node_side]
    if mac:
        cmd += ["address", mac]
    run(cmd + ["netns", nd.netns], what=f"{nd.name}: creating veth {host_side}")
    _no_ipv6(host_side)
    run(["ip", "link", "set", host_side, "master", bridge, "up"], what=f"{nd.name}: attaching {host_side}")


def _net_up(nd: _Node) -> None:
    run(["ip", "netns", "add", nd.netns], what=f"{nd.name}: ip netns add")
    # the node side is created inside the namespace: its default conf applies to it
    if nd.host6:
        _ipv6_on("default", nd.netns)
    else:
        _no_ipv6("default", nd.netns)
    if nd.role == "bastion":
        run(["ip", "netns", "exec", nd.netns, "sysctl", "-qw",
             *(f"{k}={v}" for k, v in BASTION_SYSCTLS.items())], what=f"{nd.name}: forwarding off")
    _veth(nd, nd.veth, "eth0", nd.mac, nd.bridge, nd.name)
    # node side: loopback and eth0 on the lab subnet; no default route (no way out of the lab)
    batch = f"link set lo up\naddr add {nd.host}/{nd.prefix} dev eth0\nlink set eth0 up\n"
    if nd.host6:
        batch += f"addr add {nd.host6} dev eth0 nodad\n"
    if nd.inner:
        _veth(nd, nd.inner_veth, "eth1", nd.inner_mac, nd.inner_bridge, f"{nd.name}/inner")
        batch += f"addr add {nd.inner} dev eth1\nlink set eth1 up\n"
    run(["ip", "-n", nd.netns, "-batch", "-"], what=f"{nd.name}: addressing eth0", input=batch)


def _net_down(nd: _Node) -> None:
    if _netns_exists(nd.netns):
        run(["ip", "netns", "del", nd.netns], what=f"{nd.name}: ip netns del")
    for veth in (nd.veth, nd.inner_veth) if nd.role == "bastion" else (nd.veth,):
        if _link_kind(veth) == "veth":
            run(["ip", "link", "del", veth], check=False)


# ---------------------------------------------------------------- node files

def _write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write into a node tree without following a symlink planted there."""
    if path.is_symlink():
        path.unlink()
    tmp = path.with_name(f".{path.name}.lbtk-tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


def _hosts(spec: LabSpec) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\t\tlocalhost ip6-localhost ip6-loopback", ""]
    lines += [f"{n.host}\t{n.name}" for n in spec.nodes]
    inner = inner_network(spec)
    if inner is not None:                       # the bastion, at the address the nodes reach it on
        lines.append(f"{inner.ip}\t{spec.bastion.name}")
    return "\n".join(lines) + "\n"


def _client_key(spec: LabSpec) -> Path:
    key = lab_path(spec.lab_dir) / "id_ed25519"
    if not key.exists() or not key.with_suffix(".pub").exists():
        for p in (key, key.with_suffix(".pub")):
            p.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lbtk-lab", "-f", str(key)],
            what="generating the lab SSH key")
    return key


def _authorize(nd: _Node, pub: str) -> None:
    ssh = nd.root / "root/.ssh"
    if ssh.is_symlink():
        ssh.unlink()
    ssh.mkdir(mode=0o700, exist_ok=True)
    ssh.chmod(0o700)
    ak = ssh / "authorized_keys"
    if not ak.exists() or ak.is_symlink() or ak.read_text() != pub:
        _write(ak, pub, 0o600)


# ---- users (LabSpec.users): root login refused, the login user with the lab key and sudo

SSHD_USERS_CONF = """\
# lbtk lab node (production-shaped): no root login; {user} logs in by key only (the lab's id_ed25519).
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
GSSAPIAuthentication no
UseDNS no
"""
SUDOERS = """\
# lbtk lab: {user} runs anything as root{how}
Defaults:{user} lecture=never
{user} ALL=(ALL:ALL) {tag}ALL
"""
BASTION_SYSCTL_CONF = "# lbtk lab bastion: it routes nothing between its legs\n" + "".join(
    f"{k} = {v}\n" for k, v in BASTION_SYSCTLS.items())
# Run by chroot in the node's tree (sh -c SCRIPT sh USER PUBKEY SETPW), at every `up` (idempotent):
# the node's host keys, the user (no password: key login only) and its authorized_keys, root's
# authorized_keys gone; with SETPW=1, chpasswd reads "user:password" on stdin (never argv).
_USERS_SCRIPT = r"""set -e
u=$1 pub=$2 setpw=$3
ssh-keygen -A >/dev/null </dev/null
id -u "$u" >/dev/null 2>&1 || useradd --create-home --home-dir "/home/$u" --shell /bin/bash --password '*' "$u"
install -d -m 700 -o "$u" -g "$u" "/home/$u/.ssh"
printf '%s' "$pub" > "/home/$u/.ssh/authorized_keys.lbtk-tmp"
chown "$u:$u" "/home/$u/.ssh/authorized_keys.lbtk-tmp"
chmod 600 "/home/$u/.ssh/authorized_keys.lbtk-tmp"
mv -f "/home/$u/.ssh/authorized_keys.lbtk-tmp" "/home/$u/.ssh/authorized_keys"
rm -f /root/.ssh/authorized_keys
if [ "$setpw" = 1 ]; then chpasswd; fi
"""


def _needs_password(spec: LabSpec, nd: _Node) -> bool:
    return spec.users is not None and nd.role == "node" and nd.name in spec.users.sudo_password_nodes


def _sudo_password(spec: LabSpec) -> str | None:
    """The lab's sudo password (users.password_file): made once, random, mode 0600, then reused.
    None when no node asks one. Never printed."""
    u = spec.users
    if u is None or not u.sudo_password_nodes:
        return None
    path = Path(u.password_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            fd = None                               # made by a concurrent caller meanwhile
        if fd is not None:
            with os.fdopen(fd, "w") as f:
                f.write(_random.token_urlsafe(18) + "\n")
    if not path.is_file():
        raise LabError(f"lab users.password_file {path} is not a file")
    try:
        value = path.read_bytes().decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise LabError(f"lab users.password_file {path}: cannot read it ({getattr(e, 'strerror', None) or e})"
                       ) from None
    if not value or any(c in ":\n\r" or not c.isprintable() for c in value):
        raise LabError(f"lab users.password_file {path}: the password must be one line of printable "
                       "characters without ':' (remove the file: `inv lab.up` makes a new one)")
    return value


def _user_files(spec: LabSpec, nd: _Node) -> None:
    """sshd without root login, the user's sudoers (nodes only), the bastion's sysctls."""
    etc, user = nd.root / "etc", spec.users.name
    _write(etc / "ssh/sshd_config.d/lbtk-lab.conf", SSHD_USERS_CONF.format(user=user))
    sudoers = etc / "sudoers.d/lbtk-lab"
    if nd.role == "node":
        pw = _needs_password(spec, nd)
        _write(sudoers, SUDOERS.format(user=user, tag="" if pw else "NOPASSWD: ",
                                       how=", with its password" if pw else ", no password asked"), 0o440)
    elif sudoers.exists() or sudoers.is_symlink():
        sudoers.unlink()
    if nd.role == "bastion":
        _write(etc / "sysctl.d/90-lbtk-bastion.conf", BASTION_SYSCTL_CONF)


def _users_run(spec: LabSpec, nd: _Node, pub: str, password: str | None) -> tuple[subprocess.Popen, str | None]:
    """Start _USERS_SCRIPT in the node's tree; (the process, what to write to its stdin)."""
    setpw = _needs_password(spec, nd)
    p = subprocess.Popen(["chroot", str(nd.root), "sh", "-c", _USERS_SCRIPT, "sh", spec.users.name, pub,
                          "1" if setpw else "0"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    return p, f"{spec.users.name}:{password}\n" if setpw else ""


def _prepare_tree(spec: LabSpec, nd: _Node, base: Path, pub: str,
                  password: str | None = None) -> tuple[subprocess.Popen, str | None]:
    """Overlay over the base plus the node's own files; returns the running host-key generation
    (with `users`: the user's setup too) and what to feed its stdin."""
    for sub in ("upper", "work", "root"):
        (nd.dir / sub).mkdir(parents=True, exist_ok=True)
    run(["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={base},upperdir={nd.dir / 'upper'},workdir={nd.dir / 'work'}", str(nd.root)],
        what=f"{nd.name}: overlay mount")
    etc = nd.root / "etc"
    _write(etc / "hostname", nd.name + "\n")
    _write(etc / "hosts", _hosts(spec))
    _write(etc / "machine-id", hashlib.md5(f"lbtk-lab:{nd.name}".encode()).hexdigest() + "\n", 0o444)
    if spec.users is None:
        _authorize(nd, pub)
    # host keys: the node's own, made once by its ssh-keygen and kept across lab re-creations
    cache = _hostkey_cache(spec, nd)
    for f in sorted(cache.glob("ssh_host_*")) if cache.is_dir() else []:
        _write(etc / "ssh" / f.name, f.read_text(), 0o600 if not f.name.endswith(".pub") else 0o644)
    if spec.users is not None:
        _user_files(spec, nd)
        return _users_run(spec, nd, pub, password)
    return subprocess.Popen(["chroot", str(nd.root), "ssh-keygen", "-A"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), None


def _hostkey_cache(spec: LabSpec, nd: _Node) -> Path:
    return lab_path(spec.lab_dir) / "hostkeys" / nd.name


def _save_host_keys(spec: LabSpec, nd: _Node) -> None:
    cache = _hostkey_cache(spec, nd)
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    for f in sorted((nd.root / "etc/ssh").glob("ssh_host_*")):
        if f.is_file() and not f.is_symlink():
            _write(cache / f.name, f.read_text(), 0o600 if not f.name.endswith(".pub") else 0o644)


def _host_keys(nd: _Node) -> list[str]:
    keys = []
    for t in HOSTKEY_TYPES:
        p = nd.root / f"etc/ssh/ssh_host_{t}_key.pub"
        try:
            f = p.read_text().split()
        except OSError:
            continue
        if len(f) >= 2:   # under each address it answers SSH on (a dual-stack node: both)
            keys.append(f"{','.join(nd.addresses)} {f[0]} {f[1]}")
    return keys


def _write_known_hosts(spec: LabSpec, drop_if_empty: bool = False) -> None:
    """known_hosts = the real host keys of every node mounted in the lab dir (so clients verify
    them), whichever lab it belongs to: labs sharing the dir share the file."""
    lines = []
    d = _nodes_dir(spec)
    for sub in sorted(d.glob("*")) if d.is_dir() else []:
        nd = _recorded(sub)
        if nd is not None and nd.host and nd.root.is_dir() and mounts_under(nd.root):
            lines += _host_keys(nd)
    path = lab_path(spec.lab_dir) / "known_hosts"
    if not lines and drop_if_empty:
        path.unlink(missing_ok=True)
        return
    _write(path, "".join(ln + "\n" for ln in lines))


def _ssh_config_text(spec: LabSpec) -> str:
    """Every node of the lab by name (the bastion too): HostName, User, the lab key and known_hosts."""
    d = lab_path(spec.lab_dir)
    user = spec.users.name if spec.users else "root"
    out = [f"# written by `inv lab.up` for lab {spec.name}; rewritten at every up, removed by lab.down",
           f"# through the bastion: ssh -F THIS_FILE -J {user}@{spec.bastion.name} {user}@NODE"
           if spec.bastion else "# ssh -F THIS_FILE NODE", ""]
    nodes = _lab_nodes(spec)
    for nd in nodes[-1:] + nodes[:-1] if spec.bastion else nodes:     # the bastion first
        out += [f"Host {nd.name}", f"  HostName {nd.host}", f"  User {user}", f"  IdentityFile {d / 'id_ed25519'}",
                "  IdentitiesOnly yes", f"  UserKnownHostsFile {d / 'known_hosts'}", "  StrictHostKeyChecking yes",
                "  GSSAPIAuthentication no", ""]
    return "\n".join(out)


def _write_ssh_config(spec: LabSpec) -> None:
    if spec.ssh_config is None:
        return
    path = lab_path(spec.ssh_config)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, _ssh_config_text(spec))


# ---------------------------------------------------------------- start / wait / stop

_TRAMPOLINE = ('for c in $LBTK_CGROUPS; do echo $$ > "$c/cgroup.procs" || exit 111; done; '
               'unset LBTK_CGROUPS LBTK_LOG; exec "$@"')
# a background job of a shell that exits at once: nspawn is not our child (no zombies, survives us)
_DETACH = 'sh -c "$0" sh "$@" </dev/null >>"$LBTK_LOG" 2>&1 & echo $!'


def _start(nd: _Node) -> int:
    for cg in nd.cgroups:
        cg.mkdir(exist_ok=True)
    cmd = ["systemd-nspawn", "--quiet", "--boot", f"--machine={nd.name}", f"--directory={nd.root}",
           f"--network-namespace-path=/run/netns/{nd.netns}", f"--capability={CAPS}",
           "--register=no", "--keep-unit", "--console=passive", "--resolv-conf=off", "--timezone=off",
           "--link-journal=no"]
    env = {**os.environ, **NSPAWN_ENV, "LBTK_CGROUPS": " ".join(map(str, nd.cgroups)), "LBTK_LOG": str(nd.log)}
    r = subprocess.run(["sh", "-c", _DETACH, _TRAMPOLINE, *cmd], env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, start_new_session=True, timeout=10)
    try:
        pid = first_int(r.stdout)
    except ParseError:
        raise LabError(f"{nd.name}: could not start systemd-nspawn: {last_line(r.stderr)}") from None
    st = _proc_stat(pid)
    nd.pidfile.write_text(f"{pid} {st[1] if st else 0}\n")
    return pid


_CLONE_NEWNET = 0x40000000


def _socket_in(netns: str) -> socket.socket:
    """A TCP socket that lives in network namespace `netns` (it routes there, whatever thread
    uses it): this thread enters the namespace just to create it, then comes back."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{netns}") as there:
        if libc.setns(there.fileno(), _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {netns}: {os.strerror(err)}")
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            if libc.setns(home.fileno(), _CLONE_NEWNET) != 0:
                raise LabError(f"could not come back from network namespace {netns}")


def _ssh_banner(host: str, timeout: float = 1.0, netns: str | None = None) -> bool:
    """sshd greets on host:22, seen from this machine, or from inside `netns` (the bastion's)."""
    try:
        if netns is None:
            s = socket.create_connection((host, 22), timeout=timeout)
        else:
            s = _socket_in(netns)
            s.settimeout(timeout)
            try:
                s.connect((host, 22))
            except OSError:
                s.close()
                raise
        with s:
            s.settimeout(timeout)
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _systemd_state(init_pid: int, timeout: float | None = None) -> str:
    r = run(["nsenter", "-t", str(init_pid), "-a", "systemctl", "is-system-running"], check=False,
            timeout=timeout or SYSTEMCTL_TIMEOUT)
    return parse_system_state(r.stdout)


def _failed_units(init_pid: int) -> list[str]:
    r = run(["nsenter", "-t", str(init_pid), "-a", "systemctl", "--failed", "--no-legend", "--plain"],
            check=False, timeout=SYSTEMCTL_TIMEOUT)
    return parse_failed_units(r.stdout)


def _log_tail(nd: _Node) -> str:
    """The line of the node's nspawn log that says why it died: the first cause, not the last line."""
    try:
        return first_cause(nd.log.read_text(errors="replace"))[:200]
    except OSError:
        return "no log"


INOTIFY_INSTANCES = "/proc/sys/fs/inotify/max_user_instances"
INOTIFY_PER_NODE = 8      # systemd, journald, logind, sshd ... in one node (30 nodes died at the default 128)


def _enough_inotify(n_nodes: int, progress) -> None:
    """Each systemd node takes inotify instances from the host's per-user limit (root's, shared by all
    nodes): raise it for big labs and say so, instead of a node dying with "Too many open files"."""
    try:
        have = first_int(Path(INOTIFY_INSTANCES).read_text())
    except (OSError, ParseError):
        return
    want = max(1024, n_nodes * INOTIFY_PER_NODE + 256)
    if n_nodes * INOTIFY_PER_NODE + 32 > have:
        Path(INOTIFY_INSTANCES).write_text(f"{want}\n")
        progress(f"fs.inotify.max_user_instances raised from {have} to {want} for {n_nodes} nodes")


def _wait_booted(pending: dict[str, tuple[_Node, int, float]], progress, timeout: float) -> None:
    """Until each node's systemd is running/degraded and its sshd greets; all within `timeout`."""
    deadline = time.monotonic() + timeout
    state = {name: "offline" for name in pending}
    while pending:
        for name, (nd, pid, t0) in list(pending.items()):
            if not _alive(pid):
                raise LabError(f"{name}: systemd-nspawn exited during boot: {_log_tail(nd)} "
                               f"(log: {nd.log}; `inv lab.down` cleans up)")
            init = _container_init(pid)
            if init is None:
                continue
            if state[name] not in ("running", "degraded"):
                state[name] = _systemd_state(init)
            if state[name] in ("running", "degraded") and _ssh_banner(nd.host, BANNER_TIMEOUT, nd.via):
                del pending[name]
                progress(f"{name}: booted in {time.monotonic() - t0:.1f}s (systemd {state[name]}, sshd up)")
                if state[name] == "degraded":
                    progress(f"{name}: degraded, failed units: {', '.join(_failed_units(init)) or '?'}")
        if not pending:
            return
        if time.monotonic() > deadline:
            name, (nd, pid, _) = next(iter(pending.items()))
            ssh = "no answer on port 22" if state[name] in ("running", "degraded") else "not checked"
            raise LabError(f"{name}: not up after {timeout:.0f}s (systemd {state[name]}, ssh {ssh}); "
                           f"log: {nd.log}; `inv lab.down` cleans up")
        time.sleep(0.05)


def _write_meta(nd: _Node, **extra) -> None:
    meta = {"name": nd.name, "host": nd.host, "mac": nd.mac, "netns": nd.netns, "veth": nd.veth,
            "lab": nd.lab, "role": nd.role, "bridge": nd.bridge, "prefix": nd.prefix,
            "release": nd.release, "host6": nd.host6, **extra}
    if nd.inner:
        meta.update(inner=nd.inner, inner_veth=nd.inner_veth, inner_bridge=nd.inner_bridge)
    (nd.dir / "node.json").write_text(json.dumps(meta) + "\n")


def _cleanup_node(nd: _Node) -> None:
    """Remove whatever a node left behind (its nspawn is already gone or never ran)."""
    _kill_cgroup(nd)
    unmount_under(nd.dir)
    _net_down(nd)
    _remove_cgroups(nd)
    remove_tree(nd.dir)


def _refuse_taken_addresses(spec: LabSpec, nodes: list[_Node]) -> None:
    """Two labs on one bridge must not share an address: the second node would answer for the
    first one's address and SSH would see a host key that does not match (a lab-30 holds .11-.40,
    lab-bastion's bastion is .30). Names differ, so the name check above does not see it."""
    mine = {(nd.bridge, a): nd.name for nd in nodes for a in nd.addresses}
    d = _nodes_dir(spec)
    for other in sorted(d.glob("*")) if d.is_dir() else []:
        rec = _recorded(other)
        if rec is None or rec.lab == spec.name or _recorded_pid(rec) is None:
            continue
        for addr in rec.addresses:
            name = mine.get((rec.bridge, addr))
            if name is not None:
                raise LabError(f"{name}: {addr} on {rec.bridge} is taken by {rec.name} of the "
                               f"running lab {rec.lab!r} — take that lab down (`inv lab.down --env {rec.lab}`) "
                               "or give this node another address")


# ---------------------------------------------------------------- public interface

@one_line
def up(spec: LabSpec, progress=print, timeout: float = BOOT_TIMEOUT) -> None:
    """Bring up every node of `spec` (idempotent: running nodes are left alone)."""
    gw = validate(spec)
    require_root("the lab")
    for tool in ("systemd-nspawn", "nsenter", "ip", "chroot", "ssh-keygen"):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get("PATH", "").split(":")):
            raise LabError(f"{tool}: command not found (run scripts/setup.sh)")
    if not _cgroup_hierarchies():
        raise LabError("no usable cgroup hierarchy under /sys/fs/cgroup (systemd-nspawn needs one)")
    bases = rootfs.build_rootfs(spec, progress)
    t_all = time.monotonic()
    nodes = _lab_nodes(spec)
    _enough_inotify(len(nodes) + 6, progress)    # + room for another small lab beside this one
    with locked(spec.lab_dir):
        for nd in nodes:
            owner = _owner(nd)
            if owner not in (None, spec.name):
                raise LabError(f"{nd.name}: node of the lab {owner!r} (same name, same lab dir); "
                               f"take that lab down or rename the node")
        _refuse_taken_addresses(spec, nodes)
        key = _client_key(spec)
        pub = key.with_suffix(".pub").read_text()
        password = _sudo_password(spec)
        _bridge_up(spec, gw)
        if spec.inner_bridge:
            _inner_bridge_up(spec.inner_bridge)
        to_start, keygens = [], []
        for nd in nodes:
            pid = _recorded_pid(nd)
            if pid is not None:
                rec = _recorded(nd.dir)
                if rec is not None and rec.release != nd.release and not _meta(nd.dir).get("reimaged_from"):
                    # its overlay sits on the other release's base: only a new node (or lab.reimage) changes that
                    raise LabError(f"{nd.name}: running on {rec.release}, the inventory now says {nd.release}; "
                                   f"`inv lab.down` it first (a node's release is set when it is made)")
                if spec.users is None:
                    _authorize(nd, pub)
                else:                                   # key, sudoers, password: as the spec says now
                    _user_files(spec, nd)
                    keygens.append((nd, *_users_run(spec, nd, pub, password)))
                progress(f"{nd.name}: already running (pid {pid})" + (
                    f", re-imaged to {rec.release} (the inventory's {nd.release} applies when it is made again)"
                    if rec is not None and rec.release != nd.release else ""))
                continue
            if nd.dir.exists() or _netns_exists(nd.netns) or _link_kind(nd.veth) is not None \
                    or (nd.inner and _link_kind(nd.inner_veth) is not None):
                _cleanup_node(nd)                       # left-overs of a crash or an unclean stop
            nd.dir.mkdir(parents=True)
            _write_meta(nd)
            _net_up(nd)
            keygens.append((nd, *_prepare_tree(spec, nd, bases[nd.release], pub, password)))
            to_start.append(nd)
        for nd, p, stdin in keygens:
            _, err = p.communicate(input=stdin, timeout=60)
            if p.returncode != 0:
                what = "ssh-keygen -A" if spec.users is None else f"setting up user {spec.users.name}"
                raise LabError(f"{nd.name}: {what} failed: {last_line(err)}")
            if nd in to_start:
                _save_host_keys(spec, nd)
        _write_known_hosts(spec)
        _write_ssh_config(spec)
        pending = {}
        for nd in to_start:
            t0 = time.monotonic()
            pending[nd.name] = (nd, _start(nd), t0)
        _wait_booted(pending, progress, timeout)
    if to_start:
        progress(f"lab: {len(to_start)} node(s) up in {time.monotonic() - t_all:.1f}s "
                 f"({len(nodes) - len(to_start)} already running)")


@one_line
def reimage(spec: LabSpec, name: str, release: str, progress=print, timeout: float = BOOT_TIMEOUT) -> float:
    """Install `release` on a running node of the lab, the lab's way: the node powered off, its
    overlay thrown away, a fresh one on `release`'s base, booted again. Kept: its name, addresses,
    MAC, network namespace name, SSH host keys (so known_hosts still holds) and the lab key; gone,
    like on a reinstalled machine: everything the node wrote (/etc changes, /var/lib/lbtk).
    node.json records the new release and the one it was made of (`reimaged_from`): lab.up leaves
    the running node as it is, and lab.down + lab.up make it of the inventory's release again.
    Returns the seconds from power-off to sshd answering."""
    validate(spec)
    require_root("the lab")
    ln = next((n for n in spec.nodes if n.name == name), None)
    if ln is None:
        raise LabError(f"{name}: not a node of lab {spec.name} (nodes: {', '.join(n.name for n in spec.nodes)})")
    base = rootfs.build_release(spec, release, progress)
    nd = _node(spec, replace(ln, release=release))        # all else as the lab made it (host6 too)
    with locked(spec.lab_dir):
        if _owner(nd) != spec.name:
            raise LabError(f"{name}: not a node of lab {spec.name} here (`inv lab.up --env ...` first)")
        pid = _recorded_pid(nd)
        if pid is None:
            raise LabError(f"{name}: not running; `inv lab.up` brings it up first")
        was = _meta(nd.dir)
        made_of = was.get("reimaged_from") or was.get("release", DEFAULT_RELEASE)
        t0 = time.monotonic()
        try:
            os.kill(pid, signal.SIGTERM)              # nspawn: orderly poweroff of the node
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        _cleanup_node(nd)                             # overlay, netns, veth, cgroups: all of it goes
        progress(f"{name}: powered off in {time.monotonic() - t0:.1f}s, its disk wiped")
        nd.dir.mkdir(parents=True)
        _write_meta(nd, reimaged_from=made_of)
        _net_up(nd)
        pub = _client_key(spec).with_suffix(".pub").read_text()
        p, stdin = _prepare_tree(spec, nd, base, pub, _sudo_password(spec))
        _, err = p.communicate(input=stdin, timeout=60)
        if p.returncode != 0:
            raise LabError(f"{name}: setting up the new image failed: {last_line(err)}")
        _save_host_keys(spec, nd)
        _write_known_hosts(spec)
        _wait_booted({name: (nd, _start(nd), time.monotonic())}, progress, timeout)
        secs = time.monotonic() - t0
        rootfs.gc_old_bases(lab_path(spec.lab_dir), lambda s: None)
    progress(f"{name}: re-imaged {was.get('release', DEFAULT_RELEASE)} -> {release} in {secs:.1f}s "
             "(name, addresses, MAC, SSH host keys kept)")
    return secs


@one_line
def down(spec: LabSpec, progress=print) -> None:
    """Stop the nodes and remove everything `up` made (idempotent; works after a crash)."""
    validate(spec)
    require_root("the lab")
    t0 = time.monotonic()
    lab_dir = lab_path(spec.lab_dir)
    if not lab_dir.exists() and _link_kind(spec.bridge) is None:
        progress("lab: already down")
        return
    with locked(lab_dir):
        nodes = _all_nodes(spec)
        running = {nd.name: pid for nd in nodes if (pid := _recorded_pid(nd)) is not None}
        for nd in nodes:
            if nd.name in running:
                try:
                    os.kill(running[nd.name], signal.SIGTERM)   # nspawn: orderly poweroff of the node
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(_alive(p) for p in running.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for name, pid in running.items():
            if _alive(pid):
                progress(f"{name}: no clean poweroff in {STOP_TIMEOUT:.0f}s, killing it")
        made = [nd for nd in nodes if nd.name in running or nd.dir.exists() or _netns_exists(nd.netns)
                or _link_kind(nd.veth) is not None or any(cg.exists() for cg in nd.cgroups)]
        for nd in made:
            _cleanup_node(nd)
        for bridge in (spec.inner_bridge, spec.bridge):
            if bridge:
                _bridge_down(bridge, progress if made else None)
        _write_known_hosts(spec, drop_if_empty=True)      # another lab's running nodes stay in it
        if spec.ssh_config is not None:
            lab_path(spec.ssh_config).unlink(missing_ok=True)
        try:
            _nodes_dir(spec).rmdir()
        except OSError:
            pass
        rootfs.gc_old_bases(lab_dir, progress)
    if made:
        progress(f"lab: {len(made)} node(s) down in {time.monotonic() - t0:.1f}s")
    else:
        progress("lab: already down")


@one_line
def status(spec: LabSpec) -> list[NodeStatus]:
    """Per node (the bastion last): nspawn running (recorded pid), systemd state (nsenter), sshd
    answering: from this machine, or, for the nodes behind a bastion, from the bastion's netns."""
    validate(spec)
    bridge_ok = _bridge_ready(spec)
    out = []
    for nd in _lab_nodes(spec):
        pid = _recorded_pid(nd)
        state, ssh = "offline", False
        if pid is not None:
            init = _container_init(pid)
            state = _systemd_state(init) if init is not None and os.geteuid() == 0 else "unknown"
            if nd.via is not None:
                ssh = _netns_exists(nd.via) and _ssh_banner(nd.host, netns=nd.via)
            else:
                ssh = bridge_ok and _ssh_banner(nd.host)
        out.append(NodeStatus(nd.name, nd.host, pid is not None, pid, state, ssh))
    return out


def ssh_config(spec: LabSpec) -> dict:
    d = lab_path(spec.lab_dir)
    out = {"user": spec.users.name if spec.users else "root", "key_filename": str(d / "id_ed25519"),
           "known_hosts": str(d / "known_hosts")}
    if spec.ssh_config is not None:
        out["config_file"] = str(lab_path(spec.ssh_config))
    if spec.bastion is not None:
        out["gateway"] = spec.bastion.name
    return out
