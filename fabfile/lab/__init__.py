"""The local lab: real systemd nodes (systemd-nspawn) in network namespaces on one bridge.

Host-side subprocess work only (no Fabric). Layout under `LabSpec.lab_dir`:

    base/ + base.stamp         debootstrap'd Debian bookworm rootfs, shared read-only (rootfs.py)
    base-R/ + base-R.stamp     the same for another release R (base-trixie), for the nodes that run it
    base.old-N/, base-R.old-N/ a base replaced while nodes still ran on it; removed once none does
    id_ed25519{,.pub}          the lab's SSH client key (root's authorized_keys on every node, or
                               the login user's with `users`)
    hostkeys/NAME/             each node's SSH host keys, made once by its own ssh-keygen -A
    known_hosts                node IPs and their real host keys, of every running node of every
                               lab in this dir, rewritten at every `up` and `down`
    nodes/NAME/                per node: overlay upper/work/root, nspawn.pid, nspawn.log, node.json
                               (node.json names the lab the node belongs to: `down` takes only its own)

Several labs (inventories) may share the lab dir, the bridge and its address at once (node names
differ): `down` stops only its own nodes and deletes a bridge only once no port is left on it.

A production-shaped lab (`bastion` + `inner_bridge`): the nodes sit on `inner_bridge`, which the
host has no address on, and the bastion node has one leg on each bridge and forwards nothing;
`users`: root login refused, a login user with the lab key and sudo (NOPASSWD, or a password).

Network rule: the nodes reach only loopback and the lab subnet behind the lab's own bridge
(no default route, no NAT, no DNS).
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import ipaddress
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


class LabError(Exception):
    """A lab failure the user can act on; str() is the whole one-line message."""


DEFAULT_RELEASE = "bookworm"
CLIENT_NETNS = "lbtk-kclient"     # the kernel tier's client namespace: `inv verify` sends requests from it


@dataclass(frozen=True)
class LabNode:
    name: str
    host: str
    mac: str | None = None
    release: str = DEFAULT_RELEASE         # the Debian release its rootfs is (rootfs.RELEASES)
    host6: str | None = None               # its IPv6 address/prefix on eth0 (a dual-stack lab)


def _default_lab_dir() -> Path:
    return Path(os.environ.get("LBTK_LAB_DIR", "/var/tmp/lbtk-lab"))


@dataclass(frozen=True)
class LabBastion:
    """The node on both bridges: `host` on `bridge` (the host reaches it), `inner` (address/prefix)
    on `inner_bridge`, whose network holds every other node."""
    name: str
    host: str
    inner: str
    mac: str | None = None
    inner_mac: str | None = None
    release: str = DEFAULT_RELEASE


@dataclass(frozen=True)
class LabUsers:
    """Root login refused; `name` logs in with the lab key and has sudo on the nodes (not on the
    bastion): NOPASSWD, except on `sudo_password_nodes`, where sudo asks the password kept in
    `password_file` (made once, random, mode 0600)."""
    name: str = "ops"
    sudo_password_nodes: tuple[str, ...] = ()
    password_file: Path | None = None


@dataclass(frozen=True)
class LabSpec:
    nodes: tuple[LabNode, ...]
    bridge: str = "lbtk-br0"
    gateway: str = "10.189.0.1/24"
    gateway6: str | None = None             # the bridge's IPv6 address/prefix: IPv6 on the lab segment
    lab_dir: Path = field(default_factory=_default_lab_dir)
    name: str = "lab"                       # whose nodes these are (node.json): `down` takes only its own
    inner_bridge: str | None = None         # with bastion: the nodes' own segment, no host address
    bastion: LabBastion | None = None
    users: LabUsers | None = None           # None: root logs in with the lab key (the plain lab)
    ssh_config: Path | None = None          # an ssh_config naming every node, written by `up`


@dataclass(frozen=True)
class NodeStatus:
    name: str
    host: str
    running: bool
    pid: int | None
    systemd_state: str
    ssh_ok: bool


# ---------------------------------------------------------------- shared helpers

IFNAMSIZ = 15                      # longest Linux interface name
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")   # a hostname label
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$")


def ifname(prefix: str, name: str) -> str:
    """`prefix + name`, shortened deterministically to fit IFNAMSIZ (prefix + head + hash)."""
    full = prefix + name
    if len(full) <= IFNAMSIZ:
        return full
    digest = hashlib.sha1(name.encode()).hexdigest()[:4]
    return f"{prefix}{name[:IFNAMSIZ - len(prefix) - 5]}-{digest}"


_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")    # a portable login name (useradd's rule)
INNER_PREFIX = "lbtk-i"                                 # host side of the bastion's inner leg


def _check_bridge_name(what: str, name: str) -> None:
    if not (0 < len(name) <= IFNAMSIZ) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise LabError(f"{what} name {name!r} must be 1-{IFNAMSIZ} chars of [A-Za-z0-9_.-]")


def _check_mac(who: str, mac: str | None, macs: set[str], key: str = "mac") -> None:
    if mac is None:
        return
    if not _MAC_RE.match(mac) or int(mac[:2], 16) & 1:
        raise LabError(f"{who}: {key} {mac!r} is not a unicast MAC like 02:bd:00:00:01:11")
    if mac.lower() in macs:
        raise LabError(f"{who}: {key} {mac} is already used by another node")
    macs.add(mac.lower())


def _check_host(who: str, host: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network, hosts: set[str],
                what: str = "host") -> None:
    try:
        ip = ipaddress.ip_address(host)
        if ip.version != net.version:
            raise ValueError
    except ValueError:
        raise LabError(f"{who}: {what} {host!r} is not an IPv{net.version} address") from None
    if ip not in net or ip in (net.network_address, net.broadcast_address):
        raise LabError(f"{who}: {what} {host} is not a usable address of the lab subnet {net}")
    if str(ip) in hosts:
        raise LabError(f"{who}: {what} {host} is already used (gateway, bastion or another node)")
    hosts.add(str(ip))


def inner_network(spec: LabSpec) -> ipaddress.IPv4Interface | None:
    """The bastion's address on the inner bridge (its network holds the nodes); None without one."""
    if spec.bastion is None:
        return None
    try:
        inner = ipaddress.IPv4Interface(spec.bastion.inner)
    except ValueError:
        raise LabError(f"bastion {spec.bastion.name}: inner {spec.bastion.inner!r} is not an IPv4 "
                       "address/prefix like 10.189.0.94/27") from None
    if "/" not in spec.bastion.inner or inner.network.prefixlen >= 31:
        raise LabError(f"bastion {spec.bastion.name}: inner {spec.bastion.inner!r} needs a prefix length "
                       "with room for the nodes, e.g. /27")
    return inner


def validate(spec: LabSpec) -> ipaddress.IPv4Interface:
    """Check a spec before touching the host; returns the gateway interface."""
    if not spec.nodes:
        raise LabError("lab spec has no nodes")
    try:
        gw = ipaddress.IPv4Interface(spec.gateway)
    except ValueError:
        raise LabError(f"lab gateway {spec.gateway!r} is not an IPv4 address/prefix like 10.189.0.1/24") from None
    if gw.network.prefixlen == 32:
        raise LabError(f"lab gateway {spec.gateway!r} needs a prefix length, e.g. /24")
    _check_bridge_name("lab bridge", spec.bridge)
    if not _NAME_RE.match(spec.name):
        raise LabError(f"lab name {spec.name!r} must be a hostname label (letters, digits, '-')")
    if (spec.bastion is None) != (spec.inner_bridge is None):
        raise LabError("lab: a bastion and an inner bridge go together (the bastion is the only way to "
                       "the inner bridge); set both or neither")
    inner = inner_network(spec)
    names, hosts, macs = set(), {str(gw.ip)}, set()
    gw6 = None
    if spec.gateway6 is not None:
        try:
            gw6 = ipaddress.IPv6Interface(spec.gateway6)
        except ValueError:
            raise LabError(f"lab gateway6 {spec.gateway6!r} is not an IPv6 address/prefix like fd00:189::1/64") from None
        if gw6.network.prefixlen > 126 or gw6.is_link_local or gw6.ip.is_multicast:
            raise LabError(f"lab gateway6 {spec.gateway6!r} must be a routable-scope address with a "
                           "prefix length up to /126, e.g. fd00:189::1/64")
        hosts.add(str(gw6.ip))
    if spec.bastion is not None:
        b = spec.bastion
        _check_bridge_name("lab inner bridge", spec.inner_bridge)
        if spec.inner_bridge == spec.bridge:
            raise LabError(f"lab inner bridge {spec.inner_bridge!r} is the lab bridge; name another one")
        if not _NAME_RE.match(b.name):
            raise LabError(f"bastion name {b.name!r} must be a hostname label (letters, digits, '-')")
        names.add(b.name)
        _check_host(f"bastion {b.name}", b.host, gw.network, hosts)
        _check_host(f"bastion {b.name}", str(inner.ip), inner.network, hosts, "inner")
        _check_mac(f"bastion {b.name}", b.mac, macs)
        _check_mac(f"bastion {b.name}", b.inner_mac, macs, "inner_mac")
    net = inner.network if inner is not None else gw.network
    for n in spec.nodes:
        if not _NAME_RE.match(n.name):
            raise LabError(f"lab node name {n.name!r} must be a hostname label (letters, digits, '-')")
        if n.name in names:
            raise LabError(f"lab node name {n.name!r} appears twice (or is the bastion's)")
        names.add(n.name)
        _check_host(n.name, n.host, net, hosts)
        _check_mac(n.name, n.mac, macs)
        if n.host6 is not None:
            if gw6 is None:
                raise LabError(f"lab node {n.name} has an IPv6 address but the lab has no gateway6 "
                               "(the bridge's IPv6 address/prefix, e.g. fd00:189::1/64)")
            if spec.bastion is not None:
                raise LabError("a lab with a bastion is IPv4 only (no gateway6 behind a bastion)")
            addr = n.host6.split("/")[0]
            _check_host(n.name, addr, gw6.network, hosts, "IPv6 address")
            if n.host6 != f"{addr}/{gw6.network.prefixlen}":
                raise LabError(f"lab node {n.name}: IPv6 address {n.host6} must carry the lab's prefix "
                               f"/{gw6.network.prefixlen} (gateway6 {spec.gateway6})")
    ifnames = [ifname("lbtk-", n) for n in names]
    if spec.bastion is not None:
        ifnames.append(ifname(INNER_PREFIX, spec.bastion.name))
    if len(set(ifnames)) != len(ifnames):
        raise LabError("lab node names collide once shortened to interface names; rename a node")
    if spec.users is not None:
        u = spec.users
        if not _USER_RE.match(u.name) or u.name == "root":
            raise LabError(f"lab user {u.name!r} must be a login name other than root "
                           "(lowercase letters, digits, '_', '-')")
        unknown = sorted(set(u.sudo_password_nodes) - {n.name for n in spec.nodes})
        if unknown:
            raise LabError(f"lab users.sudo_password_nodes names {', '.join(unknown)}, not a node of the lab")
        if u.sudo_password_nodes and u.password_file is None:
            raise LabError("lab users.sudo_password_nodes needs users.password_file (where the password is kept)")
    return gw


def run(cmd: list[str], *, check: bool = True, input: str | None = None, timeout: float = 120,
        env: dict | None = None, what: str | None = None) -> subprocess.CompletedProcess:
    """Run a host command, text in/out captured. Failures become one-line LabErrors."""
    try:
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                           env=env, stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise LabError(f"{cmd[0]}: command not found (run scripts/setup.sh)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{what or ' '.join(cmd[:3])}: no answer after {timeout:.0f}s") from None
    if check and r.returncode != 0:
        raise LabError(f"{what or ' '.join(cmd[:3])} failed (exit {r.returncode}): {last_line(r.stderr or r.stdout)}")
    return r


def last_line(text: str) -> str:
    """The line that says why (the lab's own commands): parsers.lbtk.last_line."""
    from fabfile.parsers.lbtk import last_line as _last
    return _last(text or "", "no output")


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise LabError(f"{what} needs root (network namespaces, mounts, systemd-nspawn)")


def one_line(fn):
    """Public entry points raise LabError only: OS and subprocess failures become one line too."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except LabError:
            raise
        except subprocess.TimeoutExpired as e:
            raise LabError(f"{_cmd_name(e.cmd)}: no answer after {e.timeout:.0f}s") from None
        except subprocess.SubprocessError as e:
            raise LabError(f"{_cmd_name(getattr(e, 'cmd', None))} failed: {e}") from None
        except OSError as e:
            where = f" ({e.filename})" if e.filename else ""
            raise LabError(f"{e.strerror or e}{where}") from None
    return wrapper


def _cmd_name(cmd) -> str:
    return " ".join(map(str, cmd[:2])) if isinstance(cmd, (list, tuple)) else str(cmd or "command")


def lab_path(p) -> Path:
    return Path(os.path.abspath(p))


def check_lab_dir(lab_dir: Path) -> None:
    """The lab dir sits under /var/tmp by default: refuse one root does not own alone."""
    st = os.lstat(lab_dir)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise LabError(f"{lab_dir} is not a plain directory; remove it or set LBTK_LAB_DIR")
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise LabError(f"{lab_dir} is writable by others or not ours; remove it or set LBTK_LAB_DIR")


@contextlib.contextmanager
def locked(lab_dir: Path, name: str = ".lock"):
    """One lab operation at a time per lab dir (up/down, a base's swap); a second one waits.
    `name`: another lock in the dir (a release's debootstrap, rootfs.py)."""
    lab_dir = lab_path(lab_dir)
    lab_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    check_lab_dir(lab_dir)
    with open(lab_dir / name, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` in this mount namespace, deepest (latest) first."""
    p = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if mp == p or mp.startswith(p.rstrip("/") + "/"):
                found.append(mp)
    return found[::-1]


def unmount_under(path: Path) -> None:
    """Unmount everything at or below `path` (left-overs of a crash included); lazily if busy."""
    for _ in range(3):
        mps = mounts_under(path)
        if not mps:
            return
        for mp in mps:
            if run(["umount", mp], check=False).returncode != 0:
                run(["umount", "-l", mp], check=False)
    if mounts_under(path):
        raise LabError(f"cannot unmount {mounts_under(path)[0]} (still busy?)")


def remove_tree(path: Path) -> None:
    """rm -rf that first unmounts whatever is mounted inside, so it never deletes through a mount."""
    if not path.exists() and not path.is_symlink():
        return
    unmount_under(path)
    shutil.rmtree(path)


# The public interface. The host-side modules load on first use: the task layer imports the lab's
# light parts (its inventory section, fabfile/lab/hooks.py) at every start, these only when a lab
# task runs (tests/unit/test_imports.py).
_LAZY = {"build_rootfs": "fabfile.lab.rootfs", "up": "fabfile.lab.nspawn", "down": "fabfile.lab.nspawn",
         "reimage": "fabfile.lab.nspawn", "status": "fabfile.lab.nspawn", "ssh_config": "fabfile.lab.nspawn"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(_LAZY[name]), name)

__all__ = ["LabError", "LabNode", "LabSpec", "LabBastion", "LabUsers", "NodeStatus", "build_rootfs", "up",
           "down", "reimage", "status", "ssh_config"]
