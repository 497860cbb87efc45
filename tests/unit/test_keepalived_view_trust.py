"""keepalived's JSON view is read from /tmp only when keepalived can have written it (issue 24):
the fact's own command runs here against a stand-in keepalived (a shell that writes the dump when
signalled, as keepalived does: a new file renamed into place), with its paths moved to a temporary
directory. Another user's file, a symlink or a FIFO in the dump's place reads as "unavailable"."""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from fabfile.infra import facts as F
from fabfile.parsers import keepalived_json
from fabfile.parsers.lbtk import Raw

FIXTURE = Path(__file__).parents[1] / "fixtures" / "keepalived_json" / "healthy_node1.json"
NOBODY = 65534

# on the signal: what `mode` says lands where the dump goes
KEEPALIVED = r"""
d=$1
dump() {
  m=$(cat "$d/mode")
  case $m in
    good) cp "$d/dump.json" "$d/tmp.json"; mv -f "$d/tmp.json" "$d/keepalived.json";;
    foreign) cp "$d/dump.json" "$d/tmp.json"; chown 65534 "$d/tmp.json"; mv -f "$d/tmp.json" "$d/keepalived.json";;
    symlink) ln -sf "$d/dump.json" "$d/keepalived.json";;
    fifo) mkfifo "$d/keepalived.json";;
  esac
}
trap dump USR1
# until the test process is gone (an xdist worker ends without atexit): an orphan left looping
# here forked 50 times a second for ever, slowing every later run on the machine
while kill -0 "$2" 2>/dev/null; do sleep 0.05; done
"""


def _start_rig() -> tuple[Path, subprocess.Popen, float] | None:
    """The fake keepalived and its directory, started when this module is collected: the command
    leaves a keepalived younger than 2 s alone, so by the time a test here runs it has (mostly)
    aged instead of every run sleeping 2 s. Stopped and removed when the test process exits."""
    if os.geteuid() != 0:
        return None
    d = Path(tempfile.mkdtemp(prefix="lbtk-ka-view-"))
    (d / "dump.json").write_text(FIXTURE.read_text())
    (d / "binary").write_text("")
    os.utime(d / "binary", (0, 0))          # older than the cached signal number: it is used
    (d / "signum").write_text(f"{int(signal.SIGUSR1)}\n")
    ka = subprocess.Popen(["sh", "-c", KEEPALIVED, "sh", str(d), str(os.getpid())])
    (d / "pid").write_text(f"{ka.pid}\n")

    def stop():
        ka.kill()
        ka.wait()
        shutil.rmtree(d, ignore_errors=True)
    atexit.register(stop)
    return d, ka, time.monotonic()


_RIG = _start_rig()


@pytest.fixture(scope="module")
def rig():
    if _RIG is None:
        pytest.skip("needs root: a dump owned by another user is made with chown")
    d, _, started = _RIG
    time.sleep(max(0.0, 2.1 - (time.monotonic() - started)))   # older than 2 s, as a running keepalived is
    return d


def view(d: Path, mode: str):
    (d / "mode").write_text(mode)
    cmd = (F.KEEPALIVED_VIEW.command.replace(F.KA_JSON_FILE, str(d / "keepalived.json"))
           .replace("/run/keepalived.pid", str(d / "pid")).replace(F.KA_SIGNUM, str(d / "signum"))
           .replace("/usr/sbin/keepalived", str(d / "binary")))
    r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=20)
    return r.stdout, F.KEEPALIVED_VIEW.parse(Raw(r.stdout, r.stderr, r.returncode))


def test_keepalived_s_own_dump_is_read(rig):
    out, views = view(rig, "good")
    assert views and views == keepalived_json.parse_keepalived_json(FIXTURE.read_text())


@pytest.mark.parametrize("mode", ["foreign", "symlink", "fifo"])
def test_anything_else_in_its_place_is_unavailable(rig, mode):
    out, views = view(rig, mode)
    assert out.strip() == keepalived_json.NO_JSON and views is None
