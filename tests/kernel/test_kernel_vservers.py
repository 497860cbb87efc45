"""The kernel tier, virtual-server options with a runtime meaning (real IPVS, real keepalived):
the sorry server answering when every real server is down, the quorum taking the service down and
up (inventories/kernel-sorry.yaml), and a director behind a router with no VRRP at all
(inventories/kernel-lvs-only.yaml). Each switches the VM's inventory (a deploy); `deployed`
puts the kernel's own back at the end of the package.
"""
from __future__ import annotations

import subprocess
import time

import pytest

from fabfile.lab import CLIENT_NETNS
from fabfile.model.loading import load
from fabfile.parsers.ipvsadm import parse_list

from .conftest import TIMINGS, inv_json, sh

pytestmark = pytest.mark.kernel
SORRY, _ = load("kernel-sorry")
LVS_ONLY, _ = load("kernel-lvs-only")
MASTER = "node1"                      # kernel-sorry's highest priority, and its sorry server
SLACK = 2.0                           # TCG: the VM's clock runs under emulation
MARKS = "/run/lbtk-quorum-up /run/lbtk-quorum-down"

GET = ("import urllib.request as u,sys\n"
       "for i in range(int(sys.argv[2])):\n"
       "    try: print(u.urlopen(sys.argv[1], timeout=3).read().decode().split('<h1>')[1].split('<')[0])\n"
       "    except Exception as e: print('ERR')\n")


def answers(vip: str, n: int = 6) -> list[str]:
    """Who answered n GETs through vip from the client namespace ('ERR' for a failed one)."""
    r = subprocess.run(["ip", "netns", "exec", CLIENT_NETNS, "python3", "-c", GET, f"http://{vip}/", str(n)],
                       capture_output=True, text=True, timeout=120)
    return r.stdout.split()


def pool(conn, key: str) -> dict[str, int]:
    """{"addr:port": weight} of one service of the node's live IPVS table."""
    from fabfile.parsers.ipvsadm import service_key
    table = parse_list(sh(conn, "ipvsadm -L -n").stdout)
    return next(({r.endpoint: r.weight for r in s.real_servers} for s in table.services if service_key(s) == key), {})


def wait_for(what, limit: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if what():
            return time.monotonic() - t0
        time.sleep(0.2)
    return None


def bound(vs) -> float:
    """Seconds keepalived may take to call a real server down: a check period and its retries."""
    chk = vs.real_servers[0].TCP_CHECK[0]   # a checker key is a list once read
    return vs.delay_loop + chk.connect_timeout + chk.retry * (chk.delay_before_retry + chk.connect_timeout) + SLACK


def test_sorry_server_answers_when_every_real_server_is_down(deployed, nodes):
    deployed.ensure("kernel-sorry")
    vs = SORRY.virtual_servers[0]
    key, sorry_ep = f"TCP {vs.vip}:80", f"{vs.sorry_server.address}:80"
    assert set(answers(vs.vip)) == {"node2", "node3"}
    try:
        for n in ("node2", "node3"):
            sh(nodes[n], "systemctl stop nginx")
        took = wait_for(lambda: pool(nodes[MASTER], key) == {sorry_ep: 1}, bound(vs) + 10)
        TIMINGS["  sorry server in after (s)"] = took if took is not None else -1
        assert took is not None and took <= bound(vs), (took, pool(nodes[MASTER], key))
        assert set(answers(vs.vip)) == {"node1"}                 # the sorry server (node1's nginx)
        # verify: the sorry server standing in is said, not failed
        rc, out = inv_json("verify", "--env", "kernel-sorry", "--no-http", "--requests", "6")
        ipvs = [c for c in out["checks"] if c["kind"] == "ipvs-table" and c["node"] == MASTER]
        assert ipvs and ipvs[0]["ok"] and "sorry server stands in" in ipvs[0]["detail"], ipvs
    finally:
        for n in ("node2", "node3"):
            sh(nodes[n], "systemctl start nginx")
    back = wait_for(lambda: pool(nodes[MASTER], key) == {"10.189.0.132:80": 1, "10.189.0.133:80": 1},
                    vs.delay_loop + 10 + SLACK)
    assert back is not None, pool(nodes[MASTER], key)
    assert set(answers(vs.vip)) == {"node2", "node3"}


def test_quorum_takes_the_service_down_and_up(deployed, nodes):
    """quorum 2 over two real servers of weight 1: one down loses the quorum (quorum_down runs, the
    sorry server replaces the healthy one too); back, quorum_up runs and the pool returns."""
    deployed.ensure("kernel-sorry")
    vs = SORRY.virtual_servers[0]
    key, sorry_ep = f"TCP {vs.vip}:80", f"{vs.sorry_server.address}:80"
    for conn in nodes.values():
        sh(conn, f"rm -f {MARKS}")
    try:
        sh(nodes["node3"], "systemctl stop nginx")
        lost = wait_for(lambda: sh(nodes[MASTER], "test -e /run/lbtk-quorum-down").exited == 0, bound(vs) + 10)
        TIMINGS["  quorum lost after (s)"] = lost if lost is not None else -1
        assert lost is not None and lost <= bound(vs), lost
        assert pool(nodes[MASTER], key) == {sorry_ep: 1}          # node2 is healthy, yet out with the quorum
        assert set(answers(vs.vip)) == {"node1"}
    finally:
        sh(nodes["node3"], "systemctl start nginx")
    gained = wait_for(lambda: sh(nodes[MASTER], "test -e /run/lbtk-quorum-up").exited == 0,
                      vs.delay_loop + 10 + SLACK)
    TIMINGS["  quorum back after (s)"] = gained if gained is not None else -1
    assert gained is not None, "quorum_up never ran"
    assert wait_for(lambda: sorry_ep not in pool(nodes[MASTER], key), 5) is not None, pool(nodes[MASTER], key)
    assert set(answers(vs.vip)) == {"node2", "node3"}


def test_lvs_only_director_balances_with_no_vrrp(deployed, nodes):
    """No vrrp_instance: keepalived --check on every director, the VIP on lo of each, a route in
    the client namespace playing the router (BGP/ECMP); rr over the three nodes, and verify expects
    no VRRP holder."""
    deployed.ensure("kernel-lvs-only")
    vs = LVS_ONLY.virtual_servers[0]
    via = LVS_ONLY.node("node1").host
    for name, conn in nodes.items():
        assert "--check" in sh(conn, "cat /etc/default/keepalived").stdout, name
        assert vs.vip in sh(conn, "ip -4 -o addr show dev lo").stdout, name
        assert "vrrp_instance" not in sh(conn, "cat /etc/keepalived/keepalived.conf").stdout, name
        assert pool(conn, f"TCP {vs.vip}:80"), name           # every director holds the service
    route = ["ip", "netns", "exec", CLIENT_NETNS, "ip", "route"]
    subprocess.run(route + ["replace", f"{vs.vip}/32", "via", via], check=True, timeout=30)
    try:
        got = answers(vs.vip, 9)
        assert sorted(got) == sorted(["node1", "node2", "node3"] * 3), got
        rc, out = inv_json("verify", "--env", "kernel-lvs-only", "--no-http", "--requests", "6")
        mine = [c for c in out["checks"] if c["kind"] in ("vip", "vip-on-lo", "ipvs-table", "service")]
        assert mine and all(c["ok"] for c in mine), [c for c in mine if not c["ok"]]
        vip_row = next(c for c in out["checks"] if c["kind"] == "vip" and c["subject"] == vs.vip)
        assert "no VRRP holder expected" in vip_row["detail"], vip_row
        assert not [c for c in out["checks"] if c["kind"] == "sync-daemon"]
    finally:
        subprocess.run(route + ["del", f"{vs.vip}/32"], timeout=30)
