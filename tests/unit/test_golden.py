"""Rendered node files match the reviewed golden copies in tests/golden/, and every golden
keepalived.conf passes the real `keepalived -t` (in a namespace holding the node's interfaces).

After an intended template change: UPDATE_GOLDEN=1 pytest tests/unit/test_golden.py, then
review the diff of tests/golden/ like code.
"""
import os
import shutil
from pathlib import Path

import pytest

from fabfile.infra.confcheck import keepalived_check
from fabfile.model.loading import load
from fabfile.core.render import ASSUMED, render_all
from fabfile.core.render.keepalived import CONF
from fabfile.core.render.scripts import stand_ins
from fabfile.model.secrets import resolve_all

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests/golden"
CASES = {"example": "example", **{p.stem: str(p.relative_to(ROOT))
                                  for p in sorted((ROOT / "tests/inventories/good").glob("*.yaml"))}}


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv("TEST_VRRP_PASS", "s3cret")


def rendered(env):
    inv, _ = load(env)
    return inv, render_all(inv, resolve_all(inv, env), ASSUMED)


@pytest.mark.parametrize("case", CASES)
def test_render_matches_golden(case):
    inv, per_node = rendered(CASES[case])
    base = GOLDEN / case
    if os.environ.get("UPDATE_GOLDEN") == "1":
        shutil.rmtree(base, ignore_errors=True)
    seen = set()
    for node, files in per_node.items():
        for f in files:
            if f.content is None:
                continue
            g = base / node / f.path.lstrip("/")
            seen.add(g)
            if os.environ.get("UPDATE_GOLDEN") == "1":
                g.parent.mkdir(parents=True, exist_ok=True)
                g.write_text(f.content)
            assert g.exists(), f"no golden file {g.relative_to(ROOT)} (UPDATE_GOLDEN=1 makes it)"
            assert f.content == g.read_text(), f"{case}/{node}:{f.path} differs from its golden copy"
    assert set(p for p in base.rglob("*") if p.is_file()) == seen, "stale golden files"


@pytest.mark.skipif(not shutil.which("keepalived") and not os.path.exists("/usr/sbin/keepalived"),
                    reason="keepalived not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("case", CASES)
def test_golden_keepalived_conf_passes_real_keepalived(case):
    inv, _ = load(CASES[case])
    for node in inv.nodes:
        text = (GOLDEN / case / node.name / CONF.lstrip("/")).read_text()
        r = keepalived_check(inv, node, text, stand_ins(inv))
        assert (r.verdict, r.messages) == ("ok", []), f"{case}/{node.name}: {r.messages}"


def test_seed_node1_config_with_corrections():
    text = (GOLDEN / "example/node1" / CONF.lstrip("/")).read_text()
    for line in ("router_id LVS_NODE1", "state MASTER", "interface ens33", "virtual_router_id 51",
                 "priority 100", "advert_int 1", "unicast_src_ip 192.168.189.135",
                 "auth_type PASS", "192.168.189.100", "lb_algo rr", "lb_kind DR", "delay_loop 5",
                 "persistence_timeout 60", "persistence_granularity 255.255.255.0",
                 "retry 3", "delay_before_retry 3", "connect_timeout 5"):
        assert line in text, line
    assert "unicast_peer {\n        192.168.189.136\n        192.168.189.137\n    }" in text
    for wrong in ("nb_get_retry", "nat_mask", "8080"):
        assert wrong not in text
    for rs in ("192.168.189.135", "192.168.189.136", "192.168.189.137"):
        assert f"real_server {rs} {{" in text   # fwmark service: port comes from connect_port
    assert text.count("connect_port 80") == 3


def test_multi_master_each_node_masters_one_vip():
    inv, per_node = rendered(CASES["multi_master"])
    for i, node in enumerate(("node1", "node2", "node3")):
        conf = next(f for f in per_node[node] if f.path == CONF).content
        blocks = conf.split("vrrp_instance ")[1:]
        masters = [b for b in blocks if "state MASTER" in b]
        assert len(masters) == 1 and f"10.189.0.10{i + 1}" in masters[0]
        assert f"virtual_router_id {61 + i}" in masters[0] and "priority 100" in masters[0]
