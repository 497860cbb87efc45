"""Issue 13 acceptance on the production-shaped lab (inventories/lab-bastion.yaml): an `ops` user
with sudo (a password on lb3), root login refused, the directors reachable only through a bastion,
names from an ssh_config file. Every task runs through it as on a real estate."""
from __future__ import annotations

import os
import time

import pytest
import yaml

from fabfile.model.loading import inventory_dir

from .conftest import inv, inv_json, shown

ENV = "lab-bastion"
NODES = ["lb1", "lb2", "lb3"]
VIP = "10.189.0.80"


@pytest.fixture(scope="module")
def bastion_lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    from fabfile import lab as labmod
    from fabfile.lab.hooks import spec_for
    spec = spec_for(ENV)
    was_up = all(s.running for s in labmod.status(spec))
    if not was_up:
        inv("lab.up", "--env", ENV, check=True, timeout=600)
    yield spec
    if not was_up and os.environ.get("LBTK_KEEP_LAB") != "1":
        inv("lab.down", "--env", ENV, timeout=300)


@pytest.fixture(scope="module")
def bastion_deployed(bastion_lab):
    r = inv("deploy", "--env", ENV, check=True, timeout=600)
    assert "FAILED" not in r.stdout
    return r


def node_sh(node: str, cmd: str) -> str:
    """A command on a lab-bastion director, through the toolkit's own reach (ops, sudo, bastion)."""
    from fabfile.infra import remote
    from fabfile.model.context import load_env
    e = load_env(ENV)
    with remote.nodes(e, [node]) as group:
        return remote.run(group[node], cmd, check=False).stdout


def variant(tmp_path, name: str, change) -> str:
    data = yaml.safe_load((inventory_dir() / f"{ENV}.yaml").read_text())
    change(data)
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data))
    return str(p)


def test_deploy_and_verify_through_the_bastion(bastion_deployed):
    where = shown(inventory_dir() / f"{ENV}.yaml")      # the session's copy: an absolute path
    assert bastion_deployed.stdout.splitlines()[0].startswith(f"{ENV} ({where}): lb1, lb2, lb3")
    rc, out = inv_json("verify", "--env", ENV)
    assert rc == 0, [c for c in out["checks"] if not c["ok"]]
    assert out["vip_holders"] == {VIP: ["lb1"]}
    http = next(c for c in out["checks"] if c["name"] == f"HTTP {VIP}:80")
    assert http["ok"] and http["detail"] == "answered by lb1"      # probed from the bastion


def test_only_ops_logs_in_and_nothing_runs_as_root_over_ssh(bastion_deployed):
    for n in NODES:
        log = node_sh(n, "journalctl -u ssh --no-pager -o cat | grep -E 'Accepted|Failed|ROOT LOGIN' || true")
        accepted = [ln for ln in log.splitlines() if ln.startswith("Accepted")]
        assert accepted and all(" for ops from " in ln for ln in accepted), (n, log[-2000:])
        assert " for root " not in log
        who = node_sh(n, "ss -tnpH state established '( sport = :22 )'")
        assert "sshd" in who


def test_files_have_the_owners_and_modes_of_a_root_deploy(bastion_deployed, deployed, nodes):
    from fabfile.model.context import load_env
    from fabfile.core.render import managed_paths
    from .conftest import sh
    e = load_env(ENV)
    paths = [p for p in managed_paths(e.inv, "lb1", e.secrets)]
    stat = "for p in " + " ".join(paths) + "; do [ -e $p ] && stat -c '%n %U:%G %a' $p; done; true"
    via_sudo = sorted(node_sh("lb1", stat).splitlines())
    as_root = sorted(sh(nodes["node1"], stat).stdout.splitlines())
    assert via_sudo and via_sudo == as_root, (via_sudo, as_root)
    assert "/etc/keepalived/keepalived.conf root:root 600" in via_sudo


def test_second_deploy_is_a_no_op_and_timed_beside_the_direct_one(bastion_deployed, deployed):
    t0 = time.monotonic()
    r = inv("deploy", "--env", ENV, check=True)
    through = time.monotonic() - t0
    assert "no changes: nothing written, nothing restarted" in r.stdout
    t0 = time.monotonic()
    inv("deploy", "--env", "lab", check=True)
    direct = time.monotonic() - t0
    print(f"\nno-op deploy: through the bastion with sudo {through:.2f}s, direct as root {direct:.2f}s")


def test_failover_diff_rollback_drain_and_sync_through_the_bastion(bastion_deployed):
    rc, out = inv_json("failover-test", "--env", ENV, "--mode", "graceful", timeout=300)
    assert rc == 0 and out["ok"], out
    assert out["from"] == "lb1" and out["to"] == "lb2" and out["probes"] > 10
    r = inv("diff", "--env", ENV)
    assert r.returncode == 0 and "no drift" in r.stdout
    r = inv("drain", "--env", ENV, "--server", "lb2", check=True, timeout=300)
    assert "keepalived" in r.stdout
    r = inv("undrain", "--env", ENV, "--server", "lb2", check=True, timeout=300)
    r = inv("rollback", "--env", ENV, check=True, timeout=300)   # back before the undrain: drained again
    r = inv("deploy", "--env", ENV, check=True, timeout=300)     # the inventory's state
    for task in ("sync-start", "sync-stop", "sync-status"):   # no IPVS in the plain kernel: said, not failed
        r = inv(task, "--env", ENV)
        assert r.returncode == 0, (task, r.stdout, r.stderr)
        assert "no IPVS" in r.stdout + r.stderr, (task, r.stdout, r.stderr)
    rc, out = inv_json("verify", "--env", ENV)
    assert rc == 0, [c for c in out["checks"] if not c["ok"]]


def one_error(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (r.returncode, r.stderr)
    assert "Traceback" not in r.stdout + r.stderr
    return lines[0]


def fingerprint() -> list[str]:
    return [node_sh(n, "md5sum /etc/keepalived/keepalived.conf /etc/default/keepalived; "
                       "systemctl show -p MainPID --value keepalived nginx") for n in NODES]


def test_wrong_sudo_password_is_one_line_and_changes_nothing(bastion_deployed, tmp_path):
    bad = tmp_path / "wrong.sudo"
    bad.write_text("not-the-password\n")
    bad.chmod(0o600)
    p = variant(tmp_path, "wrong-sudo", lambda d: d["nodes"][2].update(ssh={"become_password_file": str(bad)}))
    before = fingerprint()
    line = one_error(inv("deploy", "--env", p, timeout=300))
    assert "lb3" in line and "sudo refused: wrong password" in line and "not-the-password" not in line
    assert fingerprint() == before


def test_bastion_down_is_one_line(bastion_deployed, tmp_path):
    p = variant(tmp_path, "no-bastion", lambda d: d["defaults"]["ssh"]["gateway"].update(host="10.189.0.31"))
    line = one_error(inv("verify", "--env", p, timeout=300))
    assert "bastion" in line and "10.189.0.31" in line


def test_unknown_bastion_key_is_one_line(bastion_deployed, tmp_path):
    known = (tmp_path / "known_hosts")
    src = open("/var/tmp/lbtk-lab/known_hosts").read().splitlines()
    known.write_text("\n".join(ln for ln in src if not ln.startswith("10.189.0.30 ")) + "\n")
    p = variant(tmp_path, "unknown-bastion-key",
                lambda d: d["defaults"]["ssh"]["gateway"].update(known_hosts=str(known)))
    line = one_error(inv("deploy", "--env", p, timeout=300))
    assert "host key of 10.189.0.30 unknown" in line or ("bastion" in line and "known_hosts" in line), line
