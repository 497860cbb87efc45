"""IPv6 and dual-stack (issue 17), the pure core: the model's per-family addresses, what each
renderer makes of an IPv6 VIP, the lvs phase's plan for the ip6tables rules, the IPVS check's
keys as ipvsadm prints IPv6 services. The refusals are in tests/inventories/broken/v6_*.yaml,
the dual-stack render in tests/golden/dual_stack/ (checked by the real keepalived -t)."""
from __future__ import annotations

import copy
import os
import shutil

import pytest
import yaml

from fabfile.core import desired
from fabfile.core.checks import observed_ipvs, wanted_ipvs
from fabfile.infra.confcheck import keepalived_check
from fabfile.infra.facts import NodeState
from fabfile.model.loading import InventoryError, inventory_dir, parse
from fabfile.parsers.ipvsadm import parse_list
from fabfile.core.plan import service_actions
from fabfile.core.render import ASSUMED, arp, fwmark, nginx, render_node
from fabfile.core.render.keepalived import CONF, conf
from fabfile.core.vrrp import plan, sync_groups

from .core_fixtures import FX, ROOT

DUAL = yaml.safe_load((ROOT / "tests/inventories/good/dual_stack.yaml").read_text())
HAVE_KEEPALIVED = shutil.which("keepalived") or os.path.exists("/usr/sbin/keepalived")


def inv_of(data: dict):
    return parse(copy.deepcopy(data), "t.yaml")


def v6_only() -> dict:
    """An IPv6-only cluster: hosts are IPv6 literals, one instance, one DR service."""
    return {"cluster": "v6", "defaults": {"interface": "eth0"},
            "nodes": [{"name": f"n{k}", "host": f"fd00:190::{k}", "priority": 100 - k,
                       "mac": f"02:bd:00:00:03:0{k}"} for k in (1, 2, 3)],
            "vrrp_instances": [{"name": "VI_6", "virtual_router_id": 7, "virtual_ipaddress": ["fd00:190::100"]}],
            "virtual_servers": [{"vip": "fd00:190::100", "port": 80, "lb_kind": "DR",
                                 "real_servers": [{"node": f"n{k}"} for k in (1, 2, 3)]}],
            "install": {"method": "detect"}}


def test_node_answers_its_address_of_each_family():
    inv = inv_of(DUAL)
    n2 = inv.node("node2")
    # written FD00:189:0::0242 in the inventory: kept canonical, as `ip addr` and ipvsadm print it
    assert n2.ips == {4: "10.189.0.242", 6: "fd00:189::242"}
    assert (n2.ip_of(4), n2.ip_of(6), n2.ip) == ("10.189.0.242", "fd00:189::242", "10.189.0.242")
    assert str(n2.network_of(6)) == "fd00:189::/64" and str(n2.network_of(4)) == "10.189.0.0/24"
    only6 = inv_of(v6_only()).node("n1")
    assert only6.ips == {6: "fd00:190::1"} and only6.ip_of(4) is None and only6.network_of(4) is None


def test_ipv6_instance_runs_vrrpv3_like_keepalived():
    inv = inv_of(DUAL)
    vi1, vi6 = inv.vrrp_instances
    assert (vi1.family, vi1.vrrp_version) == (4, 2)
    assert (vi6.family, vi6.vrrp_version) == (6, 3)    # no vrrp_version written: keepalived's default for IPv6
    assert vi6.vips == ["fd00:189::250", "fd00:189::251"]


def test_same_vrid_in_both_families_is_accepted_and_a_second_ipv6_one_is_not():
    inv = inv_of(DUAL)
    assert {vi.virtual_router_id for vi in inv.vrrp_instances} == {61}
    data = copy.deepcopy(DUAL)
    data["vrrp_instances"].append({"name": "VI_7", "virtual_router_id": 61, "virtual_ipaddress": ["fd00:189::252"]})
    with pytest.raises(InventoryError) as e:
        inv_of(data)
    assert any("vrrp_instances[2].virtual_router_id: duplicate virtual_router_id 61 on eth0" in ln
               for ln in e.value.lines)


def test_real_servers_are_the_nodes_addresses_of_the_service_family():
    inv = inv_of(DUAL)
    v4, v6 = inv.virtual_servers[:2]
    assert [inv.real_server_address(rs, v4) for rs in v4.real_servers] == ["10.189.0.241", "10.189.0.242",
                                                                            "10.189.0.243"]
    assert [inv.real_server_address(rs, v6) for rs in v6.real_servers] == ["fd00:189::241", "fd00:189::242",
                                                                            "fd00:189::243"]


def test_keepalived_conf_unicast_of_each_family_and_the_sync_group():
    inv = inv_of(DUAL)
    text = conf(inv, inv.node("node3"), {"VI_1": "s3cret"}, ASSUMED)
    vi1, vi6 = text.split("vrrp_instance ")[1:3]
    assert "unicast_src_ip 10.189.0.243" in vi1 and "10.189.0.241\n        10.189.0.242\n" in vi1
    assert "unicast_src_ip fd00:189::243" in vi6 and "fd00:189::241\n        fd00:189::242\n" in vi6
    assert "version 3" in vi6 and "version 3" not in vi1 and "authentication" not in vi6
    assert "vrrp_sync_group VG_1 {\n    group {\n        VI_1\n        VI_6\n    }\n}" in text
    assert "virtual_server fwmark 2 {\n    ip_family inet6\n" in text
    assert "# fwmark 2 = TCP [fd00:189::250]:80" in text
    assert "virtual_server fd00:189::251 8080 {" in text and "persistence_granularity 64" in text


def test_multi_master_sync_groups_follow_the_expanded_instances():
    data = copy.deepcopy(DUAL)
    data["multi_master"] = True
    for n in data["nodes"]:
        n.pop("state", None)
    data["vrrp_instances"][0]["virtual_ipaddress"] = ["10.189.0.250", "10.189.0.251", "10.189.0.252"]
    data["vrrp_instances"][1] = {"name": "VI_6", "virtual_router_id": 71,
                                 "virtual_ipaddress": ["fd00:189::250", "fd00:189::251", "fd00:189::252"]}
    data["virtual_servers"] = data["virtual_servers"][:2]
    inv = inv_of(data)
    assert sync_groups(inv) == [(f"VG_1_{n}", [f"VI_1_{n}", f"VI_6_{n}"]) for n in ("node1", "node2", "node3")]
    names = {p.name for p in plan(inv)}
    assert all(m in names for _, members in sync_groups(inv) for m in members)


def test_arp_phase_ipv6_vip_on_lo_and_no_arp_sysctl():
    inv = inv_of(v6_only())
    n1 = inv.node("n1")
    assert desired.dr_vips(inv, n1) == ["fd00:190::100"]
    want = desired.sysctls(inv, n1)
    assert not any(k.startswith("net.ipv4.conf.") for k in want), want     # nothing IPv4 needs alone
    assert want == {"net.ipv4.vs.expire_nodest_conn": "1", "net.ipv4.vs.backup_only": "0"}   # IPVS's own
    unit = next(f.content for f in arp.files(inv, n1, ASSUMED) if f.path == arp.VIP_UNIT)
    assert "ExecStart=/usr/sbin/ip addr replace fd00:190::100/128 dev lo nodad\n" in unit
    assert "ExecStop=-/usr/sbin/ip addr del fd00:190::100/128 dev lo\n" in unit
    dual = inv_of(DUAL)                                                     # the IPv4 VIP still needs them
    assert desired.sysctls(dual, dual.node("node1"))["net.ipv4.conf.eth0.arp_ignore"] == "1"


def test_ipv6_nat_director_forwards_ipv6():
    data = v6_only()
    data["virtual_servers"][0].update(lb_kind="NAT", real_servers=[{"address": "fd00:190::50"}])
    want = desired.sysctls(inv_of(data), inv_of(data).node("n1"))
    assert want.get("net.ipv6.conf.all.forwarding") == "1" and "net.ipv4.ip_forward" not in want


def test_fwmark_fix_ipv6_only_uses_ip6tables_alone():
    inv = inv_of(v6_only())
    files = {f.path: f.content for f in fwmark.files(inv, inv.node("n1"))}
    assert files[fwmark.RULES] is None
    assert "-A LBTK-FWMARK -d fd00:190::100/128 -p tcp --dport 80 -j MARK --set-mark 1\n" in files[fwmark.RULES6]
    assert "-A LBTK-FWMARK -m mac --mac-source 02:bd:00:00:03:02 -j RETURN\n" in files[fwmark.RULES6]
    unit = files[fwmark.UNIT]
    assert "ExecStart=/usr/sbin/ip6tables-restore --noflush /etc/lbtk/fwmark6.rules" in unit
    assert "/usr/sbin/iptables " not in unit and "iptables-restore --noflush /etc/lbtk/fwmark.rules" not in unit


def test_fwmark_ipv4_only_inventory_renders_no_ip6tables_file():
    inv = parse(yaml.safe_load((inventory_dir() / "lab.yaml").read_text()), "lab.yaml")
    files = {f.path: f.content for f in fwmark.files(inv, inv.node("node1"))}
    assert files[fwmark.RULES6] is None and "ip6tables" not in files[fwmark.UNIT]


def test_lvs_phase_restarts_the_unit_when_only_the_ip6tables_rules_change():
    inv = inv_of(DUAL)
    desired = render_node(inv, "node1", {"VI_1": "s3cret"}, ASSUMED)
    facts = NodeState("node1", active={"lbtk-fwmark": "active", "keepalived": "active"})
    restarts = lambda changed: [a for a in service_actions("lvs", changed, facts, desired)  # noqa: E731
                                if (a.verb, a.unit) == ("restart", "lbtk-fwmark")]
    assert len(restarts({fwmark.RULES6})) == 1 and restarts(set()) == []
    assert restarts({fwmark.RULES6, fwmark.UNIT}) == []      # a changed unit is restarted by enable-restart


def test_nginx_listens_on_ipv6_only_when_the_inventory_has_ipv6():
    site = lambda inv: next(f.content for f in nginx.files(inv, inv.nodes[0]) if f.path == nginx.SITE)  # noqa: E731
    assert "listen [::]:80 default_server;" in site(inv_of(DUAL))
    lab = parse(yaml.safe_load((inventory_dir() / "lab.yaml").read_text()), "lab.yaml")
    assert "[::]" not in site(lab)


def test_ipvs_check_keys_match_ipvsadm_ipv6_output():
    """The wanted table's keys are the ones the parser reads from a real `ipvsadm -L -n`."""
    data = {"cluster": "fx", "defaults": {"interface": "eth0"},
            "nodes": [{"name": f"n{k}", "host": f"10.190.0.{k}", "address6": f"fd00:190::{k}", "priority": 100 - k,
                       "prefixlen": 24} for k in (11, 12, 13)],
            "vrrp_instances": [{"name": "VI_6", "virtual_router_id": 9, "virtual_ipaddress": ["fd00:190::100"]}],
            "virtual_servers": [
                {"vip": "fd00:190::100", "port": 80, "director_fix": False,
                 "real_servers": [{"node": "n11"}, {"node": "n12"}]},
                {"fwmark": 2, "ip_family": "inet6", "port": 80, "real_servers": [{"node": "n13"}]}],
            "install": {"method": "detect"}}
    want = wanted_ipvs(inv_of(data))
    have = observed_ipvs(parse_list((FX / "ipvsadm/L_n.txt").read_text()))
    assert want == {"TCP [fd00:190::100]:80": {"[fd00:190::11]:80": 1, "[fd00:190::12]:80": 1},
                    "FWM 2 IPv6": {"[fd00:190::13]:0": 1}}
    assert {k: have[k] for k in want} == want


@pytest.mark.skipif(not HAVE_KEEPALIVED, reason="keepalived not installed (scripts/setup.sh installs it)")
def test_ipv6_only_cluster_passes_real_keepalived():
    inv = inv_of(v6_only())
    for node in inv.nodes:
        text = next(f.content for f in render_node(inv, node.name, {}, ASSUMED) if f.path == CONF)
        assert "unicast_src_ip fd00:190::" in text and "version 3" in text
        r = keepalived_check(inv, node, text)
        assert (r.verdict, r.messages) == ("ok", []), (node.name, r.messages)
