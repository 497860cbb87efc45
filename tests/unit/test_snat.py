"""One-arm LVS-NAT (`snat: true`): the kernel tier's NAT example renders masquerade rules."""
import pytest

from fabfile.core import desired
from fabfile.model.loading import InventoryError, load, parse
from fabfile.core.render import fwmark


def test_kernel_nat_renders_masquerade_and_conntrack():
    inv, _ = load("kernel-nat")
    node = inv.nodes[1]
    files = {f.path: f.content for f in fwmark.files(inv, node)}
    rules = files[fwmark.RULES]
    assert "-m ipvs --vaddr 10.189.0.150/32 --vport 80 --vmethod masq -j MASQUERADE" in rules
    assert "*mangle" not in rules                      # NAT: no director fix, no marks
    assert "-t nat -D POSTROUTING -j LBTK-SNAT" in files[fwmark.UNIT]
    assert desired.sysctls(inv, node) == {"net.ipv4.ip_forward": "1", "net.ipv4.vs.conntrack": "1",
                                             "net.ipv4.vs.expire_nodest_conn": "1",
                                             "net.ipv4.vs.backup_only": "0"}
    assert desired.dr_vips(inv, node) == []


def test_dr_inventories_render_no_nat():
    inv, _ = load("kernel")
    files = {f.path: f.content for f in fwmark.files(inv, inv.nodes[0])}
    assert "*nat" not in files[fwmark.RULES] and "LBTK-SNAT" not in files[fwmark.UNIT]


def test_snat_needs_nat():
    inv, _ = load("kernel")
    data = inv.model_dump(exclude_none=True)
    data["virtual_servers"][0]["snat"] = True
    with pytest.raises(InventoryError, match=r"virtual_servers\[0\]\.snat: snat is for one-arm LVS-NAT"):
        parse(data, "k.yaml")
