"""The kernel tier, a two-legged LVS-NAT director pair (inventories/kernel-nat2.yaml): clients on the
outside segment reach the VIP on node1 or node2, which balance to real servers on an inside segment
whose default gateway is the inside VIP, moved with the outside one by the sync group. Real IPVS
masquerades both ways; nothing is SNATed, so the real servers see the client's own address.

The rig, made here and undone at the end: the inside segment is VLAN 10 on the nodes' wire (the
guest loads 8021q), each director's eth1 a VLAN interface; node3 plays the two inside real servers
(10.189.0.73 and .74 on its own eth1, nginx answering on both), with its keepalived stopped, and
policy routing so that what it sends from an inside address goes back through the inside VIP.
"""
from __future__ import annotations

import pytest

from fabfile.model.loading import load
from fabfile.parsers.ipvsadm import parse_stats

from .conftest import TIMINGS, sh
from .test_kernel_vservers import SLACK, answers, bound, pool, wait_for

pytestmark = pytest.mark.kernel
NAT2, _ = load("kernel-nat2")
VS = NAT2.virtual_servers[0]
KEY = f"TCP {VS.vip}:80"
INSIDE_VIP = NAT2.vrrp_instances[1].virtual_ipaddress[0].split("/")[0]
REAL = [rs.address for rs in VS.real_servers]
VLAN = "ip link add link eth0 name eth1 type vlan id 10 && ip link set eth1 mtu 1400 up"
TABLE = 110                                # node3's routing table for what it sends as a real server


def director_leg(name: str) -> str:
    e = NAT2.node(name).interfaces["eth1"]
    return f"{VLAN} && ip addr add {e.address}/{e.prefixlen} dev eth1"


REAL_SERVERS = (f"systemctl stop keepalived && {VLAN} && "
                + " && ".join(f"ip addr add {a}/28 dev eth1" for a in REAL)
                + f" && ip route add default via {INSIDE_VIP} dev eth1 table {TABLE}"
                + f" && ip rule add from 10.189.0.64/28 lookup {TABLE}")
UNDO = (f"ip rule del from 10.189.0.64/28 lookup {TABLE} 2>/dev/null; ip route flush table {TABLE} 2>/dev/null; "
        "ip link del eth1 2>/dev/null; true")


def holder(nodes, address: str, dev: str = "") -> list[str]:
    """The directors holding `address` on an interface other than lo (or on `dev` only)."""
    out = {n: sh(nodes[n], f"ip -4 -o addr show {dev}").stdout for n in ("node1", "node2")}
    return [n for n, text in out.items()
            if any(f" {address}/" in ln and (dev or ": lo " not in ln) for ln in text.splitlines())]


def test_two_legged_nat_director_balances_outside_to_inside(deployed, nodes):
    try:
        for name in ("node1", "node2"):
            assert sh(nodes[name], f"{UNDO}; {director_leg(name)}").exited == 0, name
        r = sh(nodes["node3"], f"{UNDO}; {REAL_SERVERS}")
        assert r.exited == 0, r.stderr
        deployed.ensure("kernel-nat2")
        # the master holds both VIPs (one sync group), and the pool is the two inside real servers
        up = wait_for(lambda: holder(nodes, VS.vip) == ["node1"] and holder(nodes, INSIDE_VIP) == ["node1"]
                      and pool(nodes["node1"], KEY) == {f"{a}:80": 1 for a in REAL}, bound(VS) + 10)
        assert up is not None, (holder(nodes, VS.vip), holder(nodes, INSIDE_VIP), pool(nodes["node1"], KEY),
                                _journal(nodes))
        # no longer DR real servers: the VIP left lo with lbtk-vip-lo (stopped before systemd forgot it)
        assert holder(nodes, VS.vip, "dev lo") == [], "a NAT director kept the DR real server's VIP on lo"
        # no sync daemon wanted: kernel.yaml's daemons stopped, backup_only back to 0 (else a backup
        # director with a backup daemon left running stays off and answers a failover locally)
        for name in ("node1", "node2"):
            left = sh(nodes[name], "ipvsadm -L --daemon; sysctl -n net.ipv4.vs.backup_only").stdout.split()
            assert left == ["0"], (name, left)
        table = sh(nodes["node1"], "ipvsadm -L -n").stdout
        assert table.count("Masq") == 2, table
        before = _conns(nodes["node1"])
        got = answers(VS.vip, 8)
        assert got == ["node3"] * 8, got                          # every request through the director
        # rr: 4 each. The kernel sums its per-CPU counters every 2 s (its estimator): read until they show
        balanced = wait_for(lambda: all(_conns(nodes["node1"])[a] - before[a] == 4 for a in REAL), 2 * 2 + SLACK)
        assert balanced is not None, (before, _conns(nodes["node1"]))
        # the director fails: node2 takes both VIPs, and the inside real servers answer through it
        sh(nodes["node1"], "systemctl stop keepalived")
        moved = wait_for(lambda: holder(nodes, VS.vip) == ["node2"] and holder(nodes, INSIDE_VIP) == ["node2"],
                         3 * 3 + SLACK)
        TIMINGS["  two-legged NAT: both VIPs on node2 after (s)"] = moved if moved is not None else -1
        assert moved is not None, (holder(nodes, VS.vip), holder(nodes, INSIDE_VIP))
        assert wait_for(lambda: pool(nodes["node2"], KEY) == {f"{a}:80": 1 for a in REAL}, bound(VS) + 10) is not None
        got = answers(VS.vip, 4)
        assert got == ["node3"] * 4, got
    finally:
        sh(nodes["node1"], "systemctl start keepalived")
        deployed.ensure()                                         # the tier's own inventory, eth1 unused
        for name in ("node1", "node2", "node3"):
            sh(nodes[name], UNDO)
        sh(nodes["node3"], "systemctl start keepalived")


def _journal(nodes) -> str:
    """What keepalived said on each director (a failed assertion shows it)."""
    return "\n".join(f"--- {n}\n" + sh(nodes[n], "journalctl -u keepalived -n 25 --no-pager -o short-precise").stdout
                     for n in ("node1", "node2"))


def _conns(conn) -> dict[str, int]:
    """{real server address: connections IPVS sent it} on this director, for the VIP's service."""
    svc = parse_stats(sh(conn, "ipvsadm -L -n --stats --exact").stdout).service(KEY)
    return {r.address: r.stats.conns for r in svc.real_servers}
