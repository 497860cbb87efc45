"""Reach (issue 13) on the plain lab: a dead director does not block the living ones
(--skip-unreachable, owed changes caught up later), --node refuses a change every node must see
at once, every task names its inventory and nodes first."""
from __future__ import annotations

import subprocess
import time

import yaml

from fabfile.model.loading import inventory_dir

from .conftest import inv, inv_json, sh, shown

VIP = "10.189.0.100"
DRAINED_WEIGHT = "grep -A1 'real_server 10.189.0.12' /etc/keepalived/keepalived.conf"


def link(node: str, up: bool) -> None:
    subprocess.run(["ip", "-n", f"lbtk-{node}", "link", "set", "eth0", "up" if up else "down"], check=True)


def wait_single_holder(node: str, limit: float = 20) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        rc, out = inv_json("status", "--env", "lab")
        if out.get("vip_holders", {}).get(VIP) == [node]:
            return
        time.sleep(0.5)
    raise AssertionError(f"{VIP} did not settle on {node}")


def test_first_line_names_the_inventory_and_its_nodes(deployed):
    r = inv("verify", "--env", "lab", check=True)
    lab_yaml = shown(inventory_dir() / "lab.yaml")      # the session's copy: an absolute path
    assert r.stdout.splitlines()[0] == f"lab ({lab_yaml}): node1, node2, node3"
    r = inv("verify", "--env", "lab", "--node", "node2", check=True)
    assert r.stdout.splitlines()[0] == f"lab ({lab_yaml}): node2 (of 3)"
    assert "VIP 10.189.0.100" not in r.stdout and "VIP holders" not in r.stdout   # that needs every node
    assert any(ln.startswith("keepalived running") and " node2 " in ln for ln in r.stdout.splitlines())


def test_a_dead_director_does_not_block_a_drain(deployed, nodes):
    owed = inventory_dir() / ".state" / "lab.owed.yaml"
    owed.unlink(missing_ok=True)
    link("node3", False)
    try:
        r = inv("drain", "--env", "lab", "--server", "10.189.0.12", timeout=120)
        assert r.returncode == 2, r.stdout + r.stderr
        line = r.stderr.strip().splitlines()
        assert len(line) == 1 and "node3" in line[0] and "nothing was changed on any node" in line[0] \
            and "--skip-unreachable" in line[0], r.stderr
        r = inv("drain", "--env", "lab", "--server", "10.189.0.12", "--skip-unreachable", timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "node3: UNREACHABLE, skipped — owed keepalived" in r.stdout
        assert yaml.safe_load(owed.read_text())["node3"]["phases"] == ["keepalived"]
    finally:
        link("node3", True)
    try:
        wait_single_holder("node1")
        assert "weight 1" in sh(nodes["node3"], DRAINED_WEIGHT).stdout    # skipped: node3 missed the drain
        r = inv("deploy", "--env", "lab", timeout=180, check=True)
        assert "node3: caught up on what it was owed" in r.stdout
        assert not owed.exists()
        rc, out = inv_json("verify", "--env", "lab")
        assert rc == 0, [c for c in out["checks"] if not c["ok"]]
        # the plain lab's kernel has no IPVS (no weights to read there): the drain is in each
        # node's keepalived.conf, node3's included now that it caught up
        drained = {n: sh(c, DRAINED_WEIGHT).stdout for n, c in nodes.items()}
        assert all("weight 0" in w for w in drained.values()), drained
    finally:
        r = inv("undrain", "--env", "lab", "--server", "10.189.0.12", timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr


def test_node_limited_deploy_refuses_a_change_every_node_must_see(deployed, tmp_path):
    data = yaml.safe_load((inventory_dir() / "lab.yaml").read_text())
    data["vrrp_instances"][0]["virtual_router_id"] = 52
    p = tmp_path / "lab-vrid.yaml"
    p.write_text(yaml.safe_dump(data))
    r = inv("deploy", "--env", str(p), "--node", "node2")
    assert r.returncode == 2
    assert "every node must take at once" in r.stderr and "nothing was changed on any node" in r.stderr
    r = inv("deploy", "--env", "lab", "--check", check=True)
    assert "no changes pending" in r.stdout
