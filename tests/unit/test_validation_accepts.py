"""What keepalived 2.2.7 accepts, the model accepts too (it used to refuse some): every
scheduler keepalived knows, the same virtual_router_id on two interfaces, VRRPv3 sub-second
adverts. Each is rendered and checked by the real `keepalived -t` with zero messages (as root: the
check runs in a network namespace holding the node's interfaces; without root the test is skipped,
visibly, after the model has accepted the inventory)."""
from __future__ import annotations

import copy
import os

import pytest
import yaml

from fabfile.infra.confcheck import keepalived_check
from fabfile.model.loading import InventoryError, inventory_dir, parse
from fabfile.model.fields import LB_ALGOS
from fabfile.core.render import ASSUMED, render_all
from fabfile.core.render.keepalived import CONF

BASE = yaml.safe_load((inventory_dir() / "lab.yaml").read_text())


def accepted(data: dict) -> None:
    inv = parse(data, "t.yaml")
    os.environ.setdefault("LBTK_T_SECRET", "abc12345")
    files = render_all(inv, {vi.name: "abc12345" for vi in inv.vrrp_instances if vi.authentication}, ASSUMED)
    if os.geteuid() != 0:
        pytest.skip("keepalived -t runs in a network namespace with the node's interfaces: needs root")
    for n in inv.nodes:
        conf = next(f.content for f in files[n.name] if f.path == CONF)
        r = keepalived_check(inv, n, conf)
        assert r.exit_code == 0 and not r.messages, (n.name, r.messages)


@pytest.mark.parametrize("algo", LB_ALGOS)
def test_every_scheduler_keepalived_knows(algo):
    d = copy.deepcopy(BASE)
    d["virtual_servers"][0]["lb_algo"] = algo
    accepted(d)


def test_same_virtual_router_id_on_another_interface_is_legal():
    d = copy.deepcopy(BASE)
    d["vrrp_instances"].append({"name": "VI_2", "virtual_router_id": 51, "interface": "eth1",
                                "virtual_ipaddress": ["10.189.0.120"]})
    accepted(d)


def test_same_virtual_router_id_on_the_same_interface_is_refused():
    d = copy.deepcopy(BASE)
    d["vrrp_instances"].append({"name": "VI_2", "virtual_router_id": 51, "virtual_ipaddress": ["10.189.0.120"]})
    with pytest.raises(InventoryError, match=r"vrrp_instances\[1\]\.virtual_router_id: duplicate virtual_router_id 51 on eth0"):
        parse(d, "t.yaml")


@pytest.mark.parametrize("advert", [0.01, 0.05, 0.5, 1.25, 40.95])
def test_vrrp3_sub_second_adverts(advert):
    d = copy.deepcopy(BASE)
    vi = d["vrrp_instances"][0]
    vi.update(vrrp_version=3, advert_int=advert)
    vi.pop("authentication")
    accepted(d)


def test_vip_with_prefix_dev_and_label():
    d = copy.deepcopy(BASE)
    d["vrrp_instances"][0]["virtual_ipaddress"] = ["10.189.0.100/24 dev eth0 label eth0:vip"]
    accepted(d)
