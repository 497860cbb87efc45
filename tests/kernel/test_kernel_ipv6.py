"""IPv6 on the kernel tier (issue 17): inventories/kernel-dual.yaml on the same VM as kernel.yaml, an
IPv6 LVS-DR service (fd00:189:1::150, VRRPv3 instance VI_6 in one sync group with VI_1) on real
IPVS. From the client namespace (fd00:189:1::140): rr across the three nodes, IPVS's own counters
agreeing with what the client saw, and the sync daemon carrying an IPv6 connection to a backup.
The kernel's inventory is deployed again afterwards (the `deployed` fixture's switch)."""
from __future__ import annotations

import time

import pytest

from fabfile.model.loading import load
from fabfile.parsers.ipvsadm import parse_list

from .conftest import TIMINGS, inv_json, sh
from .test_kernel import held_connection_synced

pytestmark = pytest.mark.kernel
ENV = "kernel-dual"
INV, _ = load(ENV)
VIP4, VIP6 = INV.virtual_servers[0].vip, INV.virtual_servers[1].vip
NAMES = [n.name for n in INV.nodes]


def _master6(conns) -> str:
    for name, c in conns.items():
        if VIP6 in sh(c, "ip -6 -o addr show dev eth0").stdout:
            return name
    raise AssertionError(f"nobody holds {VIP6}")


def test_ipv6_dr_service_balances_rr_across_the_three_nodes(deployed, nodes):
    deployed.ensure(ENV)
    t0 = time.monotonic()
    rc, out = inv_json("verify", "--env", ENV, "--requests", "30")
    TIMINGS["  ipv6: verify with 2 x 30 requests (s)"] = time.monotonic() - t0
    assert rc == 0, [c for c in out["checks"] if not c["ok"]]
    assert out["vip_holders"] == {VIP4: ["node1"], VIP6: ["node1"]}
    run = next(r for r in out["traffic"]["runs"] if r["vip"] == VIP6)
    assert run["service"] in (f"TCP [{VIP6}]:80", "FWM 2 IPv6"), run["service"]
    per = {r["real_server"]: r["answers"] for r in run["per_real_server"]}
    assert per == {n: 10 for n in NAMES}, per
    period = run["answers"][:3]
    assert sorted(period) == sorted(NAMES) and run["answers"] == period * 10, run["answers"]
    ipvs = {r["real_server"]: r["ipvs_conns"] for r in run["per_real_server"]}
    assert ipvs == per, ("IPVS counted other connections than the client saw", ipvs, per)
    checks = {(c["name"], c["node"]): c for c in out["traffic"]["checks"]}
    bad = [c for c in checks.values() if not c["ok"]]
    assert not bad, bad                   # rr order, no loops between directors, both families
    # the live table on the master: an IPv6 service with the three nodes' IPv6 addresses, DR
    table = parse_list(sh(nodes[run["master"]], "ipvsadm -L -n").stdout)
    six = [s for s in table.services if s.family == "inet6"]
    assert len(six) == 1, table
    assert {r.address for r in six[0].real_servers} == {n.address6 for n in INV.nodes}
    assert {r.forward for r in six[0].real_servers} == {"Route"}


def test_sync_daemon_carries_an_ipv6_connection_to_the_backup(deployed, nodes):
    deployed.ensure(ENV)
    master = _master6(nodes)
    backup = next(n for n in NAMES if n != master)
    seen = held_connection_synced(nodes, VIP6, INV.lab.client6, master, backup,
                                  "  ipv6 sync: connection on backup after (s)")
    assert seen.state == "ESTABLISHED" and seen.destination.address in {n.address6 for n in INV.nodes}
