"""A keepalived keyword lbtk does not model is refused as `not supported: KEYWORD`, naming the
field; a key that is no keepalived keyword there stays a typo ("unknown key ... known keys").
The keyword lists are keepalived's own (fabfile/model/keepalived_keywords.py, generated from its
install_keyword tables by scripts/gen-keepalived-keywords.py)."""
from __future__ import annotations

import copy

import pytest
import yaml

from fabfile.model import keepalived_keywords as kk
from fabfile.model.loading import InventoryError, inventory_dir, parse

pytestmark = pytest.mark.unit
BASE = yaml.safe_load((inventory_dir() / "lab.yaml").read_text())
HTTP_RS = {"node": "node1", "HTTP_GET": {"url": [{"path": "/"}]}}


def problems(where: list, key: str, value=1, real_server: dict | None = None) -> list[str]:
    d = copy.deepcopy(BASE)
    if real_server is not None:
        d["virtual_servers"][0]["real_servers"][0] = copy.deepcopy(real_server)
    cur = d
    for part in where:
        cur = cur.setdefault(part, {}) if isinstance(cur, dict) and part not in cur else cur[part]
    cur[key] = value
    with pytest.raises(InventoryError) as e:
        parse(d, "t.yaml")
    return e.value.lines


@pytest.mark.parametrize("where,key,block,rs", [
    ([], "linkbeat_use_polling", "top-level", None),
    (["global_defs"], "process_names", "global_defs", None),
    (["vrrp_instances", 0], "native_ipv6", "vrrp_instance", None),
    (["vrrp_instances", 0, "authentication"], "auth_type_x", None, None),
    (["virtual_servers", 0], "snmp_name", "virtual_server", None),
    (["virtual_servers", 0, "real_servers", 0], "snmp_name", "real_server", None),
    (["virtual_servers", 0, "real_servers", 0, "TCP_CHECK"], "bind_if", "TCP_CHECK", None),
    (["virtual_servers", 0, "real_servers", 0, "HTTP_GET", "url", 0], "regex_options", "HTTP_GET url", HTTP_RS),
])
def test_a_keepalived_keyword_lbtk_lacks_is_not_supported(where, key, block, rs):
    lines = problems(where, key, real_server=rs)
    if block is None:     # not a keepalived keyword there: a typo
        assert any("unknown key 'auth_type_x'" in line for line in lines), lines
        return
    want = f"not supported: {key} (keepalived {block} keyword lbtk does not model)"
    assert any(want in line and f"{key}: not supported" in line for line in lines), lines
    assert not any("unknown key" in line for line in lines), lines


def test_a_vrrp_script_keyword_under_a_free_name():
    lines = problems(["vrrp_scripts"], "chk", {"script": "/bin/true", "init_fail": True})
    assert any("vrrp_scripts.chk.init_fail: not supported: init_fail (keepalived vrrp_script" in line
               for line in lines), lines


def test_a_typo_is_still_a_typo():
    lines = problems(["global_defs"], "router_idd", "x")
    assert any("unknown key 'router_idd'" in line and "router_id" in line for line in lines), lines


def test_a_keyword_only_a_later_keepalived_has_says_so():
    lines = problems(["vrrp_instances", 0], "owner_ignore_adverts", True)
    assert any("(keepalived 2.3.3 vrrp_instance keyword lbtk does not model)" in line for line in lines), lines


def test_keyword_lists_are_keepalived_2_2_7s():
    assert kk.VERSIONS[0] == "2.2.7"
    assert {"global_defs", "vrrp_instance", "vrrp_script", "vrrp_sync_group", "virtual_server",
            "virtual_server/real_server", "virtual_server/real_server/TCP_CHECK",
            "virtual_server/real_server/HTTP_GET/url"} <= set(kk.BLOCKS)
    assert "router_id" in kk.BLOCKS["global_defs"] and "lvs_id" not in kk.BLOCKS["global_defs"]


def test_a_keyword_lbtk_writes_from_another_section_points_there():
    lines = problems(["global_defs"], "lvs_sync_daemon", "eth0 VI_1")
    assert any("unknown key 'lvs_sync_daemon' — use sync_daemon:" in line for line in lines), lines
