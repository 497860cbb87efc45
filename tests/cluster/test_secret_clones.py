"""Issue 24, secrets across clones: two clones (two copies of the inventories via LBTK_INVENTORIES)
with different secret files. The second clone's deploy is refused in one line naming both
fingerprints; with --rotation it goes through; then the first clone's deploy is refused until it
takes the new secret file, after which it deploys with nothing to do."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from fabfile.model.loading import inventory_dir
from fabfile.model.secrets import fingerprint, short

from .conftest import ROOT, inv, sh

RECORD = "/var/lib/lbtk/vrrp-secret.json"


def clone(where, secret: str | None):
    """A clone's inventories: the session's (the lab's secret as deployed), `secret` in its secret file."""
    shutil.copytree(inventory_dir(), where)
    f = where / "secrets" / "lab.auth_pass"
    if secret is not None:
        f.write_text(secret + "\n")
    f.chmod(0o600)
    return where


def run(where, *args):
    env = {k: v for k, v in os.environ.items() if k != "LAB_VRRP_PASS"}
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**env, "LBTK_FORMAT": "plain", "LBTK_INVENTORIES": str(where)})


def recorded(nodes) -> dict:
    return json.loads(sh(nodes["node1"], f"cat {RECORD}").stdout)["VI_1"]


def fp(secret: str, rec: dict) -> str:
    return short(fingerprint(secret, bytes.fromhex(rec["salt"])))


@pytest.fixture
def clones(tmp_path, deployed):
    one = clone(tmp_path / "one", None)                     # the cluster's secret, as deployed
    two = clone(tmp_path / "two", "tw0S3cr7")
    yield one, two
    inv("deploy", "--env", "lab", "--rotation", check=True)  # the project's own secret back on the nodes


def test_a_second_clones_secret_is_refused_until_rotation_and_then_the_first_catches_up(clones, nodes):
    one, two = clones
    first = (one / "secrets" / "lab.auth_pass").read_text().strip()
    assert run(one, "deploy", "--env", "lab").returncode == 0       # records the live secret if needed
    rec = recorded(nodes)

    r = run(two, "deploy", "--env", "lab")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert fp("tw0S3cr7", rec) in lines[0] and fp(first, rec) in lines[0] and "--rotation" in lines[0]
    assert "tw0S3cr7" not in r.stdout + r.stderr and first not in r.stdout + r.stderr
    assert recorded(nodes) == rec                                    # nothing changed

    assert run(two, "deploy", "--env", "lab", "--rotation").returncode == 0
    rec2 = recorded(nodes)
    assert rec2["fingerprint"] == fingerprint("tw0S3cr7", bytes.fromhex(rec2["salt"]))
    assert "no changes pending" in run(two, "deploy", "--env", "lab", "--check").stdout

    r = run(one, "deploy", "--env", "lab")
    assert r.returncode != 0 and fp(first, rec2) in r.stderr and fp("tw0S3cr7", rec2) in r.stderr
    assert f"set by run {rec2['run']}" in r.stderr
    shutil.copy2(two / "secrets" / "lab.auth_pass", one / "secrets" / "lab.auth_pass")
    r = run(one, "deploy", "--env", "lab")
    assert r.returncode == 0 and "no changes: nothing written" in r.stdout, r.stdout + r.stderr
