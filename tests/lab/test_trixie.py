"""Debian 13 (trixie) lab nodes and a mixed cluster, for real (issue 16).

inventories/lab-trixie.yaml: t1..t3 (10.189.0.201-203) on trixie, keepalived 2.3.3, nginx 1.26.
inventories/lab-mixed.yaml: m1, m2 on bookworm (keepalived 2.2.7) and m3 on trixie (2.3.3), one
VRRP instance across the release boundary (10.189.0.221-223).

Both have their own node names, addresses, MACs, VIPs and virtual_router_ids, and `lab.down` of
one stops only its own nodes and keeps the bridge while another lab's ports are on it: they run
beside the plain lab and the lab-N benchmarks on lbtk-br0, so these tests do not take the shared
lab lock (/tmp/lbtk-lab.lock). The module fixtures bring each lab up (the trixie base is built
once, ~2 min) and down at the end, unless it was up already (or LBTK_KEEP_LAB=1); the other
labs' nodes (their nspawn pids) are the same right before and right after each lab.down.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from .side_labs import running, ssh

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fabfile import lab  # noqa: E402
from fabfile.lab import rootfs  # noqa: E402
from fabfile.model.loading import inventory_dir  # noqa: E402
from tests.cli import inv, inv_json  # noqa: E402

pytestmark = pytest.mark.lab
TRIXIE_VIP, MIXED_VIP = "10.189.0.210", "10.189.0.230"


@pytest.fixture(scope="module")
def trixie():
    with running("lab-trixie") as spec:
        yield spec


@pytest.fixture(scope="module")
def mixed():
    with running("lab-mixed") as spec:
        yield spec


def _release_of(spec, host) -> str:
    return ssh(spec, host, ". /etc/os-release && echo $VERSION_CODENAME").stdout.strip()


# ---------------------------------------------------------------- lab-trixie

def test_trixie_nodes_run_trixie_on_their_own_base(trixie):
    assert [_release_of(trixie, n.host) for n in trixie.nodes] == ["trixie"] * 3
    assert rootfs.is_current(trixie, "trixie") and rootfs.base_dir(trixie, "trixie").name == "base-trixie"


def test_trixie_deploy_verify_green(trixie):
    t0 = time.monotonic()
    r = inv("deploy", "--env", "lab-trixie", check=True, timeout=300)
    print(f"deploy --env lab-trixie: {time.monotonic() - t0:.1f}s")
    table = r.stdout[r.stdout.index("install: packages on each node"):].split("\n\n")[0]
    for n in ("t1", "t2", "t3"):     # the install phase reports each node's own versions
        row = next(ln for ln in table.splitlines() if ln.startswith(n + " "))
        assert "1:2.3.3-1" in row and " 1.26." in row, row
    t0 = time.monotonic()
    rc, report = inv_json("verify", "--env", "lab-trixie")
    print(f"verify --env lab-trixie: {time.monotonic() - t0:.1f}s")
    assert rc == 0 and report["ok"], report["checks"]
    assert report["vip_holders"] == {TRIXIE_VIP: ["t1"]}
    assert {(v["node"], v["state"], v["vrid"]) for v in report["vrrp"]} == {
        ("t1", "MASTER", 71), ("t2", "BACKUP", 71), ("t3", "BACKUP", 71)}
    again = inv("deploy", "--env", "lab-trixie", check=True)
    assert "no changes" in again.stdout


def test_trixie_keepalived_accepts_the_rendered_config_with_zero_messages(trixie):
    inv("deploy", "--env", "lab-trixie", check=True)
    for n in trixie.nodes:
        r = ssh(trixie, n.host, "keepalived -t -f /etc/keepalived/keepalived.conf; echo rc=$?")
        assert (r.stdout.strip(), r.stderr.strip()) == ("rc=0", ""), (n.name, r.stdout, r.stderr)
        assert ssh(trixie, n.host, "keepalived -v 2>&1 | head -1").stdout.startswith("Keepalived v2.3.3")


def test_trixie_deploy_refuses_a_warning_of_233(trixie, tmp_path):
    """A templates_dir override that 2.3.3 only warns about (an unknown keyword: exit 5) is refused
    by the first node's own keepalived -t with its own words, and nothing is swapped anywhere."""
    inv("deploy", "--env", "lab-trixie", check=True)
    ours = (ROOT / "fabfile/core/render/keepalived.conf.j2").read_text()
    assert "advert_int {{" in ours
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates/keepalived.conf.j2").write_text(
        ours.replace("advert_int {{", "bogus_keyword_xyz 1\n    advert_int {{", 1))
    src = (inventory_dir() / "lab-trixie.yaml").read_text()
    bad = tmp_path / "lab-trixie-bad.yaml"
    bad.write_text(src.replace("auth_pass_file: secrets/lab-trixie.auth_pass",
                               f"auth_pass_file: {inventory_dir()}/secrets/lab-trixie.auth_pass")
                   + f"templates_dir: {tmp_path / 'templates'}\n")
    before = {n.name: ssh(trixie, n.host, "md5sum /etc/keepalived/keepalived.conf").stdout for n in trixie.nodes}
    r = inv("deploy", "--env", str(bad))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stdout + r.stderr
    assert lines[0].startswith("error: t3: keepalived -t rejected the new keepalived.conf (warnings)")
    assert "Unknown keyword 'bogus_keyword_xyz'" in lines[0] and "nothing was swapped" in lines[0]
    assert {n.name: ssh(trixie, n.host, "md5sum /etc/keepalived/keepalived.conf").stdout
            for n in trixie.nodes} == before


# ---------------------------------------------------------------- lab-mixed

def test_mixed_nodes_run_their_own_release(mixed):
    assert [_release_of(mixed, n.host) for n in mixed.nodes] == ["bookworm", "bookworm", "trixie"]


def test_mixed_deploy_verify_green(mixed):
    r = inv("deploy", "--env", "lab-mixed", check=True, timeout=300)
    table = r.stdout[r.stdout.index("install: packages on each node"):].split("\n\n")[0]
    rows = {ln.split()[0]: ln for ln in table.splitlines()[1:] if ln.split()[0] in ("m1", "m2", "m3")}
    assert "1:2.2.7" in rows["m1"] and "1:2.2.7" in rows["m2"] and "1:2.3.3-1" in rows["m3"], rows
    rc, report = inv_json("verify", "--env", "lab-mixed")
    assert rc == 0 and report["ok"], report["checks"]
    assert report["vip_holders"] == {MIXED_VIP: ["m1"]}
    # VRRP across releases: both backups hear 2.2.7's adverts, no authentication errors
    assert all(v["auth_errors"] == 0 for v in report["vrrp"])
    assert {v["node"]: v["state"] for v in report["vrrp"]} == {"m1": "MASTER", "m2": "BACKUP", "m3": "BACKUP"}


def _variant(tmp_path, prios: dict[str, int], master: str) -> str:
    """lab-mixed with other priorities (MASTER state on `master`), as a file --env takes."""
    import yaml
    data = yaml.safe_load((inventory_dir() / "lab-mixed.yaml").read_text())
    for n in data["nodes"]:
        n["priority"] = prios[n["name"]]
        n.pop("state", None)
        if n["name"] == master:
            n["state"] = "MASTER"
    auth = data["vrrp_instances"][0]["authentication"]
    auth["auth_pass_file"] = str(inventory_dir() / auth["auth_pass_file"])
    p = tmp_path / f"lab-mixed-{master}-{'-'.join(str(prios[k]) for k in sorted(prios))}.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(p)


# (who is MASTER, who takes over): 2.2.7 -> 2.2.7, 2.2.7 -> 2.3.3, 2.3.3 -> 2.2.7
DIRECTIONS = {
    "bookworm-to-bookworm": ({"m1": 100, "m2": 90, "m3": 80}, "m1", "m2"),
    "bookworm-to-trixie": ({"m1": 100, "m2": 80, "m3": 90}, "m1", "m3"),
    "trixie-to-bookworm": ({"m1": 90, "m2": 80, "m3": 100}, "m3", "m1"),
}


@pytest.mark.parametrize("mode", ["graceful", "crash"])
@pytest.mark.parametrize("direction", sorted(DIRECTIONS))
def test_mixed_failover_across_releases(mixed, tmp_path, direction, mode):
    prios, master, taker = DIRECTIONS[direction]
    env = _variant(tmp_path, prios, master)
    inv("deploy", "--env", env, check=True, timeout=300)
    try:
        rc, r = inv_json("failover-test", "--env", env, "--mode", mode, timeout=300)
        assert rc == 0 and r["ok"] is True, r
        assert (r["from"], r["to"]) == (master, taker)
        assert r["theory_s"] == pytest.approx(0.648 if mode == "graceful" else 3.648, abs=0.001)
        assert abs(r["failover_s"] - r["theory_s"]) <= 0.5, r
        assert r["preempt_back_s"] is not None and r["final_holders"] == [master]
        print(f"{direction} {mode}: failover {r['failover_s']:.3f} s (theory {r['theory_s']:.3f}), "
              f"outage {r['outage_s']}, preempt back {r['preempt_back_s']:.3f} s")
    finally:
        inv("deploy", "--env", "lab-mixed", check=True, timeout=300)


def test_mixed_ends_as_the_inventory_says(mixed):
    inv("deploy", "--env", "lab-mixed", check=True)
    rc, report = inv_json("verify", "--env", "lab-mixed")
    assert rc == 0 and report["vip_holders"] == {MIXED_VIP: ["m1"]}


def test_a_running_node_keeps_its_release(mixed, tmp_path):
    """m3 runs trixie: an inventory that now says bookworm for it is one line, nothing restarted."""
    from dataclasses import replace

    from fabfile.lab import LabError
    spec = replace(mixed, nodes=tuple(replace(n, release="bookworm") if n.name == "m3" else n
                                      for n in mixed.nodes))
    pids = {s.name: s.pid for s in lab.status(mixed)}
    with pytest.raises(LabError, match="m3: running on trixie, the inventory now says bookworm"):
        lab.up(spec, progress=lambda s: None)
    assert {s.name: s.pid for s in lab.status(mixed)} == pids


# ---------------------------------------------------------------- golden files, keepalived 2.3.3

def _golden_cases():
    from tests.unit.test_golden import CASES
    return CASES


@pytest.mark.parametrize("case", _golden_cases())
def test_golden_keepalived_conf_passes_trixies_keepalived(trixie, case):
    """Every golden keepalived.conf (checked by this host's 2.2.7 in the unit tier) also passes
    Debian 13's keepalived 2.3.3, from the trixie base the lab-trixie fixture built."""
    from fabfile.core.render.keepalived import CONF
    from fabfile.core.render.scripts import stand_ins
    from fabfile.infra.confcheck import keepalived_check
    from fabfile.model.loading import load
    from tests.unit.test_golden import CASES, GOLDEN
    inv, _ = load(CASES[case])
    root = rootfs.base_dir(trixie, "trixie")
    for node in inv.nodes:
        text = (GOLDEN / case / node.name / CONF.lstrip("/")).read_text()
        r = keepalived_check(inv, node, text, stand_ins(inv), root=root)
        assert (r.verdict, r.messages) == ("ok", []), f"{case}/{node.name} (2.3.3): {r.messages}"
