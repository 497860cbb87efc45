"""notify_fifo on the lab (issue 26): keepalived writes every VRRP transition to the FIFO the
inventory names, and the reader it names gets each line. Deployed from a temporary copy of the lab
inventory; a graceful failover must show up as MASTER/BACKUP lines on the nodes that changed."""
from __future__ import annotations

import time

import pytest

from .conftest import inv, inv_json, lab_variant, sh

ENV = "lab-notify-fifo-test"
READER = "/usr/local/sbin/lbtk-test-fifo-reader"
LOG = "/run/lbtk-test-fifo.log"
# keepalived starts the reader with the FIFO's path as its last argument and writes one line a
# transition: INSTANCE "VI_1" MASTER 100
SCRIPT = f"""#!/bin/sh
while :; do while IFS= read -r line; do printf '%s\\n' "$line" >> {LOG}; done < "$1"; done
"""


def _fifo_on(data):
    data.setdefault("global_defs", {}).update(vrrp_notify_fifo="/run/keepalived-vrrp.fifo",
                                              vrrp_notify_fifo_script=READER)


@pytest.fixture
def fifo_env(deployed, nodes):
    for c in nodes.values():   # the reader exists on the nodes (root-owned, 0755: script security)
        sh(c, f"cat > {READER} <<'EOF'\n{SCRIPT}EOF\nchmod 0755 {READER}; rm -f {LOG}")
    with lab_variant(ENV, _fifo_on) as env:
        yield env
    for c in nodes.values():
        sh(c, f"rm -f {READER} {LOG} /run/keepalived-vrrp.fifo")


def _lines(c) -> list[str]:
    return [ln for ln in sh(c, f"cat {LOG} 2>/dev/null").stdout.splitlines() if ln.strip()]


def test_every_transition_reaches_the_fifo_reader(fifo_env, nodes):
    inv("deploy", "--env", fifo_env, check=True)
    for n, c in nodes.items():
        assert "vrrp_notify_fifo /run/keepalived-vrrp.fifo" in sh(c, "cat /etc/keepalived/keepalived.conf").stdout
    # a reload keeps the FIFO; restart keepalived so every node reports its starting state
    for c in nodes.values():
        sh(c, "systemctl restart keepalived")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(any("MASTER" in ln or "BACKUP" in ln for ln in _lines(c))
                                                   for c in nodes.values()):
        time.sleep(0.5)
    for n, c in nodes.items():
        assert any(ln.startswith('INSTANCE "VI_1"') for ln in _lines(c)), (n, _lines(c))
    before = {n: len(_lines(c)) for n, c in nodes.items()}
    rc, drill = inv_json("failover-test", "--env", fifo_env, "--mode", "graceful")
    assert rc == 0, drill
    time.sleep(1)
    new = {n: _lines(c)[before[n]:] for n, c in nodes.items()}
    assert any(any("MASTER" in ln for ln in lines) for lines in new.values()), new
    assert any(any("BACKUP" in ln or "STOP" in ln for ln in lines) for lines in new.values()), new
