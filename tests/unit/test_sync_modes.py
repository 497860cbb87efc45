"""sync_daemon modes and the director-loop guard: what each renders and what verify wants
(daemon lists captured from ipvsadm)."""
import subprocess
from pathlib import Path

import pytest

from fabfile.core import desired
from fabfile.core.checks import sync_check
from fabfile.infra.facts import NodeState
from fabfile.model.loading import InventoryError, load, parse
from fabfile.parsers import ipvsadm
from fabfile.parsers.ipvsadm import parse_list
from fabfile.core.render import Facts, ipvs_sync, keepalived, render_node

FX = Path(__file__).resolve().parents[1] / "fixtures" / "ipvsadm"
TABLE = parse_list((FX / "L_n.txt").read_text())


def _observed(fixture: str) -> NodeState:
    return NodeState("node1", ipvs=TABLE, sync_daemons=ipvsadm.parse_daemons((FX / fixture).read_text()))


def _syncid5(env: str):
    """The captured daemons run syncid 5: the inventory must say so to match them."""
    inv, _ = load(env)
    return inv.model_copy(update={"sync_daemon": inv.sync_daemon.model_copy(update={"syncid": 5})})


def _files(env: str, node: str, ipvs: bool = True) -> dict:
    inv, _ = load(env)
    return {f.path: f.content for f in render_node(inv, node, {"VI_1": "x" * 8}, Facts(ipvs=ipvs))}


def test_mode_notify_renders_the_script_and_keepalived_calls_it():
    files = _files("kernel", "node2")
    script = files[ipvs_sync.SCRIPT]
    conf = files[keepalived.CONF]
    assert 'notify "/usr/local/sbin/lbtk-ipvs-sync"' in conf and "lvs_sync_daemon" not in conf
    assert "script_user root" in conf                      # keepalived runs no script without one
    assert 'SYNC_IF=eth0\nSYNCID=1\n' in script and 'VIP=10.189.0.150\n' in script
    assert '--start-daemon $role --mcast-interface "$SYNC_IF" --syncid "$SYNCID"' in script
    assert 'grep -qF " $VIP/"' in script                  # no arguments: role from the VIP held now
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0


def test_mode_notify_without_ipvs_renders_no_script():
    files = _files("kernel", "node2", ipvs=False)
    assert files[ipvs_sync.SCRIPT] is None and "lbtk-ipvs-sync" not in files[keepalived.CONF]


def test_mode_keepalived_keeps_lvs_sync_daemon_and_no_script():
    files = _files("example", "node1")
    assert "lvs_sync_daemon ens33 VI_1 id 1" in files[keepalived.CONF]
    assert files[ipvs_sync.SCRIPT] is None


def test_notify_mode_refuses_an_instance_with_its_own_notify():
    inv, _ = load("kernel")
    data = inv.model_dump(exclude_none=True)
    data["vrrp_instances"][0]["notify"] = "/usr/local/bin/mine"
    with pytest.raises(InventoryError, match=r"vrrp_instances\[0\]\.notify: sync_daemon mode notify"):
        parse(data, "k.yaml")


def test_backup_only_on_directors_that_are_dr_real_servers_with_ipvs():
    inv, _ = load("kernel")
    assert desired.sysctls(inv, inv.nodes[1])["net.ipv4.vs.backup_only"] == "1"
    assert "net.ipv4.vs.backup_only" not in desired.sysctls(inv, inv.nodes[1], ipvs=False)
    nat, _ = load("kernel-nat")                          # NAT: real servers never see the VIP
    assert desired.sysctls(nat, nat.nodes[1])["net.ipv4.vs.backup_only"] == "0"   # said, so a 1 left goes
    assert desired.sysctls(nat, nat.nodes[1])["net.ipv4.vs.expire_nodest_conn"] == "1"


def test_verify_wants_the_vrrp_role_and_the_syncid():
    inv = _syncid5("kernel")
    master = _observed("L_daemon_master.txt")
    assert sync_check(inv, "node1", master, is_master=True).ok
    wrong = sync_check(inv, "node2", master, is_master=False)
    assert not wrong.ok and wrong.detail.endswith("want backup")
    assert not sync_check(load("kernel")[0], "node1", master, is_master=True).ok     # syncid 1 != 5
    none = sync_check(inv, "node1", _observed("L_daemon_none.txt"), is_master=True)
    assert not none.ok and none.detail == "not running — want master"
