"""Issue 29, fleets: `inv check --all` checks every inventory, then what no single inventory can
see: the same virtual_router_id on one segment, a VIP or a node address in two clusters. One line
each, naming both files; inventories naming the same `estate` (one deployed at a time) are not
compared. The repository's inventories pass as they are."""
from __future__ import annotations

import copy
import os
import re
import shutil

import pytest

from fabfile.core.fleet import clashes
from fabfile.model.loading import inventory_dir, parse, read_yaml
from tests.cli import run_inv

INVENTORIES = inventory_dir()        # the session's copy of the repository's


def data(name: str) -> dict:
    return read_yaml((INVENTORIES / f"{name}.yaml").read_text())


def fleet(**named: dict) -> list[str]:
    return [c.line() for c in clashes([(f"{n}.yaml", parse(copy.deepcopy(d), f"{n}.yaml")) for n, d in named.items()])]


def test_the_repository_s_inventories_pass_together():
    r = run_inv(["check", "--all"], {**os.environ, "LBTK_FORMAT": "plain"}, timeout=120)
    assert r.returncode == 0, r.stderr
    n = len(list(INVENTORIES.glob("*.yaml")))
    assert r.stdout.rstrip().endswith(f"{n} inventories checked together: no clash(es) between clusters")
    assert all(ln.startswith("note: ") for ln in r.stderr.splitlines()), r.stderr


def test_two_lab_inventories_with_one_vrid_on_one_segment_are_refused_naming_both(tmp_path):
    d = tmp_path / "inventories"
    d.mkdir()
    shutil.copy2(INVENTORIES / "lab.yaml", d / "lab.yaml")
    text = (INVENTORIES / "lab-trixie.yaml").read_text()
    assert "virtual_router_id: 71\n" in text
    (d / "lab-trixie.yaml").write_text(text.replace("virtual_router_id: 71\n", "virtual_router_id: 51\n"))
    r = run_inv(["check", "--all"], {**os.environ, "LBTK_INVENTORIES": str(d), "LBTK_FORMAT": "plain"}, timeout=120)
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1] == (
        f"error: {d}/lab-trixie.yaml and {d}/lab.yaml: virtual_router_id 51 on 10.189.0.0/24 (VI_1 / VI_1) in "
        "both (clusters lab-trixie and lab) — give one of them other virtual_router_ids, or name the same "
        "`estate:` in both if only one of them is ever deployed")
    assert sum(ln.startswith("error: ") for ln in r.stderr.splitlines()) == 1


def test_a_vip_and_a_node_in_two_clusters_are_one_line_each():
    a, b = data("lab-trixie"), data("lab-upgrade")
    b["nodes"][0]["host"] = a["nodes"][0]["host"]                     # u1 at t1's address
    b["vrrp_instances"][0]["virtual_ipaddress"] = a["vrrp_instances"][0]["virtual_ipaddress"]
    b["virtual_servers"][0]["vip"] = a["virtual_servers"][0]["vip"]
    lines = fleet(**{"lab-trixie": a, "lab-upgrade": b})
    assert [ln.split(": ", 1)[1].split(" in both")[0] for ln in lines] == [
        "node address 10.189.0.201 (t1 / u1)", "VIP 10.189.0.210 (VI_1 / VI_1)"]
    assert all(ln.startswith("lab-trixie.yaml and lab-upgrade.yaml: ") for ln in lines)


def test_one_estate_is_not_compared_with_itself():
    lab, multi = data("lab"), data("lab-multi")
    assert lab["estate"] == multi["estate"] == "lab"                 # node1..node3: one of them runs
    assert fleet(lab=lab, **{"lab-multi": multi}) == []
    del multi["estate"]
    lines = fleet(lab=lab, **{"lab-multi": multi})
    assert len(lines) == 1 and "node address 10.189.0.11 (node1 / node1)" in lines[0]


def test_multi_master_claims_each_of_its_vrids():
    multi, trixie = data("lab-multi"), data("lab-trixie")
    trixie["vrrp_instances"][0]["virtual_router_id"] = 62            # lab-multi's second instance
    lines = fleet(**{"lab-multi": multi, "lab-trixie": trixie})
    assert len(lines) == 1 and "virtual_router_id 62 on 10.189.0.0/24 (VI_1_node2 / VI_1)" in lines[0]


def test_another_segment_or_the_other_family_is_no_clash():
    bastion, trixie = data("lab-bastion"), data("lab-trixie")
    trixie["vrrp_instances"][0]["virtual_router_id"] = bastion["vrrp_instances"][0]["virtual_router_id"]
    assert fleet(**{"lab-bastion": bastion, "lab-trixie": trixie}) == []   # 10.189.0.64/27: its inner bridge
    dual, multi = data("lab-dual"), data("lab-multi")
    v6 = next(vi for vi in dual["vrrp_instances"] if ":" in vi["virtual_ipaddress"][0])
    v6["virtual_router_id"] = 61                       # IPv6's VRRP space: lab-multi's 61 is IPv4
    assert fleet(**{"lab-dual": dual, "lab-multi": multi}) == []


def test_all_and_env_together_is_a_usage_error():
    r = run_inv(["check", "--all", "--env", "prod.example"], timeout=60)
    assert (r.returncode, r.stderr) == (2, "error: --all checks every inventory: drop --env prod.example\n")


@pytest.mark.parametrize("bad", ["", "two words", "-lead"])
def test_estate_is_one_word(bad):
    d = data("lab")
    d["estate"] = bad
    with pytest.raises(Exception) as e:
        parse(d, "lab.yaml")
    assert "estate" in str(e.value)


def test_env_names_several_inventories_or_a_glob():
    from fabfile.model.loading import InventoryError, env_names
    assert env_names("lab") is None and env_names("inventories/lab.yaml") is None
    assert env_names("lab-multi,lab") == ["lab-multi", "lab"]
    assert env_names("lab-m*,lab-multi") == ["lab-mixed", "lab-monitoring", "lab-multi"]
    with pytest.raises(InventoryError, match=r"--env 'nope\*': matches no inventory .* choose from"):
        env_names("lab,nope*")
    from fabfile.model.loading import path_for
    with pytest.raises(InventoryError, match=r"several inventories are for check and status — this task takes one"):
        path_for("lab*")


def test_check_of_a_glob_is_one_table_and_the_clashes_between_them():
    r = run_inv(["check", "--env", "lab,lab-m*", "--format", "plain"], {**os.environ}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("keepalived -t") == 1 and re.search(r"lab-mixed\.yaml +m1", r.stdout)
    assert "4 inventories checked together: no clash(es)" in r.stdout
