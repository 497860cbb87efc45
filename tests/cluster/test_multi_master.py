"""Multi-master on the lab (issue 15, the seed names it and skips it): inventories/lab-multi.yaml runs
on the same three nodes as the plain lab; every node holds its own VIP, HTTP answers through each,
and a drill on one VIP moves only that VIP. The plain lab is deployed again at the end."""
from __future__ import annotations

import json
import urllib.request

import pytest

from fabfile.parsers.lbtk import node_in_page

from .conftest import inv, inv_json

OWN = {"10.189.0.101": "node1", "10.189.0.102": "node2", "10.189.0.103": "node3"}


@pytest.fixture(scope="module")
def multi(deployed):
    inv("deploy", "--env", "lab-multi", check=True)
    yield
    inv("deploy", "--env", "lab", check=True)


def holders() -> dict[str, list[str]]:
    code, st = inv_json("status", "--env", "lab-multi")
    return st["vip_holders"]


def test_every_node_holds_its_own_vip_and_http_answers_through_each(multi):
    code, report = inv_json("verify", "--env", "lab-multi")
    assert code == 0, json.dumps([c for c in report["checks"] if not c["ok"]], indent=1)
    assert report["vip_holders"] == {vip: [node] for vip, node in OWN.items()}
    http = [c for c in report["checks"] if c["name"].startswith("HTTP")]
    assert len(http) == 3 and all(c["ok"] for c in http)
    for vip, node in OWN.items():
        body = urllib.request.urlopen(f"http://{vip}/", timeout=3).read().decode()
        assert node_in_page(body, list(OWN.values())) == node


def test_a_drill_on_one_vip_moves_only_that_vip(multi):
    code, r = inv_json("failover-test", "--env", "lab-multi", "--vip", "10.189.0.102", timeout=120)
    assert code == 0 and r["ok"], r
    assert r["vip"] == "10.189.0.102" and r["from"] == "node2" and r["to"] in ("node1", "node3")
    assert r["others_moved"] == []                 # .101 and .103 never left their nodes
    assert holders() == {vip: [node] for vip, node in OWN.items()}   # preempted back
