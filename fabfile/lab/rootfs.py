"""The lab's base rootfs per Debian release, debootstrap'd once and reused: bookworm (the default)
in LAB_DIR/base, any other release R in LAB_DIR/base-R (base-trixie); a node's overlay sits on
its own release's base.

`LAB_DIR/base.stamp` (base-R.stamp) records what a base was built from (suite, variant, package
list, recipe version); a different wanted stamp rebuilds it. bookworm's stamp is what it was
before releases existed, so a lab dir shared with older clones keeps its base. The mirror is the
one this machine's apt sources already use, for every release (`LBTK_LAB_MIRROR` overrides); no
host name is written here.

A rebuild while nodes still run on the old base (another lab sharing the lab dir) does not touch
them: the old base is renamed `base.old-N` (`base-R.old-N`; their overlays keep it as their lower
layer) and is removed by the first build or `down` that finds no running node on it.
debootstrap runs under a lock of its release only (`.lock-R`), so a build never holds up another
lab's `up` or `down`; the lab lock is taken just for the swap.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from fabfile.parsers import ParseError
from fabfile.parsers.lbtk import first_int
from fabfile.lab import (DEFAULT_RELEASE, LabError, LabSpec, lab_path, last_line, locked, mounts_under, one_line, remove_tree, require_root)

VARIANT = "minbase"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "iproute2", "procps", "openssh-server", "keepalived",
            "ipvsadm", "nginx-light", "curl", "python3", "iptables", "kmod", "sudo", "rsyslog",
            "prometheus-node-exporter")
RECIPE = 4          # bump when customize() changes, so existing bases get rebuilt


@dataclass(frozen=True)
class Release:
    """What debootstrap --include takes for one Debian release, and its recipe version."""
    suite: str
    packages: tuple[str, ...]
    recipe: int


def releases() -> dict[str, Release]:
    """Every release the lab builds (read at call time: tests change PACKAGES and RECIPE)."""
    return {
        "bookworm": Release("bookworm", PACKAGES, RECIPE),
        # trixie has no nginx-light any more (nginx is the one server package, modules apart)
        "trixie": Release("trixie", tuple("nginx" if p == "nginx-light" else p for p in PACKAGES), RECIPE),
    }


RELEASES = tuple(releases())


def release(name: str) -> Release:
    try:
        return releases()[name]
    except KeyError:
        raise LabError(f"lab release {name!r} is not one the lab builds; use one of {', '.join(RELEASES)}"
                       ) from None


# Units that would start badly or uselessly in a lab node (no network out, no ttys, no disks).
MASK = ("apt-daily.timer", "apt-daily.service", "apt-daily-upgrade.timer", "apt-daily-upgrade.service",
        "dpkg-db-backup.timer", "dpkg-db-backup.service", "e2scrub_all.timer", "e2scrub_reap.service",
        "fstrim.timer", "man-db.timer", "logrotate.timer", "systemd-timesyncd.service",
        "console-getty.service", "getty@tty1.service", "serial-getty@.service", "getty-static.service",
        "systemd-networkd-wait-online.service", "ifupdown-pre.service", "networking.service")
# Installed and ready, but started only by the toolkit's deploy (which enables them). rsyslog too:
# only an inventory with `logging:` wants it (keepalived's own log file), and a node otherwise
# logs to the journal alone, as a minimal server does. node_exporter likewise: only an inventory with
# `monitoring.publish` wants it, and its monitoring phase enables it.
NOT_AT_BOOT = ("keepalived.service", "nginx.service", "rsyslog.service", "prometheus-node-exporter.service")
REQUIRED_FILES = ("usr/sbin/sshd", "usr/sbin/keepalived", "usr/sbin/nginx", "usr/sbin/ipvsadm",
                  "usr/bin/curl", "usr/bin/python3", "usr/sbin/iptables", "lib/systemd/systemd",
                  "usr/sbin/rsyslogd")

SSHD_CONF = """\
# lbtk lab node: root logs in by key only (the lab's id_ed25519), quickly.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
GSSAPIAuthentication no
UseDNS no
"""
JOURNALD_CONF = "[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n"
RESOLV_CONF = "# lbtk lab node: no DNS, no route out; names come from /etc/hosts\n"


def stamp(name: str = DEFAULT_RELEASE) -> dict:
    """What a release's base is built from; any change means a rebuild."""
    r = release(name)
    return {"suite": r.suite, "variant": VARIANT, "packages": sorted(r.packages), "recipe": r.recipe}


def _base_name(name: str) -> str:
    return "base" if name == DEFAULT_RELEASE else f"base-{name}"


def base_dir(spec: LabSpec, name: str = DEFAULT_RELEASE) -> Path:
    return lab_path(spec.lab_dir) / _base_name(release(name).suite)


def stamp_path(spec: LabSpec, name: str = DEFAULT_RELEASE) -> Path:
    return lab_path(spec.lab_dir) / f"{_base_name(release(name).suite)}.stamp"


def is_current(spec: LabSpec, name: str = DEFAULT_RELEASE) -> bool:
    base, st = base_dir(spec, name), stamp_path(spec, name)
    try:
        return base.is_dir() and json.loads(st.read_text()) == stamp(name)
    except (OSError, ValueError):
        return False


def spec_releases(spec: LabSpec) -> list[str]:
    """The releases a spec's nodes (and bastion) run, the default first when used."""
    used = {n.release for n in spec.nodes} | ({spec.bastion.release} if spec.bastion else set())
    return [r for r in RELEASES if r in used] + sorted(used - set(RELEASES))


@one_line
def build_rootfs(spec: LabSpec, progress=print) -> dict[str, Path]:
    """The base of every release the spec's nodes run, {release: path}, each built first if it is
    missing or outdated (idempotent)."""
    return {name: build_release(spec, name, progress) for name in spec_releases(spec)}


@one_line
def build_release(spec: LabSpec, name: str = DEFAULT_RELEASE, progress=print) -> Path:
    """Return the base of release `name`, debootstrapping it first if it is missing or outdated."""
    rel = release(name)
    lab_dir = lab_path(spec.lab_dir)
    if is_current(spec, name):
        return base_dir(spec, name)
    require_root("building the lab rootfs")
    with locked(lab_dir, f".lock-{rel.suite}"):
        if is_current(spec, name):            # built by a concurrent caller meanwhile
            return base_dir(spec, name)
        if shutil.which("debootstrap") is None:
            raise LabError("debootstrap: command not found (run scripts/setup.sh)")
        mirror, keyring = apt_mirror()
        base = base_dir(spec, name)
        new = base.with_name(base.name + ".new")
        remove_tree(new)                      # a build that died half-way
        progress(f"rootfs: debootstrap {rel.suite} ({VARIANT}, {len(rel.packages)} packages) from {mirror}, "
                 "once (~1 min)")
        t0 = time.monotonic()
        log = lab_dir / ("debootstrap.log" if name == DEFAULT_RELEASE else f"debootstrap-{rel.suite}.log")
        cmd = ["debootstrap", f"--variant={VARIANT}", f"--include={','.join(rel.packages)}"]
        if keyring:
            cmd.append(f"--keyring={keyring}")
        cmd += [rel.suite, str(new), mirror]
        with open(log, "w") as out:
            try:
                rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=1800, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
                                    ).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        if rc != 0:
            remove_tree(new)
            raise LabError(f"debootstrap {rel.suite} failed ({rc}): {_debootstrap_error(log)} (full log: {log})")
        customize(new)
        with locked(lab_dir):                 # the swap only: in_use() must not race a node's up/down
            if base.exists():
                if in_use(lab_dir, base):
                    # running nodes keep it as their overlay's lower layer: set it aside, never delete it
                    old = _old_base_name(lab_dir, base.name)
                    base.rename(old)
                    progress(f"rootfs: nodes still run on the previous {rel.suite} base: kept as {old.name} "
                             "until they stop")
                else:
                    remove_tree(base)
            new.rename(base)
            stamp_path(spec, name).write_text(json.dumps(stamp(name)) + "\n")
            gc_old_bases(lab_dir, progress)
        mb = _du_mb(base)
        progress(f"rootfs: {rel.suite} built in {time.monotonic() - t0:.0f}s ({mb} MB) at {base}")
        return base


# A file of the base that no node ever changes: in a running node's overlay (all layers on one
# file system) it has the inode of the base it comes from, which tells which base a node runs on.
MARKER = "usr/lib/os-release"


def _ino(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _running_roots(lab_dir: Path) -> list[Path]:
    """Root mounts of the nodes currently mounted under LAB_DIR/nodes (any lab sharing the dir)."""
    return [Path(mp) for mp in mounts_under(lab_dir / "nodes") if Path(mp).name == "root"]


def in_use(lab_dir: Path, base: Path) -> bool:
    """True when a mounted node may run on `base`; when that cannot be told, also True."""
    roots = _running_roots(lab_dir)
    if not roots:
        return False
    mark = _ino(base / MARKER)
    known = {_ino(b / MARKER) for b in _bases(lab_dir)} - {None}
    for r in roots:
        ino = _ino(r / MARKER)
        if ino is None or ino not in known or mark is None or ino == mark:
            return True          # on this base, or on one that cannot be told
    return False


def _bases(lab_dir: Path) -> list[Path]:
    """Every base in the lab dir, of every release, current or set aside (not a half-built .new)."""
    return [p for p in sorted(lab_dir.glob("base*")) if p.is_dir() and not p.is_symlink()
            and re.fullmatch(r"base(-[a-z]+)?(\.old-\d+)?", p.name)]


def _old_base_name(lab_dir: Path, current: str = "base") -> Path:
    n = 1
    while (lab_dir / f"{current}.old-{n}").exists():
        n += 1
    return lab_dir / f"{current}.old-{n}"


def gc_old_bases(lab_dir: Path, progress=print) -> None:
    """Remove each set-aside base no running node uses any more (the caller holds the lab lock)."""
    for old in sorted(lab_path(lab_dir).glob("base*.old-*")):
        if old.is_dir() and not old.is_symlink() and not in_use(lab_path(lab_dir), old):
            remove_tree(old)
            progress(f"rootfs: removed {old.name} (no node runs on it any more)")


def customize(root: Path) -> None:
    """Make a fresh debootstrap tree a lab node image (pure file work, no chroot needed)."""
    missing = [f for f in REQUIRED_FILES if not (root / f).exists()]
    if missing:
        raise LabError(f"rootfs is missing {', '.join(missing)} after debootstrap")
    # apt caches: the nodes have no route out, so they are dead weight
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*"):
        for p in root.glob(pattern):
            if p.is_file() and p.name != "lock":
                p.unlink()
    etc_sd = root / "etc/systemd/system"
    for unit in MASK:
        link = etc_sd / unit
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("/dev/null")
    for wants in etc_sd.glob("*.wants"):
        for unit in NOT_AT_BOOT + MASK:
            if (wants / unit).is_symlink():
                (wants / unit).unlink()
    _link(etc_sd / "default.target", "/lib/systemd/system/multi-user.target")
    _link(etc_sd / "multi-user.target.wants/ssh.service", "/lib/systemd/system/ssh.service")
    _link(etc_sd / "sshd.service", "/lib/systemd/system/ssh.service")
    (root / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/ssh/sshd_config.d/lbtk-lab.conf").write_text(SSHD_CONF)
    for key in (root / "etc/ssh").glob("ssh_host_*"):     # every node makes its own at `up`
        key.unlink()
    (root / "etc/systemd/journald.conf.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/systemd/journald.conf.d/lbtk-lab.conf").write_text(JOURNALD_CONF)
    resolv = root / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    resolv.write_text(RESOLV_CONF)
    (root / "etc/machine-id").write_text("")             # each node gets its own at `up`
    (root / "etc/hostname").write_text("localhost\n")


def _link(link: Path, target: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def apt_mirror(sources_d: Path = Path("/etc/apt/sources.list.d"),
               sources_list: Path = Path("/etc/apt/sources.list")) -> tuple[str, str | None]:
    """(mirror URI, keyring or None) of the Debian archive this machine's apt already uses."""
    env = os.environ.get("LBTK_LAB_MIRROR")
    if env:
        return env, None
    candidates: list[tuple[str, str | None, list[str]]] = []
    for f in sorted(sources_d.glob("*.sources")) if sources_d.is_dir() else []:
        candidates += parse_deb822(f.read_text(errors="replace"))
    if sources_list.is_file():
        candidates += parse_sources_list(sources_list.read_text(errors="replace"))
    for sub in sorted(sources_d.glob("*.list")) if sources_d.is_dir() else []:
        candidates += parse_sources_list(sub.read_text(errors="replace"))
    for uri, keyring, suites in candidates:
        # the main archive: a plain release suite (not -security/-updates), not the security archive;
        # it serves every release (the host may be bookworm and the node trixie), and Debian's
        # archive keyring signs them all
        if any(s in RELEASES for s in suites) and not uri.rstrip("/").endswith("-security"):
            return uri, keyring if keyring and Path(keyring).is_file() else None
    raise LabError(f"no Debian mirror ({' or '.join(RELEASES)}) in /etc/apt/sources.list(.d); "
                   "set LBTK_LAB_MIRROR=<URI>")


def parse_deb822(text: str) -> list[tuple[str, str | None, list[str]]]:
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, val = line.partition(":")
                key = key.strip().lower()
                fields[key] = val.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        signed = fields.get("signed-by", "").strip()
        keyring = signed if signed.startswith("/") and "\n" not in signed and " " not in signed else None
        for uri in fields.get("uris", "").split():
            out.append((uri, keyring, fields.get("suites", "").split()))
    return out


def parse_sources_list(text: str) -> list[tuple[str, str | None, list[str]]]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r"^deb\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)", line)
        if m:
            opts = dict(o.split("=", 1) for o in (m["opts"] or "").split() if "=" in o)
            out.append((m["uri"], opts.get("signed-by"), [m["suite"]]))
    return out


def _debootstrap_error(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    errors = [ln for ln in lines if ln.startswith(("E:", "W: Failure"))]
    return (errors[-1] if errors else last_line("\n".join(lines)))[:300]


def _du_mb(path: Path) -> int:
    r = subprocess.run(["du", "-sxm", str(path)], capture_output=True, text=True)
    try:
        return first_int(r.stdout)
    except ParseError:
        return 0
