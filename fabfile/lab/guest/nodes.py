"""Inside the kernel-tier VM: bring the lab's systemd nodes up (or down) with fabfile.lab's own
nspawn code, and publish what the host needs (known_hosts, host keys) on the exchange share.

    python3 -m fabfile.lab.guest.nodes SHARE [--down]

SHARE/spec.json (written by the host): nodes (each with its Debian release), guest bridge, guest
address, the host's lab base of each release the nodes run, and the client key. Stdlib only: this
runs with the host's python3 over 9p, no virtualenv.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

GUEST_LAB_DIR = Path("/run/lbtk-klab")     # tmpfs: overlays need a real upper filesystem
SYSV_SCRIPTS = ("nginx", "keepalived")


def _spec(share: Path):
    from fabfile.lab import LabNode, LabSpec
    s = json.loads((share / "spec.json").read_text())
    nodes = tuple(LabNode(n["name"], n["host"], n.get("mac"), n["release"], n.get("host6")) for n in s["nodes"])
    return s, LabSpec(nodes=nodes, bridge=s["guest_bridge"], gateway=s["guest_addr"],
                      gateway6=s.get("guest_addr6"), lab_dir=GUEST_LAB_DIR)


def _prepare(s: dict, spec, share: Path) -> None:
    """The guest lab dir: the host's base rootfs of each release (raw 9p view) and its stamp, the
    client key, host keys."""
    from fabfile.lab import rootfs
    GUEST_LAB_DIR.mkdir(mode=0o755, exist_ok=True)
    host = Path("/run/lbtk-host")
    for release, b in s["bases"].items():
        base = rootfs.base_dir(spec, release)
        if not os.path.ismount(base):
            # the host's base (raw 9p view) under a tmpfs layer of the VM's own: SysV scripts of the
            # daemons the toolkit enables go, so `systemctl enable` does not run update-rc.d (perl),
            # which takes minutes under TCG on a busy machine; systemd uses the native units anyway
            upper, work = GUEST_LAB_DIR / f".{base.name}-upper", GUEST_LAB_DIR / f".{base.name}-work"
            for d in (base, upper, work):
                d.mkdir(exist_ok=True)
            subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={host / b['base'].lstrip('/')},upperdir={upper},workdir={work}", str(base)],
                           check=True)
            for script in SYSV_SCRIPTS:
                (base / "etc/init.d" / script).unlink(missing_ok=True)
        shutil.copyfile(host / b["stamp"].lstrip("/"), rootfs.stamp_path(spec, release))
    for suffix, mode in (("", 0o600), (".pub", 0o644)):
        dst = GUEST_LAB_DIR / f"id_ed25519{suffix}"
        shutil.copyfile(host / (s["client_key"] + suffix).lstrip("/"), dst)
        dst.chmod(mode)
    if (share / "hostkeys").is_dir():
        shutil.copytree(share / "hostkeys", GUEST_LAB_DIR / "hostkeys", dirs_exist_ok=True)
        for f in (GUEST_LAB_DIR / "hostkeys").glob("*/ssh_host_*"):
            f.chmod(0o644 if f.name.endswith(".pub") else 0o600)


def _publish(share: Path) -> None:
    shutil.copytree(GUEST_LAB_DIR / "hostkeys", share / "hostkeys", dirs_exist_ok=True)
    tmp = share / ".known_hosts.tmp"
    shutil.copyfile(GUEST_LAB_DIR / "known_hosts", tmp)
    tmp.replace(share / "known_hosts")


def main(argv: list[str]) -> int:
    from fabfile.lab import LabError, down, nspawn, up
    nspawn.SYSTEMCTL_TIMEOUT = 60.0          # systemctl in a node under TCG on a busy machine
    nspawn.BANNER_TIMEOUT = 10.0             # and sshd's greeting
    share = Path(argv[0])
    s, spec = _spec(share)

    def progress(msg: str) -> None:
        line = f"{time.clock_gettime(time.CLOCK_BOOTTIME):.2f} {msg}\n"
        with open(share / "stages", "a") as f:
            f.write(line)
        print(msg, flush=True)
    try:
        if "--down" in argv:
            down(spec, progress=progress)
            return 0
        _prepare(s, spec, share)
        up(spec, progress=progress, timeout=float(s.get("boot_timeout", 240)))
        _publish(share)
    except LabError as e:
        progress(f"FAILED {e}")
        return 1
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv[1:]))
