"""Issue 27 on the kernel tier (real IPVS): the seed tutorial's cluster built by hand on the VM's
three nodes (keepalived.conf with its DR virtual_server and the directors as real servers, the
ARP sysctls, the VIP on lo by a unit of its own, no --vrrp: the kernel has IPVS), adopted with
`inv import`, then deployed by lbtk: no VIP move, no restart, and every director's IPVS table
the same before and after the deploy.

No probe through the VIP here: the tutorial's topology (the directors are also their own DR real
servers, with no fix) loops by itself (docs/INVENTORY-GUIDE.md), so requests fail before lbtk
touches anything; the import keeps it that way (director_fix: false) and says how to fix it. The
plain lab's tests/cluster/test_adopt.py runs the 10 ms probe through the deploy.
"""
from __future__ import annotations

import threading
import time

import pytest
import yaml

from fabfile.model.loading import inventory_dir
from fabfile.parsers.ipvsadm import parse_list

from .conftest import inv, sh

pytestmark = pytest.mark.kernel
VIP = "10.189.0.150"
HOSTS = {"node1": "10.189.0.131", "node2": "10.189.0.132", "node3": "10.189.0.133"}
ENV = "kernel-adopted-test"
KEY = ["--key-filename", "/var/tmp/lbtk-kernel/id_ed25519", "--known-hosts", "/var/tmp/lbtk-kernel/known_hosts"]


def _table(c) -> list[tuple]:
    """The IPVS services (protocol, address, port, scheduler, persistence) and their real servers
    with weights and forwarding; connection counters left out."""
    t = parse_list(sh(c, "ipvsadm -L -n").stdout)
    return sorted(((s.protocol, s.address, s.port, s.fwmark, s.scheduler, s.persistent, s.netmask),
                   tuple(sorted((r.address, r.port, r.forward, r.weight) for r in s.real_servers)))
                  for s in t.services)


@pytest.fixture
def hand_built(deployed, nodes, klab):
    from tests.cluster.test_adopt import STRIP, hand_build
    for c in nodes.values():
        sh(c, STRIP)
    for name, c in nodes.items():
        hand_build(c, name, hosts=HOSTS, vip=VIP, vrrp_only=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and f"{VIP}/" not in sh(nodes["node1"], "ip -o addr show dev eth0").stdout:
        time.sleep(0.5)
    yield
    (inventory_dir() / f"{ENV}.yaml").unlink(missing_ok=True)
    (inventory_dir() / "secrets" / f"{ENV}.auth_pass").unlink(missing_ok=True)
    for c in nodes.values():
        sh(c, "systemctl disable --now lvs-vip; rm -f /etc/systemd/system/lvs-vip.service "
              "/etc/sysctl.d/99-lvs.conf; " + STRIP)
    deployed.current = None
    deployed.ensure()


def test_a_hand_built_director_cluster_is_adopted_with_its_ipvs_tables_unchanged(hand_built, nodes):
    r = inv("import", "--env", ENV, "--hosts", ",".join(HOSTS.values()), "--user", "root", *KEY)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("keepalived.conf keeps its meaning") == 3, r.stdout
    data = yaml.safe_load((inventory_dir() / f"{ENV}.yaml").read_text())
    assert data["virtual_servers"][0]["lb_kind"] == "DR" and data["virtual_servers"][0]["director_fix"] is False
    before = {n: _table(c) for n, c in nodes.items()}
    assert all(before.values()), before
    seen, stop = set(), threading.Event()

    def watch_holders():
        while not stop.is_set():
            seen.update(n for n, c in nodes.items() if f"{VIP}/" in sh(c, "ip -o addr show dev eth0").stdout)
            time.sleep(0.3)
    t = threading.Thread(target=watch_holders, daemon=True)
    t.start()
    try:
        deployed = inv("deploy", "--env", ENV, timeout=900)
        time.sleep(1.0)
    finally:
        stop.set()
        t.join()
    assert deployed.returncode == 0, deployed.stderr
    assert "restart keepalived" not in deployed.stdout
    assert seen == {"node1"}, seen                      # the VIP never left node1
    after = {n: _table(c) for n, c in nodes.items()}
    assert after == before
