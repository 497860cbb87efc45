"""fabfile.core.balance: scheduler periods, order matching, IPVS counter deltas, traffic checks."""
from pathlib import Path

from fabfile.core.balance import (Traffic, conns_delta, expected_counts, match_schedule, schedule_period, service_key, traffic_checks)
from fabfile.model.loading import load
from fabfile.parsers.ipvsadm import parse_stats

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "ipvsadm"
W321 = [("node1", 3), ("node2", 2), ("node3", 1)]


def test_rr_period_is_the_list_order():
    assert schedule_period("rr", [("a", 1), ("b", 5), ("c", 0)]) == ["a", "b"]


def test_wrr_321_is_ipvs_sequence():
    # ip_vs_wrr: current weight 3 -> a; 2 -> a b; 1 -> a b c
    assert schedule_period("wrr", W321) == ["node1", "node1", "node2", "node1", "node2", "node3"]
    assert schedule_period("wrr", [("a", 4), ("b", 2)]) == ["a", "a", "b"]   # gcd 2


def test_expected_counts_wrr_60():
    assert expected_counts("wrr", W321, 60) == {"node1": 30, "node2": 20, "node3": 10}
    assert expected_counts("rr", W321, 30) == {"node1": 10, "node2": 10, "node3": 10}


def test_match_schedule_any_list_order_and_start():
    seq = ["node2", "node1", "node3"] * 4            # IPVS walks its list newest-first
    ok, period = match_schedule("rr", [("node1", 1), ("node2", 1), ("node3", 1)], seq[1:])
    assert ok and period == ["node1", "node3", "node2"]
    wrr = (["node3", "node3", "node1", "node3", "node1", "node2"] * 10)[2:62]
    assert match_schedule("wrr", [("node1", 2), ("node2", 1), ("node3", 3)], wrr)[0]


def test_match_schedule_rejects_repeats_and_failures():
    rr = [("a", 1), ("b", 1), ("c", 1)]
    assert not match_schedule("rr", rr, ["a", "a", "b", "c"])[0]
    assert not match_schedule("rr", rr, ["a", None, "c"])[0]
    assert not match_schedule("lc", rr, ["a", "b", "c"])[0]


def test_conns_delta_from_real_stats():
    after = parse_stats((FIX / "L_n_stats_exact.txt").read_text())
    assert conns_delta(None, after, "TCP 10.190.0.100:82") == {"10.190.0.11:82": 6, "10.190.0.12:82": 4,
                                                                "10.190.0.13:82": 2}
    assert conns_delta(after, after, "FWM 1") == {"10.190.0.11:0": 0, "10.190.0.12:0": 0}
    assert conns_delta(after, after, "TCP 1.2.3.4:80") == {}


def _traffic(answers, deltas, algo="rr"):
    names = {"10.189.0.131:0": "node1", "10.189.0.132:0": "node2", "10.189.0.133:0": "node3"}
    return Traffic(vip="10.189.0.150", port=80, service="FWM 1", algo=algo, master="node1", answers=answers,
                   errors=["timeout"] * sum(a is None for a in answers), deltas=deltas, names=names,
                   weights=[("node1", 1), ("node2", 1), ("node3", 1)])


def test_traffic_checks_pass_and_rows():
    t = _traffic(["node3", "node2", "node1"] * 2,
                 {"node1": {"10.189.0.131:0": 2, "10.189.0.132:0": 2, "10.189.0.133:0": 2},
                  "node2": {"10.189.0.131:0": 0}, "node3": {}})
    checks = traffic_checks(t)
    assert all(c.ok for c in checks), checks
    assert [c.name for c in checks] == ["client -> 10.189.0.150:80", "rr order", "IPVS conns (master)",
                                        "no re-balancing", "no re-balancing"]
    assert t.rows()[0] == {"real_server": "node1", "endpoint": "10.189.0.131:0", "weight": 1, "answers": 2,
                           "expected": 2.0, "ipvs_conns": 2}


def test_traffic_checks_catch_loops_and_failures():
    t = _traffic(["node3", None, "node1"], {"node1": {"10.189.0.131:0": 2}, "node2": {"10.189.0.133:0": 1}})
    bad = {c.name: c for c in traffic_checks(t) if not c.ok}
    assert set(bad) == {"client -> 10.189.0.150:80", "rr order", "no re-balancing"}
    assert "director loop" in bad["no re-balancing"].detail


def test_service_key_of_the_kernel_inventory_is_fwmark():
    inv, _ = load("kernel")
    assert service_key(inv, 0) == "FWM 1"
