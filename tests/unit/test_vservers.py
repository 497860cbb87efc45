"""Virtual-server-level options, virtual_server_groups and directors behind a router (no VRRP):
what desired expects IPVS to hold, how verify judges a sorry server standing in, and that an
LVS-only inventory expects no VRRP (fabfile/model/virtual_servers.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.core import desired
from fabfile.core.checks import CheckKind, IpvsProblem, ipvs_check, judge_ipvs, node_checks, vip_checks
from fabfile.core.render import ASSUMED
from fabfile.core.render.keepalived import daemon_args
from fabfile.model.loading import load, parse
from fabfile.model.virtual_servers import parse_member
from fabfile.ops.verify import checks_of
from fabfile.parsers.ipvsadm import parse_list

from .core_fixtures import verify_state

ROOT = Path(__file__).resolve().parents[2]
HEAD = ("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")


def good(name: str):
    return load(str((ROOT / f"tests/inventories/good/{name}.yaml").relative_to(ROOT)))[0]


def table(*lines: str):
    return parse_list(HEAD + "\n".join(lines) + "\n")


def test_a_range_is_one_address_per_service_and_a_fwmark_its_own():
    assert parse_member("192.168.1.1-3 80").addresses == ("192.168.1.1", "192.168.1.2", "192.168.1.3")
    assert parse_member("fd00::a-c 443").addresses == ("fd00::a", "fd00::b", "fd00::c")
    assert parse_member("fwmark 7 inet6").family == 6


def test_a_group_is_expanded_into_the_ipvs_services_keepalived_loads():
    want = desired.ipvs_table(good("vservers_full"))
    # DR: every member's real servers on the member's port; the fwmark member's on port 0
    for a in ("10.189.0.110", "10.189.0.111", "10.189.0.112"):
        assert want[f"TCP {a}:80"] == {"10.189.0.31:80": 1, "10.189.0.32:80": 1}
    assert want["FWM 9"] == {"10.189.0.31:0": 1, "10.189.0.32:0": 1}
    assert want["SCTP 10.189.0.101:2905"] == {"10.189.0.31:2905": 1, "10.189.0.32:2905": 1}
    # the legacy names were read: lvs_sched wrr, lvs_method NAT
    assert want["TCP 10.189.0.100:80"] == {"10.189.0.31:8080": 2, "10.189.0.32:8080": 1}


def test_desired_knows_every_service_s_sorry_server():
    sorry = desired.sorry_servers(good("vservers_full"))
    assert sorry["TCP 10.189.0.100:80"] == "10.189.0.50:8080"
    assert sorry["TCP 10.189.0.111:80"] == "10.189.0.50:80"     # DR: the member's port
    assert sorry["FWM 9"] == "10.189.0.50:0"
    assert "UDP 10.189.0.101:5060" not in sorry


def test_the_sorry_server_standing_in_is_said_not_failed():
    inv = good("vservers_full")
    want, sorry = {"TCP 10.189.0.100:80": desired.ipvs_table(inv)["TCP 10.189.0.100:80"]}, desired.sorry_servers(inv)
    live = table("TCP  10.189.0.100:80 wrr", "  -> 10.189.0.50:8080            Masq    1      0          0")
    entries = judge_ipvs(want, live, sorry)
    assert [e.problem for e in entries] == [None, IpvsProblem.SORRY_STANDS_IN, IpvsProblem.SORRY_STANDS_IN]
    # without a sorry server in the inventory the same table is two failures and an intruder
    assert [e.problem for e in judge_ipvs(want, live)] == [IpvsProblem.RS_UNWANTED, IpvsProblem.RS_MISSING,
                                                           IpvsProblem.RS_MISSING]


def test_an_inhibited_sorry_server_at_weight_0_is_no_intruder_and_hides_no_failure():
    inv = good("vservers_full")
    want, sorry = {"TCP 10.189.0.100:80": desired.ipvs_table(inv)["TCP 10.189.0.100:80"]}, desired.sorry_servers(inv)
    live = table("TCP  10.189.0.100:80 wrr", "  -> 10.189.0.31:8080            Masq    2      0          0",
                 "  -> 10.189.0.50:8080            Masq    0      0          0")
    assert [(e.real_server, e.problem) for e in judge_ipvs(want, live, sorry)] == [
        ("10.189.0.31:8080", None), ("10.189.0.50:8080", None), ("10.189.0.32:8080", IpvsProblem.RS_MISSING)]


def test_verify_s_ipvs_check_passes_while_the_sorry_server_serves():
    data = {"cluster": "s", "nodes": [{"name": "lb1", "host": "10.189.0.11", "priority": 2}],
            "vrrp_instances": [{"name": "VI_1", "virtual_router_id": 9, "virtual_ipaddress": ["10.189.0.100"]}],
            "virtual_servers": [{"vip": "10.189.0.100", "port": 80, "lb_kind": "NAT",
                                 "sorry_server": {"address": "10.189.0.50"},
                                 "real_servers": [{"address": "10.189.0.31"}]}]}
    inv = parse(data, "s.yaml")
    state = verify_state("lb1", "10.189.0.11", on_iface=("10.189.0.100",), ipvs=HEAD + (
        "TCP  10.189.0.100:80 rr\n  -> 10.189.0.50:80              Masq    1      0          0\n"))
    check = ipvs_check(inv, "lb1", state)
    assert check.ok and "sorry server stands in" in check.detail, check


def test_lvs_only_keepalived_runs_the_checker_alone():
    inv = good("lvs_only")
    assert inv.vrrp_instances == []
    assert daemon_args(inv, ASSUMED) == ["--check"]
    assert desired.dr_vips(inv, inv.nodes[0]) == ["198.51.100.10", "198.51.100.20", "198.51.100.21"]


def test_lvs_only_verify_expects_no_vrrp_holder_and_the_vips_on_lo():
    inv = good("lvs_only")
    vips = ("198.51.100.10", "198.51.100.20", "198.51.100.21")
    rows = vip_checks(inv, {})
    assert [(c.subject, c.ok) for c in rows] == [(v, True) for v in vips]
    assert all("no VRRP holder expected" in c.detail for c in rows)
    # a director without them on lo fails its VIP-on-lo check: that is what is checked instead
    bare = verify_state("d1", "10.189.0.11")
    lo = next(c for c in node_checks(inv, "d1", bare) if c.kind is CheckKind.VIP_ON_LO)
    assert not lo.ok and "198.51.100.10" in lo.detail
    held = verify_state("d1", "10.189.0.11", on_lo=vips)
    assert next(c for c in node_checks(inv, "d1", held) if c.kind is CheckKind.VIP_ON_LO).ok
    # verify end to end: no sync daemon row, no VRRP MASTER looked for
    obs = {"d1": held, "d2": verify_state("d2", "10.189.0.12", on_lo=vips)}
    kinds = {c.kind for c in checks_of(inv, obs, {})}
    assert CheckKind.SYNC_DAEMON not in kinds and CheckKind.VIP in kinds


def test_legacy_names_read_as_the_current_ones():
    data = {"cluster": "l", "nodes": [{"name": "lb1", "host": "10.189.0.11", "priority": 2}],
            "vrrp_instances": [{"name": "VI_1", "virtual_router_id": 9, "virtual_ipaddress": ["10.189.0.100"]}],
            "virtual_servers": [{"vip": "10.189.0.100", "port": 80, "lvs_sched": "sh", "lvs_method": "TUN",
                                 "real_servers": [{"address": "10.189.0.31"}]}]}
    vs = parse(data, "l.yaml").virtual_servers[0]
    assert (vs.lb_algo, vs.lb_kind) == ("sh", "TUN")


def test_lvs_only_has_nothing_to_settle():
    """A deploy waits for VRRP after the VIP holders' batch; with no vrrp_instance there is nothing
    to wait for (it used to end in `max() arg is an empty sequence`, found on the kernel tier)."""
    from fabfile.model.context import Env
    from fabfile.ops.settle import expected_now, settle_timeout
    env = Env(good("lvs_only"), None, {}, "lvs_only")
    assert settle_timeout(env) == 5 and expected_now(env) == {}
