#!/usr/bin/env python3
"""Classify keepalived's own doc/samples (tests/fixtures/keepalived-samples/) with the real
`keepalived -t` of this host (Debian 12: 2.2.7) and, when the trixie lab rootfs is there, of
Debian 13 (2.3.3); write manifest.json beside them. Re-runnable: same files, same manifest.

Each check runs in a throwaway network namespace (`unshare -n`, as fabfile/infra/confcheck.py
isolates its checks) holding every interface the sample names (veth pairs: this host's kernel has
no dummy driver), so a sample is not marked invalid only for naming eth1. Needs root.

    .venv/bin/python scripts/classify-keepalived-samples.py
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fabfile.parsers.keepalived_conf import Stmt, parse_conf          # noqa: E402
from fabfile.parsers.keepalived_t import parse_keepalived_check       # noqa: E402

SAMPLES = ROOT / "tests/fixtures/keepalived-samples"
TIMEOUT = 20
TRIXIE = Path("/var/tmp/lbtk-lab/base-trixie")
# keywords whose first argument is an interface name; blocks whose lines start with one
IFACE_ARG = {"interface", "lvs_sync_daemon_interface", "lvs_sync_daemon", "bind_if", "default_interface"}
IFACE_LINES = {"track_interface"}


def interfaces(stmts: list[Stmt]) -> set[str]:
    found: set[str] = set()
    for s in stmts:
        words = [s.keyword, *s.args]
        if s.keyword in IFACE_ARG and s.args:
            found.add(s.args[0])
        found |= {words[i + 1] for i, w in enumerate(words[:-1]) if w == "dev"}
        if s.keyword in IFACE_LINES:
            found |= {c.keyword for c in s.children or []}
        found |= interfaces(s.children or [])
    return {i for i in found if i.replace(".", "").replace("-", "").replace("_", "").isalnum() and len(i) < 16}


def check(conf: Path, ifaces: set[str], chroot: Path | None) -> dict:
    setup = "".join(f"ip link add name {i} type veth peer name kp{k} && ip link set dev {i} up && "
                    for k, i in enumerate(sorted(ifaces)))
    with tempfile.TemporaryDirectory(prefix="lbtk-samples-", dir=chroot / "tmp" if chroot else None) as d:
        copy = Path(d) / conf.name
        shutil.copyfile(conf, copy)
        inner = f"/tmp/{Path(d).name}/{conf.name}" if chroot else str(copy)
        exe = f"chroot {chroot} keepalived" if chroot else "keepalived"
        # its own process group: a keepalived -t that hangs (2.3.3 on SMTP_CHECK) is killed whole
        p = subprocess.Popen(["unshare", "-n", "sh", "-c", f"{setup}exec {exe} -t -f {inner}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            return {"valid": False, "exit_code": None, "verdict": "timeout",
                    "messages": [f"keepalived -t did not finish within {TIMEOUT} s"]}
        err = err.replace(inner, conf.name).replace(str(copy), conf.name)
    c = parse_keepalived_check(out, err, p.returncode)
    return {"valid": p.returncode == 0, "exit_code": p.returncode, "verdict": c.verdict,
            "messages": list(c.messages)[:5]}


def main() -> int:
    if os.geteuid() != 0:
        print("error: needs root (unshare -n) — run as root", file=sys.stderr)
        return 2
    version = subprocess.run(["keepalived", "-v"], capture_output=True, text=True).stderr.split("\n")[0]
    trixie = TRIXIE if (TRIXIE / "usr/sbin/keepalived").exists() else None
    manifest = {"keepalived": version, "samples": {}}
    for conf in sorted(SAMPLES.glob("keepalived.conf.*")):
        tree = parse_conf(conf.read_text(), conf.name)
        ifaces = interfaces(tree.top)
        entry = {"interfaces": sorted(ifaces), **check(conf, ifaces, None)}
        if trixie:
            entry["trixie"] = check(conf, ifaces, trixie)
        manifest["samples"][conf.name] = entry
        print(f"{conf.name}: {'valid' if entry['valid'] else 'invalid'} (exit {entry['exit_code']})"
              + (f", 2.3.3 exit {entry['trixie']['exit_code']}" if trixie else ""))
    (SAMPLES / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
