"""`inv deploy --batch N` on the real lab's three nodes: the backups N at a time, the VIP holder
last and alone, the deploy saying which batches it rolled, and the change on every node."""
from __future__ import annotations

import re

import yaml

from fabfile.model.loading import inventory_dir

from .conftest import inv, inv_json, sh

VIP = "10.189.0.100"
NODE3_WEIGHT = "grep -A1 'real_server 10.189.0.13' /etc/keepalived/keepalived.conf"


def first_line(lines: list[str], pattern: str) -> int:
    return next(i for i, ln in enumerate(lines) if re.match(pattern, ln))


def test_batch_2_takes_both_backups_at_once_then_the_vip_holder(deployed, nodes, tmp_path):
    data = yaml.safe_load((inventory_dir() / "lab.yaml").read_text())
    data["virtual_servers"][0]["real_servers"][2]["weight"] = 2   # every node's keepalived.conf, no VIP move
    heavier = tmp_path / "lab-batch.yaml"
    heavier.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        r = inv("deploy", "--env", str(heavier), "--batch", "2", check=True, timeout=300)
        lines = r.stdout.splitlines()
        assert "batches: node3+node2, then node1" in lines, r.stdout
        # the holder's turn comes only once both backups have finished theirs
        holder_starts = first_line(lines, r"node1: ")
        for backup in ("node3", "node2"):
            assert first_line(lines, rf"{backup}: \d+ change\(s\)$") < holder_starts, r.stdout
        assert "3 node(s) changed" in lines, r.stdout
        weights = {n: sh(c, NODE3_WEIGHT).stdout for n, c in nodes.items()}
        assert all("weight 2" in w for w in weights.values()), weights
        assert inv("diff", "--env", str(heavier)).returncode == 0
        rc, out = inv_json("verify", "--env", str(heavier))
        assert rc == 0 and out["vip_holders"] == {VIP: ["node1"]}, out
    finally:
        back = inv("deploy", "--env", "lab", "--batch", "5", timeout=300)
    assert back.returncode == 0, back.stdout + back.stderr
    # N beyond the number of backups: all of them at once, the holder still alone and last
    assert "batches: node3+node2, then node1" in back.stdout.splitlines(), back.stdout
    weights = {n: sh(c, NODE3_WEIGHT).stdout for n, c in nodes.items()}
    assert all("weight 1" in w for w in weights.values()), weights
    assert inv("diff", "--env", "lab").returncode == 0

