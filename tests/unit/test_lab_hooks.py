"""The product reaches the lab through fabfile.model.extensions only (issue 23): what the lab
registers there answers as the lab code did before it moved (section schema, lab-N, traffic client)."""
from __future__ import annotations

import pytest

from fabfile.lab import hooks
from fabfile.model import extensions
from fabfile.model.loading import inventory_dir, InventoryError, load, parse


def test_the_lab_is_registered_and_validates_its_sections():
    assert extensions.section_model("inventory") is hooks.schema.Lab
    assert extensions.section_model("node") is hooks.schema.NodeLab
    inv = load("lab-mixed")[0]
    assert isinstance(inv.lab, hooks.schema.Lab) and inv.nodes[2].lab.release == "trixie"


def test_without_the_lab_a_lab_section_is_one_line(monkeypatch):
    kernel = load("kernel")[0]
    monkeypatch.setattr(extensions, "_hooks", [])
    import yaml
    data = yaml.safe_load((inventory_dir() / "lab.yaml").read_text())
    with pytest.raises(InventoryError) as e:
        parse(data, "lab.yaml")
    assert e.value.lines == ["lab.yaml: lab: a section of the local lab, which this program has not loaded — "
                             "run it through `inv` (the task layer loads the lab), or drop the section"]
    assert extensions.generated("lab-3", inventory_dir()) is None and extensions.traffic_client(kernel) is None


def test_generated_inventories_come_from_the_lab():
    inv, path = load("lab-3")
    assert [n.name for n in inv.nodes] == ["node1", "node2", "node3"] and path.name == "lab-3.yaml"
    assert inv.source == "inventories/lab-3.yaml (generated from lab.yaml)"
    with pytest.raises(InventoryError, match="a generated lab has 1 to 50 nodes"):
        load("lab-51")


def test_the_traffic_client_is_the_kernel_tiers_namespace():
    assert extensions.traffic_client(load("lab")[0]) is None
    c = extensions.traffic_client(load("kernel")[0])
    assert c.name == "lbtk-kclient" and c.prefix == ("ip", "netns", "exec", "lbtk-kclient")
    assert c.missing == "no client namespace lbtk-kclient: run `inv lab.up` (as root)"


def test_os_swap_is_the_labs_re_image_and_none_elsewhere():
    assert extensions.os_swap(load("example")[0], "example") is None
    with pytest.raises(Exception, match="the kernel tier builds bookworm nodes only"):
        extensions.os_swap(load("kernel")[0], "kernel")
