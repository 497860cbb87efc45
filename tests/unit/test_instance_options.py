"""vrrp_instance options (fabfile/model/instance_options.py): per-instance priority and state,
deliberately equal priorities (the election falls to the highest advert source address, RFC
3768/5798 6.4.3, and an equal-priority BACKUP never preempts), route and rule lines."""
from __future__ import annotations

import pytest

from fabfile.core.plan import VipIntent
from fabfile.core.render import ASSUMED
from fabfile.core.render.keepalived import conf
from fabfile.core.vrrp import expected_holders, keepers, plan
from fabfile.model.instance_options import parse_route, parse_rule
from fabfile.model.loading import load, parse

GOLDEN_CASE = "tests/inventories/good/instance_full.yaml"


def two_nodes(**instance) -> dict:
    return {"cluster": "t", "nodes": [{"name": "node1", "host": "10.0.0.11", "priority": 100},
                                      {"name": "node2", "host": "10.0.0.12", "priority": 90}],
            "vrrp_instances": [{"name": "VI_1", "virtual_router_id": 1, "virtual_ipaddress": ["10.0.0.100"],
                                **instance}]}


def test_active_active_by_per_instance_state_and_priority():
    inv, _ = load(GOLDEN_CASE)
    by = {p.name: p for p in plan(inv)}
    assert by["VI_A"].owner == "node1" and by["VI_A"].priorities == {"node1": 150, "node2": 100}
    assert by["VI_B"].owner == "node2" and by["VI_B"].states == {"node1": "BACKUP", "node2": "MASTER"}
    holders = expected_holders(inv)
    assert holders["10.189.0.101"] == "node1" and holders["10.189.0.102"] == "node2"


def test_equal_priorities_elect_the_highest_source_address():
    inv, _ = load(GOLDEN_CASE)
    eq = next(p for p in plan(inv) if p.name == "VI_EQ")
    assert eq.owner == "node2"                  # 10.189.0.12 > 10.189.0.11
    assert eq.states == {"node1": "BACKUP", "node2": "MASTER"}
    assert keepers(inv)["10.189.0.103"] == frozenset({"node1", "node2"})
    # the address decides, not the order of the nodes
    data = two_nodes(priority={"node1": 100, "node2": 100}, equal_priorities=True)
    data["nodes"][0]["host"], data["nodes"][1]["host"] = "10.0.0.20", "10.0.0.9"
    assert plan(parse(data))[0].owner == "node1"
    # a multicast source stated per node is the one compared
    data = two_nodes(priority={"node1": 100, "node2": 100}, equal_priorities=True, unicast=False)
    assert plan(parse(data))[0].owner == "node2"


def test_priority_map_wins_over_nodes_priority_and_node_255_is_the_owner():
    inv = parse(two_nodes(priority={"node2": 255}))
    p = plan(inv)[0]
    assert p.priorities == {"node1": 100, "node2": 255} and p.owner == "node2"
    text = conf(inv, inv.node("node2"), {}, ASSUMED)
    assert "    state MASTER\n" in text and "    priority 255\n" in text


def test_a_tied_vip_stays_on_the_keeper_that_holds_it():
    inv = parse(two_nodes(priority={"node1": 100, "node2": 100}, equal_priorities=True))
    intent = VipIntent.of(inv)
    assert intent.owners["10.0.0.100"] == "node2"
    assert intent.stays("10.0.0.100", ("node1",))      # node2 will not preempt an equal priority
    plain = VipIntent.of(parse(two_nodes()))
    assert not plain.stays("10.0.0.100", ("node2",))


def test_intent_from_confs_breaks_ties_by_source_address():
    inv = parse(two_nodes(priority={"node1": 100, "node2": 100}, equal_priorities=True))
    confs = {n.name: conf(inv, n, {}, ASSUMED) for n in inv.nodes}
    intent = VipIntent.of_confs(confs)
    assert intent.owners == {"10.0.0.100": "node2"}
    assert intent.ties == {"10.0.0.100": frozenset({"node1", "node2"})}


@pytest.mark.parametrize("line", [
    "192.168.2.0/24 via 192.168.1.100 dev eth0",
    "src 192.168.100.1 to 192.168.109.0/24 via 192.168.200.254 dev eth1",
    "192.168.111.0/24 dev eth2 no_track",
    "blackhole 192.168.114.0/24 no_track",
    "0.0.0.0/0 gw 192.168.0.1 dev eth0 table 100",
    "2001:db8::/64 via fe80::1 dev eth0 metric 10",
])
def test_routes_keepalived_documents(line):
    parse_route(line)


@pytest.mark.parametrize("line", [
    "from 192.168.2.0/24 table 1 preference 10",
    "to 192.168.2.0/24 table 1 priority 11 no_track",
    "from all fwmark 0x10/0xff lookup main preference 60",
    "iif eth0 oif eth1 tos 16 goto 80 preference 70",
])
def test_rules_keepalived_documents(line):
    parse_rule(line)
