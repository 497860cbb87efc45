"""Issue 3 acceptance, against the real lab: deploy, idempotence, verify JSON, failover by hand."""
from __future__ import annotations

import time

from .conftest import inv, inv_json, sh

VIP = "10.189.0.100"


def main_pids(nodes):
    return {n: sh(c, "systemctl show -p MainPID --value keepalived nginx").stdout.split()
            for n, c in nodes.items()}


def test_first_deploy_ends_green(deployed):
    assert "FAILED" not in deployed.stdout
    # a fresh lab gets everything and waits for VRRP; a lab left deployed gets nothing
    assert "VRRP settled in" in deployed.stdout or "no changes: nothing written" in deployed.stdout


def test_verify_json_vip_on_node1(deployed):
    rc, report = inv_json("verify", "--env", "lab")
    assert rc == 0, report
    assert report["ok"] is True
    assert report["vip_holders"] == {VIP: ["node1"]}
    names = {c["name"] for c in report["checks"]}
    assert {f"VIP {VIP}", "keepalived running", "nginx running", "ARP sysctls", "VIP on lo",
            f"HTTP {VIP}:80"} <= names
    http = next(c for c in report["checks"] if c["name"] == f"HTTP {VIP}:80")
    assert http["detail"] == "answered by node1"


def test_second_deploy_changes_and_restarts_nothing(deployed, nodes):
    before = main_pids(nodes)
    r = inv("deploy", "--env", "lab", check=True)
    assert "no changes: nothing written, nothing restarted" in r.stdout
    assert main_pids(nodes) == before


def test_check_shows_diff_and_touches_nothing(deployed, nodes):
    conf = "/etc/nginx/sites-enabled/lbtk.conf"
    sh(nodes["node2"], f"sed -i 's/index index.html;/index index.htm;/' {conf}")
    try:
        before = sh(nodes["node2"], f"md5sum {conf}").stdout
        r = inv("nginx", "--env", "lab", "--check", check=True)
        assert "-    index index.htm;" in r.stdout and "+    index index.html;" in r.stdout
        assert f"node2:{conf} (live)" in r.stdout
        assert sh(nodes["node2"], f"md5sum {conf}").stdout == before
    finally:
        r = inv("nginx", "--env", "lab", check=True)
    assert "node2" in r.stdout and "changed" in r.stdout
    assert "no changes pending" in inv("deploy", "--env", "lab", "--check", check=True).stdout


def test_secret_is_never_printed(deployed):
    from fabfile.model.loading import load
    from fabfile.model.secrets import resolve_all
    invy, _ = load("lab")
    secret = resolve_all(invy, "lab")["VI_1"]
    outs = [inv("render", "--env", "lab"), inv("deploy", "--env", "lab", "--check"),
            inv("verify", "--env", "lab", "--json")]
    for r in outs:
        assert secret not in r.stdout + r.stderr


def test_stop_keepalived_on_node1_moves_vip_to_node2(deployed, nodes):
    try:
        sh(nodes["node1"], "systemctl stop keepalived")
        deadline = time.monotonic() + 10
        while True:
            rc, report = inv_json("verify", "--env", "lab", "--no-http")
            if report["vip_holders"][VIP] == ["node2"] or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert report["vip_holders"] == {VIP: ["node2"]}
        assert rc != 0  # keepalived down on node1 is a failed check
        bad = [c for c in report["checks"] if not c["ok"]]
        assert [(c["name"], c["node"]) for c in bad] == [("keepalived running", "node1")]
    finally:
        sh(nodes["node1"], "systemctl start keepalived")
    deadline = time.monotonic() + 15
    while inv_json("verify", "--env", "lab")[1]["vip_holders"][VIP] != ["node1"]:
        assert time.monotonic() < deadline, "VIP did not come back to node1"
        time.sleep(0.3)
    rc, report = inv_json("verify", "--env", "lab")
    assert rc == 0 and report["ok"]


def test_render_live_is_byte_for_byte_what_deploy_shipped(deployed, nodes, tmp_path):
    """`inv render --live` reads the facts rendering depends on (no IPVS in the plain lab's
    kernel: DAEMON_ARGS --vrrp, no net.ipv4.vs.*) and prints exactly what deploy shipped."""
    r = inv("render", "--env", "lab", "--live", "--out", str(tmp_path), check=True)
    assert "ipvs=no" in r.stdout and "read from the node" in r.stdout
    compared = 0
    for node, conn in nodes.items():
        for f in sorted((tmp_path / node).rglob("*")):
            if not f.is_file():
                continue
            path = "/" + str(f.relative_to(tmp_path / node))
            live = sh(conn, f"base64 -w0 < {path}").stdout
            import base64
            assert base64.b64decode(live) == f.read_bytes(), f"{node}:{path} differs from render --live"
            assert oct(f.stat().st_mode & 0o777) == "0o" + sh(conn, f"stat -c %a {path}").stdout.strip(), path
            compared += 1
    assert compared >= 3 * 5
    # without --live the render says what it assumed, and that differs from these nodes
    r = inv("render", "--env", "lab", "--node", "node1", check=True)
    assert "ipvs=yes" in r.stdout and "assumed" in r.stdout
    assert 'DAEMON_ARGS="--vrrp"' not in r.stdout
