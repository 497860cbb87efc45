"""`inv import`'s pure core (fabfile/core/conf_import.py): keepalived.conf files -> an inventory.

The round trip is the property that matters: lbtk's own rendered configs, imported, give an
inventory that renders the same keepalived.conf (comments aside: they are not configuration).
Refusals name file:line and the keyword, and nothing about the secret reaches the YAML.
"""
from __future__ import annotations

import pytest
import yaml

from fabfile.core import conf_import as ci
from fabfile.core.render import ASSUMED, render_all
from fabfile.core.render.keepalived import CONF
from fabfile.model.loading import load
from fabfile.model.schema import Inventory
from fabfile.model.secrets import resolve_all
from fabfile.parsers.keepalived_conf import parse_conf

ROUND_TRIP = ["example", "tests/inventories/good/nat_wrr.yaml", "tests/inventories/good/dual_stack.yaml",
              "tests/inventories/good/vrrp_firewall.yaml", "tests/inventories/good/nat_two_legged.yaml"]


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv("TEST_VRRP_PASS", "s3cret")


def _configuration(text: str) -> list[str]:
    """keepalived.conf's lines without comments and blank lines (what keepalived reads)."""
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", "!"))]


def _rendered(env):
    inv, _ = load(env)
    secrets = resolve_all(inv, env)
    files = render_all(inv, secrets, ASSUMED)
    return inv, secrets, {n: next(f.content for f in fs if f.path == CONF) for n, fs in files.items()}


def _import(inv, confs, **kw):
    cfgs = [ci.NodeConfig(n.name, parse_conf(confs[n.name]), host=n.host, file=f"{n.name}/keepalived.conf")
            for n in inv.nodes]
    return ci.import_configs(cfgs, inv.cluster, "secrets/adopted.auth_pass", **kw)


@pytest.mark.parametrize("env", ROUND_TRIP)
def test_render_import_render_gives_the_same_keepalived_conf(env):
    inv, secrets, confs = _rendered(env)
    out = _import(inv, confs)
    again = Inventory.model_validate(out.inventory)
    files = render_all(again, secrets, ASSUMED)
    for n in inv.nodes:
        mine = next(f.content for f in files[n.name] if f.path == CONF)
        assert _configuration(mine) == _configuration(confs[n.name]), n.name


def test_the_secret_goes_to_its_file_never_into_the_yaml():
    inv, secrets, confs = _rendered("example")
    password = secrets["VI_1"]
    assert f"auth_pass {password}" in confs["node1"]
    out = _import(inv, confs)
    text = yaml.safe_dump(out.inventory)
    assert password not in text and "auth_pass_file: secrets/adopted.auth_pass" in text
    assert out.secrets == {"secrets/adopted.auth_pass": password}


def test_what_must_agree_and_does_not_is_refused_naming_both_nodes():
    inv, _, confs = _rendered("example")
    confs["node2"] = confs["node2"].replace("virtual_router_id 51", "virtual_router_id 52")
    with pytest.raises(ci.ImportRefused) as e:
        _import(inv, confs)
    line = e.value.findings[0].line()
    assert line.startswith("node2/keepalived.conf:") and "virtual_router_id" in line
    assert "node1 says 51, node2 52" in line and "split-brain" in line


def test_different_secrets_are_a_conflict():
    inv, secrets, confs = _rendered("example")
    confs["node3"] = confs["node3"].replace(f"auth_pass {secrets['VI_1']}", "auth_pass zq9xw7")
    with pytest.raises(ci.ImportRefused) as e:
        _import(inv, confs)
    assert any("auth_pass" in f.keyword and "different passwords" in f.why for f in e.value.findings)
    assert "zq9xw7" not in str(e.value) and secrets["VI_1"] not in str(e.value)


def test_a_keyword_the_model_lacks_is_refused_with_file_and_line_and_partial_leaves_it_out():
    inv, _, confs = _rendered("tests/inventories/good/nat_wrr.yaml")
    for n in confs:       # a real keepalived keyword (vrrp_instance's promote_secondaries) lbtk does not model
        confs[n] = confs[n].replace("    advert_int 1\n", "    advert_int 1\n    promote_secondaries\n", 1)
    with pytest.raises(ci.ImportRefused) as e:
        _import(inv, confs)
    f = e.value.findings[0]
    assert f.keyword == "promote_secondaries" and f.where.startswith("lb1/keepalived.conf:")
    out = _import(inv, confs, partial=True)
    assert [u.keyword for u in out.unsupported] == ["promote_secondaries"] * 2
    Inventory.model_validate(out.inventory)


def test_a_keyword_keepalived_itself_ignores_is_left_out_with_a_note():
    """The seed's own mistakes: nat_mask is no keepalived 2.2.7 keyword anywhere, nb_get_retry none
    in TCP_CHECK: keepalived ignores both ("Unknown keyword"), so leaving them out keeps the meaning
    (TCP_CHECK's retry stays keepalived's 1, not the 3 the line seems to say)."""
    inv, _, confs = _rendered("tests/inventories/good/nat_wrr.yaml")
    for n in confs:
        confs[n] = confs[n].replace("    lb_kind NAT\n", "    lb_kind NAT\n    nat_mask 255.255.255.0\n", 1)
        confs[n] = confs[n].replace("            retry 3\n", "            nb_get_retry 3\n")
    out = _import(inv, confs)
    assert any("nat_mask" in n and "ignores it" in n for n in out.notes), out.notes
    assert any("nb_get_retry" in n for n in out.notes)
    rs = out.inventory["virtual_servers"][0]["real_servers"][0]
    assert rs["TCP_CHECK"]["retry"] == 1 and "nat_mask" not in out.inventory["virtual_servers"][0]


def test_a_peer_that_is_no_node_is_reported():
    inv, _, confs = _rendered("tests/inventories/good/nat_wrr.yaml")
    confs["lb1"] = confs["lb1"].replace("unicast_peer {\n", "unicast_peer {\n        10.189.0.99\n")
    with pytest.raises(ci.ImportRefused) as e:
        _import(inv, confs)
    assert any(f.keyword == "unicast_peer 10.189.0.99" for f in e.value.findings)


def test_keepalived_defaults_are_stated_where_lbtks_differ():
    text = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 7
    unicast_src_ip 10.0.0.1
    unicast_peer {
    }
    virtual_ipaddress {
        10.0.0.100
    }
}
virtual_server 10.0.0.100 80 {
    real_server 10.0.0.21 80 {
        TCP_CHECK {
        }
    }
}
"""
    out = ci.import_configs([ci.NodeConfig("lb1", parse_conf(text))], "c", "secrets/c.auth_pass")
    vs = out.inventory["virtual_servers"][0]
    assert (vs["lb_kind"], vs["lb_algo"], vs["delay_loop"]) == ("NAT", "wlc", 60)
    assert vs["real_servers"][0]["TCP_CHECK"] == {"connect_timeout": 5, "retry": 1, "delay_before_retry": 1}
    assert out.inventory["nodes"] == [{"name": "lb1", "host": "10.0.0.1", "interface": "eth0", "priority": 100}]
    Inventory.model_validate(out.inventory)
