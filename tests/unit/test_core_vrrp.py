"""The VRRP plan and timers: who is MASTER of what with which priority, and how long a backup
waits before it takes over (RFC 3768 for VRRPv2, RFC 5798 for VRRPv3)."""
from __future__ import annotations

from fractions import Fraction

import pytest

from fabfile.model.context import Env
from fabfile.model.loading import load, parse
from fabfile.core.render import ASSUMED, keepalived, render_node
from fabfile.ops.settle import expected_now, settle_timeout
from fabfile.core.vrrp import expected_holders, master_down_interval, plan, skew_time


def rfc3768_master_down(advert_int, priority):
    """RFC 3768 6.1: Skew_Time = (256 - Priority) / 256; Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time."""
    return 3 * Fraction(advert_int) + Fraction(256 - priority, 256)


def rfc5798_master_down(advert_int, priority):
    """RFC 5798 6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256;
    Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_Time."""
    return 3 * Fraction(advert_int) + Fraction(256 - priority) * Fraction(advert_int) / 256


# ------------------------------------------------------------------ timers
@pytest.mark.parametrize("advert_int, priority, expected", [
    (1, 100, 3.609375),          # 3 + 156/256
    (1, 255, 3.00390625),        # the address owner: skew 1/256
    (1, 1, 3.99609375),
    (2, 90, 6.6484375),          # skew does not scale with the interval in v2
    (3, 200, 9.21875),
])
def test_master_down_interval_v2(advert_int, priority, expected):
    assert master_down_interval(advert_int, priority) == expected
    assert master_down_interval(advert_int, priority, version=2) == float(rfc3768_master_down(advert_int, priority))
    assert skew_time(advert_int, priority) == (256 - priority) / 256


@pytest.mark.parametrize("advert_int, priority, expected_skew", [
    (1, 100, 0.609375),          # = v2 at one second
    (0.5, 150, 0.20703125),      # 106/256 * 0.5
    (0.25, 200, 0.0546875),
    (2, 90, 1.296875),           # scales up as well
])
def test_master_down_interval_v3_scales_skew_by_the_advert_interval(advert_int, priority, expected_skew):
    assert skew_time(advert_int, priority, version=3) == expected_skew
    assert master_down_interval(advert_int, priority, version=3) == 3 * advert_int + expected_skew
    assert master_down_interval(advert_int, priority, 3) == float(rfc5798_master_down(advert_int, priority))


def test_a_higher_priority_backup_times_out_first():
    for version, adverts in ((2, (1, 2, 5)), (3, (0.1, 0.5, 1, 2))):   # v2 takes whole seconds
        for advert in adverts:
            times = [master_down_interval(advert, p, version) for p in (254, 200, 100, 90, 1)]
            assert times == sorted(times) and len(set(times)) == 5
            assert all(3 * advert < t < 4 * advert for t in times)


def test_settle_timeout_is_three_worst_master_down_intervals(monkeypatch):
    lab, _ = load("lab")
    e = Env(inv=lab, path=None, secrets={}, name="lab")
    assert settle_timeout(e) == 3 * (3 + (256 - 80) / 256) + 5            # node3, priority 80
    feat, _ = load("tests/inventories/good/http_get_scripts.yaml")        # v3, advert 0.5, lowest 100
    e = Env(inv=feat, path=None, secrets={}, name="features")
    assert settle_timeout(e) == 3 * (1.5 + (256 - 100) / 256 * 0.5) + 5


# ------------------------------------------------------------------ plan
def test_plan_single_master_lab():
    inv, _ = load("lab")
    (p,) = plan(inv)
    assert (p.name, p.virtual_router_id, p.vips, p.addresses, p.owner) == (
        "VI_1", 51, ("10.189.0.100",), ("10.189.0.100",), "node1")
    assert p.priorities == {"node1": 100, "node2": 90, "node3": 80}
    assert p.states == {"node1": "MASTER", "node2": "BACKUP", "node3": "BACKUP"}
    assert expected_holders(inv) == {"10.189.0.100": "node1"}


def test_the_highest_priority_owns_the_vip_whatever_the_declared_state():
    inv, _ = load("lab")
    data = inv.model_dump(exclude_none=True)
    data["nodes"][2]["priority"] = 120                      # node3 now outranks node1 (state MASTER)
    inv = parse(data)
    (p,) = plan(inv)
    assert p.owner == "node3" and expected_holders(inv) == {"10.189.0.100": "node3"}
    assert p.states["node1"] == "MASTER"                    # declared: matters at start-up only
    assert p.priorities == {"node1": 100, "node2": 90, "node3": 120}


def test_an_instance_owner_takes_the_top_priority():
    inv, _ = load("lab")
    data = inv.model_dump(exclude_none=True)
    data["vrrp_instances"][0]["owner"] = "node3"
    inv = parse(data)
    (p,) = plan(inv)
    assert p.owner == "node3"
    assert p.priorities == {"node3": 100, "node1": 90, "node2": 80}
    assert p.states == {"node1": "BACKUP", "node2": "BACKUP", "node3": "MASTER"}
    assert expected_holders(inv) == {"10.189.0.100": "node3"}


def test_plan_multi_master_every_node_masters_exactly_one_vip():
    inv, _ = load("tests/inventories/good/multi_master.yaml")
    planned = plan(inv)
    assert [p.name for p in planned] == ["VI_node1", "VI_node2", "VI_node3"]
    assert [p.virtual_router_id for p in planned] == [61, 62, 63]
    assert [p.vips for p in planned] == [("10.189.0.101",), ("10.189.0.102",), ("10.189.0.103",)]
    assert [p.owner for p in planned] == ["node1", "node2", "node3"]
    # priorities rotated: the owner on top, the others keep the node order after it
    assert [p.priorities for p in planned] == [
        {"node1": 100, "node2": 90, "node3": 80},
        {"node2": 100, "node3": 90, "node1": 80},
        {"node3": 100, "node1": 90, "node2": 80}]
    for node in ("node1", "node2", "node3"):
        states = [p.states[node] for p in planned]
        assert states.count("MASTER") == 1 and states.count("BACKUP") == 2
        assert sorted(p.priorities[node] for p in planned) == [80, 90, 100]   # a Latin square
        mine = next(p for p in planned if p.states[node] == "MASTER")
        assert mine.owner == node and max(mine.priorities.values()) == mine.priorities[node]
    assert expected_holders(inv) == {"10.189.0.101": "node1", "10.189.0.102": "node2", "10.189.0.103": "node3"}


def test_multi_master_rendered_confs_agree_with_the_plan(monkeypatch):
    inv, _ = load("tests/inventories/good/multi_master.yaml")
    for node in ("node1", "node2", "node3"):
        conf = next(f.content for f in render_node(inv, node, {"VI": "pw"}, ASSUMED) if f.path == keepalived.CONF)
        for p in plan(inv):
            block = conf.split(f"vrrp_instance {p.name} {{")[1].split("\n}\n")[0]
            assert f"state {p.states[node]}\n" in block
            assert f"priority {p.priorities[node]}\n" in block
            assert f"virtual_router_id {p.virtual_router_id}\n" in block


def test_nopreempt_starts_every_node_as_backup_and_any_holder_will_do():
    inv, _ = load("tests/inventories/good/http_get_scripts.yaml")
    (p,) = plan(inv)
    assert p.source.nopreempt and p.source.vrrp_version == 3 and p.source.advert_int == 0.5
    assert p.states == {"a": "BACKUP", "b": "BACKUP"}
    assert p.owner == "a" and expected_holders(inv) == {"10.189.0.100": "a"}
    assert expected_now(Env(inv=inv, path=None, secrets={}, name="f")) == {"10.189.0.100": ""}
    lab, _ = load("lab")
    assert expected_now(Env(inv=lab, path=None, secrets={}, name="lab")) == {"10.189.0.100": "node1"}


def test_vips_written_with_prefix_and_device_are_addresses_in_the_plan():
    inv, _ = load("lab")
    data = inv.model_dump(exclude_none=True)
    data["vrrp_instances"][0]["virtual_ipaddress"] = ["10.189.0.100/24 dev eth0", "10.189.0.101/32"]
    inv = parse(data)
    (p,) = plan(inv)
    assert p.vips == ("10.189.0.100/24 dev eth0", "10.189.0.101/32")
    assert p.addresses == ("10.189.0.100", "10.189.0.101")
    assert expected_holders(inv) == {"10.189.0.100": "node1", "10.189.0.101": "node1"}
