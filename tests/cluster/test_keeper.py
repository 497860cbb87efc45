"""Connections kept between runs (fabfile/infra/keeper.py, ssh.control_persist) on the real lab:
a second run rides the first run's connections (no new SSH connection to any node), a change
(the deploy lock held on a kept channel, files over SFTP, a reload) goes through them, a run killed
while it holds something on a node lets go of it at once, and a keeper that is gone costs nothing
but the handshakes. The rest of the tests run with LBTK_CONTROL_PERSIST=0 (tests/conftest.py)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import ROOT, sh

CONF = "/etc/keepalived/keepalived.conf"


@pytest.fixture
def kept(tmp_path, monkeypatch):
    """Runs that keep their connections, with a keeper of this test's own (its own directory),
    stopped when the test ends."""
    monkeypatch.setenv("LBTK_CONTROL_PERSIST", "30")
    monkeypatch.setenv("LBTK_CACHE_DIR", str(tmp_path / "cache"))
    from fabfile.infra import keeper
    yield keeper
    keeper.stop()


def inv(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=180, env={**os.environ, "LBTK_FORMAT": "plain"})
    assert not check or r.returncode == 0, f"inv {' '.join(args)} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def held(keeper, n: int, limit: float = 10) -> dict:
    """The keeper's stats once it holds n connections (it connects after the first run ends)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        s = keeper.stats()
        if s and s["held"] >= n:
            return s
        time.sleep(0.1)
    raise AssertionError(f"the keeper did not come to hold {n} connections: {keeper.stats()}")


def test_a_second_run_rides_the_first_runs_connections(deployed, kept):
    inv("verify", "--env", "lab", "--no-http")
    first = held(kept, 3)
    assert first["connects"] == 3
    r = inv("verify", "--env", "lab", "--no-http")
    assert "all passed" in r.stdout
    after = kept.stats()
    assert after["connects"] == 3, "the second run opened connections of its own"
    assert after["sessions"] >= first["sessions"] + 3           # one round trip per node, at least
    assert json.loads(inv("connections", "--json").stdout)["held"] == 3


def test_a_change_goes_through_kept_connections(deployed, kept, nodes):
    inv("verify", "--env", "lab", "--no-http")
    before = held(kept, 3)
    try:
        # the deploy lock held on a kept channel, the files over the kept SFTP, keepalived reloaded
        inv("drain", "--env", "lab", "--server", "node3")
        assert "weight 0" in sh(nodes["node1"], f"grep -A1 'real_server 10.189.0.13' {CONF}").stdout
    finally:
        inv("undrain", "--env", "lab", "--server", "node3")
    assert "weight 0" not in sh(nodes["node1"], f"grep -A1 'real_server 10.189.0.13' {CONF}").stdout
    assert kept.stats()["connects"] == before["connects"], "the change connected by itself"
    r = inv("diff", "--env", "lab", check=False)
    assert r.returncode == 0, r.stdout                            # what landed is what the inventory says
    # the lock was released: no record left behind, a further run takes it again
    assert sh(nodes["node1"], "cat /var/lib/lbtk/lock 2>/dev/null").stdout.strip() == ""


HOLDER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import fabfile.tasks  # noqa: F401  (the lab's hooks)
from fabfile.infra import remote
from fabfile.model.context import load_env
with remote.nodes(load_env("lab"), ["node2"]) as g:
    c = g.links[0]
    remote.ensure_open(c)
    assert c.kept, "not on the kept connection"
    h, _ = remote.hold(c, "exec flock /run/lbtk-keeper-test.flock sh -c 'echo HELD; cat'", "HELD")
    print("holding", flush=True)
    time.sleep(120)
"""


def test_a_killed_run_lets_go_of_what_it_held(deployed, kept, nodes):
    """The deploy lock's safety rests on this: when a run dies, the node's side of its channel ends
    (a kept channel: the keeper sees the run's socket close and closes the channel)."""
    inv("verify", "--env", "lab", "--no-http")
    held(kept, 3)
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(ROOT)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ})
    try:
        assert p.stdout.readline().strip() == "holding"
        busy = sh(nodes["node2"], "flock -n /run/lbtk-keeper-test.flock true")
        assert busy.exited != 0, "the flock is not held"
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        t0 = time.monotonic()
        while sh(nodes["node2"], "flock -n /run/lbtk-keeper-test.flock true").exited != 0:
            assert time.monotonic() - t0 < 5, "the killed run's flock is still held on the node"
            time.sleep(0.1)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert kept.stats()["held"] == 3                              # the connection itself stays kept


def test_without_a_keeper_runs_connect_themselves(deployed, kept):
    inv("verify", "--env", "lab", "--no-http")
    held(kept, 3)
    r = inv("connections", "--stop")
    assert "3 connection(s) ended" in r.stdout
    assert kept.stats() is None
    assert "all passed" in inv("verify", "--env", "lab", "--no-http").stdout
    assert held(kept, 3)["connects"] == 3                         # a new keeper, from that run's close
