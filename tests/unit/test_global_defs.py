"""global_defs' keywords (fabfile/model/global_defs.py): each rule a one-line error naming the
field; vrrp_strict's constraints as keepalived 2.2.7 enforces them; old names read as today's."""
from __future__ import annotations

import copy

import pytest

from fabfile.core.vrrp import plan
from fabfile.model.loading import InventoryError, parse

pytestmark = pytest.mark.unit
BASE = {"cluster": "g", "nodes": [{"name": "lb1", "host": "10.189.0.11", "priority": 200},
                                   {"name": "lb2", "host": "10.189.0.12", "priority": 100}],
        "vrrp_instances": [{"name": "VI_1", "virtual_router_id": 61, "virtual_ipaddress": ["10.189.0.100"]}]}
MAIL = {"smtp_server": "10.189.0.25", "notification_email": ["ops@example.org"]}


def inv(global_defs: dict, **top):
    d = copy.deepcopy(BASE)
    d["global_defs"] = global_defs
    for k, v in top.items():
        d[k] = v
    return parse(d, "t.yaml")


def refused(global_defs: dict, where: str, text: str, **top) -> None:
    with pytest.raises(InventoryError) as e:
        inv(global_defs, **top)
    assert any(f"t.yaml: {where}: " in line and text in line for line in e.value.lines), e.value.lines


@pytest.mark.parametrize("gd,where,text", [
    ({"notification_email": ["ops@localhost"]}, "global_defs.notification_email", "not an e-mail address"),
    ({"notification_email_from": "a b@c.d", **MAIL}, "global_defs.notification_email_from", "contains ' '"),
    ({"smtp_server": "10.0.0.1 25 x"}, "global_defs.smtp_server", "not `HOST [PORT]`"),
    ({"smtp_server": "10.0.0.1 70000"}, "global_defs.smtp_server.port", "out of range"),
    ({"smtp_server": "bad_name!"}, "global_defs.smtp_server.host", "keepalived would split it"),
    ({"smtp_connect_timeout": 0, **MAIL}, "global_defs.smtp_connect_timeout", "out of range"),
    ({"smtp_connect_timeout": 5}, "global_defs.smtp_connect_timeout", "without smtp_server"),
    ({"smtp_alert": True, "smtp_server": "10.0.0.1"}, "global_defs.smtp_alert", "without global_defs.notification_email"),
    ({"vrrp_garp_interval": 0}, "global_defs.vrrp_garp_interval", "out of range"),
    ({"vrrp_garp_master_repeat": 0}, "global_defs.vrrp_garp_master_repeat", "out of range"),
    ({"vrrp_garp_master_refresh_repeat": 0}, "global_defs.vrrp_garp_master_refresh_repeat", "out of range"),
    ({"max_auto_priority": 100}, "global_defs.max_auto_priority", "out of range"),
    ({"lvs_timeouts": {}}, "global_defs.lvs_timeouts", "names no timeout"),
    ({"lvs_timeouts": {"tcp": 86400 * 32}}, "global_defs.lvs_timeouts.tcp", "out of range"),
    ({"notify_fifo": "run/x"}, "global_defs.notify_fifo", "not an absolute path"),
    ({"notify_fifo_script": "/bin/reader"}, "global_defs.notify_fifo_script", "notify_fifo, which is not set"),
    ({"vrrp_notify_fifo_script": "/bin/\"r\""}, "global_defs.vrrp_notify_fifo_script", "cannot read it"),
    ({"notify_fifo": "/run/f", "vrrp_notify_fifo": "/run/f"}, "global_defs.vrrp_notify_fifo", "ignores one"),
    ({"lvs_notify_fifo": "/run/l"}, "global_defs.lvs_notify_fifo", "no virtual_servers"),
    ({"lvs_id": "a", "router_id": "b"}, "global_defs.lvs_id", "old name of router_id"),
])
def test_global_defs_rules(gd, where, text):
    refused(gd, where, text)


def test_instance_smtp_alert_needs_the_mail_settings():
    d = copy.deepcopy(BASE)
    d["vrrp_instances"][0]["smtp_alert"] = True
    with pytest.raises(InventoryError) as e:
        parse(d, "t.yaml")
    assert any("vrrp_instances[0].smtp_alert: smtp_alert without global_defs.smtp_server" in x for x in e.value.lines)


def test_lvs_id_is_read_as_router_id():
    assert inv({"lvs_id": "LVS_{NODE}"}).global_defs.router_id == "LVS_{NODE}"


def test_smtp_server_keepalived_form_and_mapping():
    assert inv({"smtp_server": "fd00::25 587"}).global_defs.smtp_server.port == 587
    assert inv({"smtp_server": {"host": "mail.example.org"}}).global_defs.smtp_server.port == 25


STRICT = {"vrrp_strict": True}


@pytest.mark.parametrize("change,where,text", [
    ({}, "vrrp_instances[0].unicast", "Unicast peers are not supported in strict mode"),
    ({"unicast": False, "authentication": {"auth_pass_env": "X"}}, "vrrp_instances[0].authentication",
     "does not support authentication"),
    ({"unicast": False, "preempt_delay": 5}, "vrrp_instances[0].preempt_delay", "incompatible with strict mode"),
    ({"unicast": False, "virtual_ipaddress": ["fd00::100"]}, "vrrp_instances[0].virtual_ipaddress",
     "must be link local"),
])
def test_vrrp_strict_instance_rules(change, where, text):
    d = copy.deepcopy(BASE)
    d["global_defs"] = STRICT
    d["vrrp_instances"][0].update(change)
    if "virtual_ipaddress" in change:
        d["nodes"][0]["address6"], d["nodes"][1]["address6"] = "fd00::11", "fd00::12"
    with pytest.raises(InventoryError) as e:
        parse(d, "t.yaml")
    assert any(f"t.yaml: {where}: " in line and text in line for line in e.value.lines), e.value.lines


def test_vrrp_strict_refuses_state_master_and_lower_prio_garps():
    d = copy.deepcopy(BASE)
    d["global_defs"] = {**STRICT, "vrrp_garp_lower_prio_repeat": 1}
    d["vrrp_instances"][0]["unicast"] = False
    d["nodes"][0]["state"] = "MASTER"
    with pytest.raises(InventoryError) as e:
        parse(d, "t.yaml")
    assert any("nodes[0].state: state MASTER under global_defs.vrrp_strict" in x for x in e.value.lines)
    assert any("global_defs.vrrp_garp_lower_prio_repeat: " in x for x in e.value.lines)


def test_vrrp_strict_writes_backup_everywhere():
    d = copy.deepcopy(BASE)
    d["global_defs"] = STRICT
    d["vrrp_instances"][0]["unicast"] = False
    assert set(plan(parse(d, "t.yaml"))[0].states.values()) == {"BACKUP"}
