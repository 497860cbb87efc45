"""A dual-stack cluster for real (issue 17): inventories/lab-dual.yaml, d1..d3 on lbtk-br0 with an IPv4
(10.189.0.241-243) and an IPv6 address (fd00:189::241-243) each. VI_1 holds the IPv4 VIP, VI_6 (VRRPv3)
the IPv6 one, and the sync group VG_1 moves both together. Deploy, verify, HTTP through both VIPs,
a graceful drill that reports each family's move, and a deploy that then finds nothing to do. d3 is reached
over IPv6 (its `host:` is an IPv6 literal), d1 and d2 over IPv4.

The lab runs beside the plain lab (its own names, addresses, MACs, VIPs): no shared lab lock."""
from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .side_labs import running, ssh

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.cli import inv, inv_json  # noqa: E402

pytestmark = pytest.mark.lab
ENV, VIP4, VIP6 = "lab-dual", "10.189.0.250", "fd00:189::250"


@pytest.fixture(scope="module")
def dual():
    with running(ENV) as spec:
        inv("deploy", "--env", ENV, check=True, timeout=300)
        yield spec


def test_nodes_have_their_ipv6_address_and_the_bridge_its_gateway(dual):
    for n in dual.nodes:
        out = ssh(dual, n.host, "ip -6 -o addr show dev eth0 scope global").stdout
        assert n.host6 in out, out
    br = subprocess.run(["ip", "-6", "-o", "addr", "show", "dev", dual.bridge], capture_output=True, text=True).stdout
    assert "fd00:189::1/64" in br


def test_verify_green_and_http_answers_through_both_vips(dual):
    rc, report = inv_json("verify", "--env", ENV)
    assert rc == 0 and report["ok"], [c for c in report["checks"] if not c["ok"]]
    assert report["vip_holders"] == {VIP4: ["d1"], VIP6: ["d1"]}
    http = {c["name"]: c for c in report["checks"] if c["name"].startswith("HTTP")}
    assert set(http) == {f"HTTP {VIP4}:80", f"HTTP [{VIP6}]:80"} and all(c["ok"] for c in http.values())
    for url in (f"http://{VIP4}/", f"http://[{VIP6}]/"):     # from this machine, over each family
        assert "d1" in urllib.request.urlopen(url, timeout=3).read().decode()
    # keepalived's own view: both instances, VI_6 on VRRPv3, MASTER on d1 and BACKUP elsewhere
    states = {(v["node"], v["instance"]): v["state"] for v in report["vrrp"]}
    assert states == {(n, i): ("MASTER" if n == "d1" else "BACKUP") for n in ("d1", "d2", "d3")
                      for i in ("VI_1", "VI_6")}
    # the backups carry both VIPs on lo (DR real servers), the IPv6 one as /128
    lo = ssh(dual, "10.189.0.242", "ip -o addr show dev lo").stdout
    assert f"{VIP4}/32" in lo and f"{VIP6}/128" in lo, lo


def test_graceful_drill_moves_both_families_and_reports_each(dual):
    rc, r = inv_json("failover-test", "--env", ENV, timeout=180)
    assert rc == 0 and r["ok"], r
    assert r["from"] == "d1" and r["to"] == "d2" and r["failed_probes"] == 0
    fam = {f["family"]: f for f in r["families"]}
    assert set(fam) == {4, 6} and fam[4]["vip"] == VIP4 and fam[6]["vip"] == VIP6
    for f in fam.values():
        assert f["to"] == "d2" and 0 < f["moved_s"] < 3 and f["back_s"] is not None, f
    assert r["others_moved"] == []
    rc, st = inv_json("status", "--env", ENV)
    assert st["vip_holders"] == {VIP4: ["d1"], VIP6: ["d1"]}


def test_a_second_deploy_finds_nothing_to_do(dual):
    assert "no changes" in inv("deploy", "--env", ENV, check=True).stdout
