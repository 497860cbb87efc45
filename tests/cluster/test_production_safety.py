"""Issue 24 on the real lab nodes.

- A production inventory (the lab's, without its `lab:` sections: what the lab hook does not claim)
  gets no "kernel has no IPVS, VRRP-only" fallback: `inv deploy` is refused in one line naming the
  node and what `modprobe ip_vs` said, nothing changed; `inv verify` exits 1 with the IPVS rows
  failed. The lab inventory keeps its announced fallback.
- Every task that changes nodes (os-upgrade, failover-test, sync-start, sync-stop) is refused in one
  line while another run holds the deploy lock (held here with the real Lock over a node group);
  `os-upgrade --check` needs no lock.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, inv_json, sh

PROD = "prodlike"
HOLDER = "dave@ops-d"


def inv_in(where: Path, *args, timeout=300) -> subprocess.CompletedProcess:
    """The real CLI over the inventories in `where` ($LBTK_INVENTORIES)."""
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout,
                          env={**os.environ, "LBTK_FORMAT": "plain", "LBTK_INVENTORIES": str(where)})


@pytest.fixture
def production(tmp_path, deployed) -> Path:
    """inventories/lab.yaml as `prodlike` in a directory of its own: no `lab:` section, no node
    `lab:` keys, no generated secret (the lab's secret file copied, 0600); the same nodes and SSH
    settings (the lab's key and known_hosts under /var/tmp/lbtk-lab)."""
    from fabfile.model.loading import inventory_dir
    src = inventory_dir()
    data = yaml.safe_load((src / "lab.yaml").read_text())
    data.pop("lab")
    for n in data["nodes"]:
        n.pop("lab", None)
    for vi in data["vrrp_instances"]:
        (vi.get("authentication") or {}).pop("generate", None)
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    shutil.copyfile(src / "secrets" / "lab.auth_pass", secrets / "lab.auth_pass")
    os.chmod(secrets / "lab.auth_pass", 0o600)
    (tmp_path / f"{PROD}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path


def snapshot(nodes) -> dict[str, str]:
    """What a deploy would change or record, per node."""
    cmd = ("md5sum /etc/keepalived/keepalived.conf /etc/default/keepalived /etc/sysctl.d/* 2>&1; "
           "cat /var/lib/lbtk/history /var/lib/lbtk/lock 2>/dev/null; systemctl show -p MainPID --value keepalived")
    return {n: sh(c, cmd).stdout for n, c in nodes.items()}


def test_production_deploy_without_ipvs_fails_in_one_line_and_verify_fails_its_ipvs_rows(production, nodes):
    if sh(nodes["node1"], "[ -e /proc/net/ip_vs ] || { modprobe ip_vs && [ -e /proc/net/ip_vs ]; }").exited == 0:
        pytest.skip("this kernel has IPVS: the lab's nodes load balance, nothing to refuse")
    before = snapshot(nodes)
    r = inv_in(production, "deploy", "--env", PROD)
    err = r.stderr.strip()
    assert r.returncode == 2, f"{r.stdout[-2000:]}\n{err}"
    assert "\n" not in err and "Traceback" not in r.stdout + r.stderr
    assert re.match(r"error: node[123]: the kernel has no IPVS and `modprobe ip_vs` failed \(.+\)", err), err
    assert err.endswith("nothing was changed on any node")
    assert snapshot(nodes) == before

    r = inv_in(production, "verify", "--env", PROD, "--json")
    assert r.returncode == 1, f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    report = json.loads(r.stdout)
    rows = {(c["kind"], c["node"]): c for c in report["checks"] if c["kind"] in ("ipvs-table", "sync-daemon")}
    assert {n for _, n in rows} == set(nodes) and len(rows) == 2 * len(nodes)
    for row in rows.values():
        assert not row["ok"] and row["detail"].startswith("kernel has no IPVS: nothing is load balanced"), row

    rc, lab = inv_json("verify", "--env", "lab")     # the lab: its explicit, announced fallback
    assert rc == 0, lab
    for c in lab["checks"]:
        if c["kind"] in ("ipvs-table", "sync-daemon"):
            assert c["ok"] and c["detail"].startswith("lab: kernel has no IPVS"), c


@contextlib.contextmanager
def another_run_holds_the_lock(on=("node2",)):
    """The deploy lock held by another operator's run on these nodes, with the real Lock."""
    from fabfile.infra import remote, runinfo
    from fabfile.model.context import load_env
    from fabfile.ops import lock as runlock
    e = load_env("lab")
    info = runinfo.RunInfo(run="20261203T000000.000", operator=HOLDER, pid=os.getpid(), cwd=str(ROOT),
                           task="inv deploy --env lab", env="lab", since="2026-12-03T00:00:00+00:00",
                           commit="", dirty=False)
    with remote.nodes(e, list(on)) as group, runlock.Lock(group, info) as lock:
        assert lock.covers(on)
        yield


CHANGING = {
    # --release bookworm: were the lock not taken first, os-upgrade would find nothing to do and
    # exit 0, so this never swaps a node even on a build without the lock
    "os-upgrade": ("os-upgrade", "--env", "lab", "--node", "node3", "--release", "bookworm"),
    "failover-test": ("failover-test", "--env", "lab"),
    "sync-start": ("sync-start", "--env", "lab"),
    "sync-stop": ("sync-stop", "--env", "lab"),
}


@pytest.mark.parametrize("task", list(CHANGING))
def test_a_task_that_changes_nodes_is_refused_while_another_run_holds_the_lock(deployed, nodes, task):
    from .conftest import inv
    before = snapshot(nodes)
    with another_run_holds_the_lock():
        r = inv(*CHANGING[task], timeout=120)
        assert sh(nodes["node2"], "cat /var/lib/lbtk/lock").stdout.count(HOLDER) == 1   # still theirs
    err = r.stderr.strip()
    assert r.returncode == 2, f"{task}: exit {r.returncode}\n{r.stdout[-2000:]}\n{err}"
    assert "\n" not in err and err.startswith(f"error: node2: the deploy lock is held by {HOLDER}"), err
    assert "nothing was changed on any node" in err
    assert snapshot(nodes) == before
    assert sh(nodes["node1"], "cat /var/lib/lbtk/lock 2>/dev/null").stdout == ""     # it let go of what it took


def test_os_upgrade_check_needs_no_lock(deployed, nodes):
    from .conftest import inv
    with another_run_holds_the_lock(on=("node1", "node2", "node3")):
        r = inv("os-upgrade", "--env", "lab", "--node", "node3", "--release", "trixie", "--check", timeout=120)
    assert r.returncode == 0, f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert "node3: Debian bookworm -> trixie" in r.stdout and "--check: nothing is changed" in r.stdout
