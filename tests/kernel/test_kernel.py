"""The kernel tier (real IPVS): the seed's topology load-balanced for real, from a client namespace.

Order matters little: every test leaves the cluster as its kernel's inventory wants it. Every test
runs on Debian 12's kernel; those marked both_kernels, the IPVS essentials (DR rr balancing, the sync
daemon's connections on a backup, wrr, NAT), on Debian 13's as well (conftest.py): the rest tests
keepalived and the toolkit more than the kernel, and CI's budget has no room for all of it twice.
"""
from __future__ import annotations

import subprocess
import time

import pytest

from fabfile.model.loading import load
from fabfile.parsers.ipvsadm import parse_connections, parse_list
from fabfile.lab import CLIENT_NETNS

from .conftest import ENV, TIMINGS, inv, inv_json, sh

pytestmark = pytest.mark.kernel
INV, _ = load(ENV)
VIP = INV.virtual_servers[0].vip
NAMES = [n.name for n in INV.nodes]


def _traffic(out: dict) -> tuple[dict, dict]:
    run = out["traffic"]["runs"][0]
    checks = {(c["name"], c["node"]): c for c in out["traffic"]["checks"]}
    return run, checks


def _master(conns) -> str:
    for name, c in conns.items():
        if VIP in sh(c, "ip -4 -o addr show dev eth0").stdout:
            return name
    raise AssertionError(f"nobody holds {VIP}")


@pytest.mark.both_kernels
def test_verify_rr_alternates_across_the_three_nodes(deployed):
    deployed.ensure()
    rc, out = inv_json("verify", "--env", deployed.env, "--requests", "30")
    run, checks = _traffic(out)
    assert rc == 0, [c for c in out["checks"] if not c["ok"]]
    assert checks[("rr order", "cluster")]["ok"], checks[("rr order", "cluster")]
    per = {r["real_server"]: r["answers"] for r in run["per_real_server"]}
    assert per == {n: 10 for n in NAMES}, per
    period = run["answers"][:3]
    assert sorted(period) == sorted(NAMES) and run["answers"] == (period * 10), run["answers"]
    ipvs = {r["real_server"]: r["ipvs_conns"] for r in run["per_real_server"]}
    assert ipvs == per, ("IPVS counted other connections than the client saw", ipvs, per)


def test_verify_tables_show_the_client_runs_connections(deployed):
    """verify's IPVS table (every inventory, not only the lab's traffic part) shows the master's live
    table after the client run: its real servers with the connections the run left (TIME_WAIT:
    InActConn), the table and --json carrying the same numbers; the address table and keepalived's
    own view are there too."""
    deployed.ensure()
    rc, out = inv_json("verify", "--env", deployed.env, "--requests", "30")
    assert rc == 0, [c for c in out["checks"] if not c["ok"]]
    master = out["traffic"]["runs"][0]["master"]
    rows = [r for r in out["ipvs"] if r["node"] == master and r["real_server"]]
    assert len(rows) == 3 and all(r["ok"] and r["forward"] == "Route" for r in rows), rows
    assert sum(r["inact_conn"] + r["active_conn"] for r in rows) >= 30, rows
    held = [r for r in out["addresses"] if r["vips"]]
    assert [(r["node"], r["interface"]) for r in held] == [(master, "eth0")], held
    assert all(VIP in r["vips_on_lo"] for r in out["addresses"] if r["interface"] == "lo")
    states = {r["node"]: r["state"] for r in out["vrrp"]}
    assert states[master] == "MASTER" and sorted(states.values()) == ["BACKUP", "BACKUP", "MASTER"], states
    r = inv("verify", "--env", deployed.env, "--requests", "30")
    text = r.stdout
    assert f"IPVS on {master} (ipvsadm -L -n, --rate)" in text and "addresses (ip -j addr)" in text
    assert "keepalived's view" in text
    table = text.split(f"IPVS on {master} (ipvsadm -L -n, --rate)")[1].split("\n\n")[0]
    for row in rows:
        assert row["real_server"] in table


def test_no_request_loops_between_directors(deployed):
    """Every request answered once within the client's timeout; backups schedule nothing."""
    deployed.ensure()
    rc, out = inv_json("verify", "--env", deployed.env, "--requests", "45")
    run, checks = _traffic(out)
    assert None not in run["answers"], run["answers"]
    assert checks[("client -> %s:80" % VIP, "cluster")]["ok"]
    master = run["master"]
    assert checks[("IPVS conns (master)", master)]["ok"], checks[("IPVS conns (master)", master)]
    backups = [n for n in NAMES if n != master]
    for b in backups:
        assert checks[("no re-balancing", b)]["ok"], checks[("no re-balancing", b)]
        assert sum(run["new_conns_per_director"][b].values()) == 0


def _in_pool(conn, addr: str) -> bool:
    table = parse_list(sh(conn, "ipvsadm -L -n").stdout)
    return any(r.address == addr for s in table.services for r in s.real_servers)


def _wait_pool(conn, addr: str, present: bool, limit: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if _in_pool(conn, addr) == present:
            return time.monotonic() - t0
        time.sleep(0.1)
    return None


def test_stopped_nginx_leaves_the_ipvs_table_and_comes_back(deployed, nodes):
    deployed.ensure()
    vs = INV.virtual_servers[0]
    chk = vs.real_servers[2].TCP_CHECK[0]
    victim = "node3"
    addr = INV.node(victim).host
    bound = vs.delay_loop + chk.connect_timeout + chk.retry * (chk.delay_before_retry + chk.connect_timeout)
    slack = 2.0                                   # TCG: the VM's clock runs under emulation
    master = _master(nodes)
    assert _in_pool(nodes[master], addr)
    try:
        sh(nodes[victim], "systemctl stop nginx")
        gone = _wait_pool(nodes[master], addr, False, bound + slack + 10)
        TIMINGS["  real server removed after (s)"] = gone if gone is not None else -1
        assert gone is not None and gone <= bound + slack, (gone, bound)
        rc, out = inv_json("verify", "--env", deployed.env, "--requests", "12", "--no-http")
    finally:
        sh(nodes[victim], "systemctl start nginx")
    back = _wait_pool(nodes[master], addr, True, vs.delay_loop + chk.connect_timeout + slack + 10)
    TIMINGS["  real server back after (s)"] = back if back is not None else -1
    assert back is not None and back <= vs.delay_loop + chk.connect_timeout + slack, back


def test_traffic_avoids_a_removed_real_server(deployed, nodes):
    deployed.ensure()
    master = _master(nodes)
    victim = next(n for n in NAMES if n != master)
    addr = INV.node(victim).host
    try:
        sh(nodes[victim], "systemctl stop nginx")
        assert _wait_pool(nodes[master], addr, False, 15) is not None
        r = subprocess.run(["ip", "netns", "exec", CLIENT_NETNS, "python3", "-c",
                            "import urllib.request as u,sys\n"
                            "for i in range(12): print(u.urlopen(sys.argv[1], timeout=3).read().decode().split('<h1>')[1].split('<')[0])",
                            f"http://{VIP}/"], capture_output=True, text=True, timeout=60)
        got = r.stdout.split()
        assert r.returncode == 0 and len(got) == 12, r.stderr
        assert victim not in got and len(set(got)) == 2, got
    finally:
        sh(nodes[victim], "systemctl start nginx")
        _wait_pool(nodes[master], addr, True, 15)


def test_director_failover_keeps_the_vip_answering(deployed):
    deployed.ensure()
    # 100 ms probes (1 s timeout each): the 20 ms default times out on a TCG VM when the host is busy
    rc, out = inv_json("failover-test", "--env", deployed.env, "--mode", "graceful", "--interval-ms", "100", timeout=300)
    assert rc == 0 and out["ok"], out
    assert out["to"] and out["to"] != out["from"]
    TIMINGS["  failover: VIP moved (s)"] = out["failover_s"]
    outage = out["outage_s"] if out["failed_probes"] else 0.0
    TIMINGS["  failover: client outage (s)"] = outage if outage is not None else -1
    assert outage is not None and outage < 5, out
    assert out["final_holders"] == [out["from"]]


HOLD = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=5)
for part in (b"GET / HTTP/1.1\r\n", b"Host: lbtk\r\n", b"X-Hold: 1\r\n"):
    s.send(part); time.sleep(0.5)              # >= 3 packets: IPVS syncs the connection
print("open", s.getsockname()[1], flush=True)
time.sleep(float(sys.argv[2]))
"""


def held_connection_synced(nodes, vip: str, client: str, master: str, backup: str, timing: str):
    """Hold a connection from the client namespace through `vip`; (the backup's copy of it or None,
    the master's connections, the client port), the backup polled for up to 15 s."""
    hold = subprocess.Popen(["ip", "netns", "exec", CLIENT_NETNS, "python3", "-c", HOLD, vip, "40"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = hold.stdout.readline().split()
        assert line and line[0] == "open", f"the held connection through {vip} did not open"
        port = int(line[1])
        t0, seen = time.monotonic(), None
        while time.monotonic() - t0 < 15:
            conns = parse_connections(sh(nodes[backup], "ipvsadm -L -n -c").stdout)
            seen = next((c for c in conns if c.source.address == client and c.source.port == port), None)
            if seen:
                break
            time.sleep(0.5)
        TIMINGS[timing] = time.monotonic() - t0 if seen else -1
        on_master = parse_connections(sh(nodes[master], "ipvsadm -L -n -c").stdout)
        assert any(c.source.address == client and c.source.port == port for c in on_master), "not on master"
        assert seen is not None, f"{backup} never showed {client} port {port} (sync daemon not syncing)"
        return seen
    finally:
        hold.kill()
        hold.wait()


@pytest.mark.both_kernels
def test_sync_daemon_shows_a_held_connection_on_the_backup(deployed, nodes):
    deployed.ensure()
    rc, out = inv_json("sync-status", "--env", deployed.env)
    assert rc == 0 and out["ok"], out
    master = _master(nodes)
    backup = next(n for n in NAMES if n != master)
    seen = held_connection_synced(nodes, VIP, INV.lab.client, master, backup, "  sync: connection on backup after (s)")
    assert seen.state == "ESTABLISHED" and seen.destination.address in {n.host for n in INV.nodes}


# -- other inventories on the same VM (last: each switch is a deploy) -------------------

@pytest.mark.both_kernels
def test_wrr_321_gives_a_321_split_over_60_requests(deployed):
    deployed.ensure("kernel-wrr")
    rc, out = inv_json("verify", "--env", "kernel-wrr", "--requests", "60")
    run, checks = _traffic(out)
    assert rc == 0, [c for c in out["checks"] if not c["ok"]]
    per = {r["real_server"]: r["answers"] for r in run["per_real_server"]}
    assert per == {"node1": 30, "node2": 20, "node3": 10}, per
    assert checks[("wrr order", "cluster")]["ok"], checks[("wrr order", "cluster")]
    assert {r["real_server"]: r["weight"] for r in run["per_real_server"]} == {"node1": 3, "node2": 2, "node3": 1}


@pytest.mark.both_kernels
def test_nat_example_balances_through_masquerade(deployed, nodes):
    """kernel-nat: LVS-NAT (Masq) with the director masquerading clients; rr across the three."""
    deployed.ensure("kernel-nat")
    rc, out = inv_json("verify", "--env", "kernel-nat", "--requests", "30")
    run, checks = _traffic(out)
    assert rc == 0, [c for c in out["checks"] if not c["ok"]]
    assert run["service"] == f"TCP {VIP}:80"
    assert {r["real_server"]: r["answers"] for r in run["per_real_server"]} == {n: 10 for n in NAMES}
    table = parse_list(sh(nodes[run["master"]], "ipvsadm -L -n").stdout)
    assert {r.forward for s in table.services for r in s.real_servers} == {"Masq"}
