"""scripts: on the lab (issue 26): a script the inventory ships lands on every node root's, mode 0755,
keepalived runs it (the track script's marker appears, no "Disabling track script"), and the plain
lab deployed again removes it (lbtk's record says it shipped it). A script declared present that a
node lacks stops the deploy before anything changes, in one line naming the node and the path."""
from __future__ import annotations

import time

import pytest

from .conftest import inv, lab_variant, sh

ENV = "lab-scripts-test"
SCRIPT = "/etc/keepalived/scripts/cluster_check.sh"
MARKER = "/run/keepalived-cluster-check-ran"
ABSENT = "/usr/local/sbin/no-such-site-health"


def _ship(data):
    data["scripts"] = {SCRIPT: {"content": f"#!/bin/sh\ndate +%s > {MARKER}\nexit 0\n"}}
    data["vrrp_scripts"] = {"chk_cluster": {"script": SCRIPT, "interval": 1}}
    for vi in data["vrrp_instances"]:
        vi["track_script"] = ["chk_cluster"]


def _declare_absent(data):
    data["scripts"] = {ABSENT: {"present": True}}
    data["vrrp_scripts"] = {"chk_site": {"script": ABSENT, "interval": 2}}
    for vi in data["vrrp_instances"]:
        vi["track_script"] = ["chk_site"]


@pytest.fixture
def shipped_env(deployed):
    with lab_variant(ENV, _ship) as env:
        yield env


def test_deploy_ships_a_script_root_0755_keepalived_runs_it_and_a_redeploy_removes_it(shipped_env, nodes):
    r = inv("deploy", "--env", shipped_env, "--check")
    assert SCRIPT in r.stdout, r.stdout                  # the diff shows the new file
    inv("deploy", "--env", shipped_env, check=True)
    for n, c in nodes.items():
        assert sh(c, f"stat -c '%a %U %G' {SCRIPT}").stdout.split() == ["755", "root", "root"], n
        assert sh(c, f"stat -c '%a %U' /etc/keepalived/scripts").stdout.split() == ["755", "root"], n
    deadline = time.monotonic() + 10
    for n, c in nodes.items():
        sh(c, f"rm -f {MARKER}")
    for n, c in nodes.items():
        while sh(c, f"test -s {MARKER}").exited != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sh(c, f"test -s {MARKER}").exited == 0, f"{n}: keepalived did not run {SCRIPT}"
        log = sh(c, "journalctl -u keepalived -n 200 --no-pager -o cat").stdout
        assert "Disabling track script chk_cluster" not in log, n
    assert inv("verify", "--env", shipped_env).returncode == 0
    assert "no changes: nothing written" in inv("deploy", "--env", shipped_env).stdout   # idempotent

    inv("deploy", "--env", "lab", check=True)            # the plain lab: the script is no longer named
    for n, c in nodes.items():
        assert sh(c, f"test -e {SCRIPT}").exited != 0, f"{n}: {SCRIPT} was left behind"
        assert sh(c, "test -e /var/lib/lbtk/shipped-scripts").exited != 0, n


def test_a_declared_present_script_a_node_lacks_stops_the_deploy_in_one_line(deployed, nodes):
    with lab_variant(ENV + "-absent", _declare_absent) as env:
        r = inv("deploy", "--env", env)
        assert r.returncode != 0
        lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ABSENT in ln]
        assert len(lines) == 1 and any(f"{n}: {ABSENT} is missing" in lines[0] for n in nodes), r.stdout + r.stderr
        assert "Traceback" not in r.stdout + r.stderr
        for n, c in nodes.items():
            assert "chk_site" not in sh(c, "cat /etc/keepalived/keepalived.conf").stdout, n
