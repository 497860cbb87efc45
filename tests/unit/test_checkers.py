"""Real servers' health checkers (fabfile/model/checkers.py): one object or a list per key, several
kinds on one real server, their keepalived.conf blocks, and what lbtk reads back (the IPVS pool a
dynamic checker's weight, the field behind a keepalived -t line, HTTP_GET urls for digests)."""
from __future__ import annotations

import pytest

from fabfile.core import checks, desired
from fabfile.core.keepalived_fields import field_of
from fabfile.core.render import ASSUMED
from fabfile.core.render.keepalived import conf
from fabfile.model.checkers import status_accepts
from fabfile.model.loading import load
from fabfile.model.schema import Inventory
from fabfile.parsers.ipvsadm import parse_list

GOOD = "tests/inventories/good/checkers_full.yaml"


def _inv(**rs) -> Inventory:
    return Inventory.model_validate({
        "cluster": "t", "nodes": [{"name": "a", "host": "10.0.0.1", "priority": 100}],
        "vrrp_instances": [{"name": "VI_1", "virtual_router_id": 1, "virtual_ipaddress": ["10.0.0.100"]}],
        "virtual_servers": [{"vip": "10.0.0.100", "port": 80, "lb_kind": "NAT",
                             "real_servers": [{"address": "10.0.0.21", **rs}]}]})


def _conf(inv: Inventory) -> str:
    return conf(inv, inv.nodes[0], {}, ASSUMED)


def test_one_object_and_a_list_of_one_read_the_same():
    assert _inv(TCP_CHECK={"retry": 1}) == _inv(TCP_CHECK=[{"retry": 1}])
    assert _inv(HTTP_GET={"path": "/h"}).virtual_servers[0].real_servers[0].HTTP_GET[0].status_code == 200


def test_every_checker_block_is_written_and_all_kinds_may_mix():
    inv = _inv(TCP_CHECK={}, MISC_CHECK=[{"misc_path": "/bin/true"}, {"misc_path": "/bin/false"}],
               PING_CHECK={})
    text = _conf(inv)
    assert text.count("TCP_CHECK {") == 1 and text.count("MISC_CHECK {") == 2 and "PING_CHECK {" in text


def test_a_misc_check_alone_turns_on_script_security():
    inv = _inv(MISC_CHECK={"misc_path": "/bin/true"})
    inv = inv.model_copy(update={"global_defs": inv.global_defs.model_copy(update={"enable_script_security": False})})
    text = _conf(inv)
    assert "enable_script_security" in text and "script_user root" in text


def test_several_urls_with_ranges_are_written_in_order():
    inv = _inv(HTTP_GET={"url": [{"path": "/a", "status_code": "200-299 301"}, {"path": "/b", "digest": "0" * 32}]})
    text = _conf(inv)
    assert text.index("path /a") < text.index("status_code 200-299 301") < text.index("path /b")


@pytest.mark.parametrize("spec, status, ok", [(None, 204, True), (None, 301, False), (200, 200, True),
                                              ("200-299 404", 404, True), ("200-299 404", 403, False)])
def test_status_codes_as_keepalived_reads_them(spec, status, ok):
    assert status_accepts(spec, status) is ok


def test_a_dynamic_weight_is_keepalived_s_to_set():
    inv = _inv(MISC_CHECK={"misc_path": "/bin/true", "misc_dynamic": True})
    (svc,) = desired.services(inv)
    assert svc.pool == {"10.0.0.21:80": None}
    table = parse_list("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n"
                       "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
                       "TCP  10.0.0.100:80 rr\n  -> 10.0.0.21:80                 Masq    7      0          0\n")
    assert [e.problem for e in checks.judge_ipvs(desired.ipvs_table(inv), table)] == [None]


def test_a_real_server_checked_only_by_a_misc_check_is_in_the_pool():
    (svc,) = desired.services(_inv(MISC_CHECK={"misc_path": "/bin/true"}))
    assert svc.pool == {"10.0.0.21:80": 1}


def test_digest_targets_are_every_url_with_a_digest():
    inv = _inv(HTTP_GET=[{"url": [{"path": "/a", "digest": "1" * 32}, {"path": "/b"}]},
                         {"path": "/c", "digest": "2" * 32, "connect_port": 8080}])
    got = [(t.path, t.port, t.digest) for t in checks.digest_targets(inv)]
    assert got == [("/a", 80, "1" * 32), ("/c", 8080, "2" * 32)]


def test_a_keepalived_t_line_names_the_checker_and_url(monkeypatch):
    monkeypatch.setenv("TEST_VRRP_PASS", "s3cret")
    inv, _ = load(GOOD)
    text = _conf(inv)
    lines = text.splitlines()
    n = next(i for i, ln in enumerate(lines, 1) if "status_code 200-299 301" in ln)
    assert field_of(inv, inv.nodes[0], text, f"(keepalived.conf: Line {n}) x") == \
        "virtual_servers[0].real_servers[0].HTTP_GET[0].url[1].status_code"
    n = next(i for i, ln in enumerate(lines, 1) if "misc_timeout" in ln)
    assert field_of(inv, inv.nodes[0], text, f"(keepalived.conf: Line {n}) x") == \
        "virtual_servers[0].real_servers[0].MISC_CHECK.misc_timeout"


def test_smtp_host_entries_are_written_as_checkers_of_their_own():
    inv = _inv(SMTP_CHECK={"helo_name": "x", "host": [{"connect_ip": "10.0.0.41"}, {"connect_ip": "10.0.0.42"}]})
    text = _conf(inv)
    assert text.count("SMTP_CHECK {") == 2 and "host {" not in text


def test_smtp_host_entries_are_the_checkers_keepalived_makes():
    """check_smtp.c: the checker itself runs when it sets a connection option of its own, then one
    checker per host entry with the block's helo_name and timers but only the host's connection
    options (keepalived's own doc/samples/keepalived.conf.SMTP_CHECK does both)."""
    from fabfile.model.checkers import SmtpCheck
    c = SmtpCheck.model_validate({"connect_timeout": 10, "retry": 2, "helo_name": "foo.bar.com",
                                  "host": [{"connect_ip": "172.16.1.11"}, {"connect_ip": "192.168.155.10",
                                                                         "connect_port": 587}]})
    made = c.per_host()
    assert [(m.connect_ip, m.connect_port, m.connect_timeout, m.retry, m.helo_name, m.host) for m in made] == [
        (None, None, 10, 2, "foo.bar.com", []),
        ("172.16.1.11", None, None, 2, "foo.bar.com", []),
        ("192.168.155.10", 587, None, 2, "foo.bar.com", [])]
    hosts_only = SmtpCheck.model_validate({"retry": 2, "host": [{"connect_ip": "172.16.1.11"}]}).per_host()
    assert [m.connect_ip for m in hosts_only] == ["172.16.1.11"]
