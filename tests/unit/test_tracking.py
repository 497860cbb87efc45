"""What a vrrp_instance tracks: keepalived's own `NAME weight N` and the YAML mapping read the
same, the rendered block says it back, and the priority theory knows what weights do to an
election (keepalived clamps to 1..254; a tie goes to the higher address)."""
from __future__ import annotations

import copy

import pytest

from fabfile.core.render import ASSUMED, render_node
from fabfile.core.vrrp import effective_priority, election_warnings, tracked_weights
from fabfile.model.loading import InventoryError, parse
from fabfile.parsers.keepalived_conf import parse_conf

BASE = {
    "cluster": "t", "defaults": {"interface": "eth0"},
    "nodes": [{"name": "a", "host": "10.9.0.11", "priority": 200},
              {"name": "b", "host": "10.9.0.12", "priority": 150}],
    "vrrp_scripts": {"chk": {"script": "/usr/bin/true", "weight": -20}},
    "vrrp_track_processes": {"ngx": {"process": "nginx", "weight": -30}},
    "track_files": {"mnt": {"file": "/run/mnt", "weight": -1}},
    "vrrp_instances": [{"name": "VI_1", "virtual_router_id": 51, "virtual_ipaddress": ["10.9.0.100"]}],
}


def inv_with(**vi):
    d = copy.deepcopy(BASE)
    d["vrrp_instances"][0].update(vi)
    return parse(d, "t.yaml")


def test_keepalived_words_and_mapping_are_the_same_entry():
    words = inv_with(track_script=["chk weight 5"], track_interface=["eth1 weight -20", "eth2"])
    mapping = inv_with(track_script=[{"name": "chk", "weight": 5}],
                       track_interface=[{"name": "eth1", "weight": -20}, {"name": "eth2"}])
    assert words.vrrp_instances[0] == mapping.vrrp_instances[0]


def test_documented_track_script_weight_is_accepted_not_split():
    """`track_script { chk weight 5 }` is keepalived's syntax; lbtk once said "contains ' '"."""
    vi = inv_with(track_script=["chk weight 5"]).vrrp_instances[0]
    assert (vi.track_script[0].name, vi.track_script[0].weight) == ("chk", 5)


def test_rendered_blocks_read_back_as_keepalived_reads_them():
    inv = inv_with(track_interface=["eth1 weight -60"], track_script=["chk"], track_process=["ngx weight -40"],
                   track_file=["mnt weight -100"], dont_track_primary=True)
    conf = next(f.content for f in render_node(inv, "a", {}, ASSUMED) if f.path.endswith("keepalived.conf"))
    c = parse_conf(conf)
    b = c.find("vrrp_instance")[0]
    def entries(keyword):
        return [[s.keyword, *s.args] for s in b.first(keyword).children]
    assert entries("track_interface") == [["eth1", "weight", "-60"]]
    assert entries("track_script") == [["chk"]]
    assert entries("track_process") == [["ngx", "weight", "-40"]]
    assert entries("track_file") == [["mnt", "weight", "-100"]]
    assert b.first("dont_track_primary") is not None
    assert c.find("vrrp_track_process")[0].value("process") == "nginx"
    assert c.find("track_file")[0].value("file") == "/run/mnt"    # keepalived reads the quoted word whole


def test_an_unknown_track_script_is_one_line_naming_the_field():
    with pytest.raises(InventoryError) as e:
        inv_with(track_script=["nope weight 5"])
    assert e.value.lines == [e.value.lines[0]]
    assert "vrrp_instances[0].track_script[0]: unknown vrrp_script 'nope'" in e.value.lines[0]


@pytest.mark.parametrize("base,offset,want", [(200, 100, 254), (10, -50, 1), (100, -20, 80), (254, 0, 254)])
def test_keepalived_clamps_the_effective_priority(base, offset, want):
    assert effective_priority(base, offset) == want


def test_weights_resolve_to_the_entry_else_the_tracked_object():
    inv = inv_with(track_interface=["eth1", "eth2 weight -5"], track_script=["chk"], track_process=["ngx weight 7"],
                   track_file=["mnt"])
    assert tracked_weights(inv, inv.vrrp_instances[0]) == [
        ("track_interface eth2", -5), ("track_script chk", -20), ("track_process ngx", 7)]


def test_a_weight_that_clamps_both_nodes_to_254_is_an_ambiguous_election():
    inv = inv_with(track_interface=["eth1 weight 120"])       # 200+120 and 150+120 both clamp to 254
    assert any("a and b both run at priority 254" in w for w in election_warnings(inv))


def test_a_failure_landing_on_the_other_nodes_priority_is_a_tie():
    inv = inv_with(track_interface=["eth1 weight -50"])       # a with eth1 down: 150 = b
    assert any("with track_interface eth1 down on a, its priority 150 equals b's" in w
               for w in election_warnings(inv))


def test_weights_that_move_the_vip_cleanly_warn_nothing():
    assert election_warnings(inv_with(track_interface=["eth1 weight -60"], track_script=["chk"])) == []
