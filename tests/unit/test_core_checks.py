"""Observation and checks: observe.parse_state on framed real output, the verify checks
(VIP holders, per-node checks, IPVS table, sync daemon, HTTP), verify.checks_of end to end and
the sync-status rows.

The inventory below describes the kernel-tier cluster the ipvsadm / ip / sysctl fixtures were
captured from (10.190.0.0/24, VIP 10.190.0.100, DR real servers .11 and .12), so the captured
tables are compared with an inventory they really belong to.
"""
from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from fabfile.infra import facts as F
from fabfile.core.checks import (NO_IPVS, Check, CheckKind, ipvs_rows, judge_ipvs, http_check, ipvs_check, node_checks, sync_check, vip_checks, vip_holders, wanted_ipvs)
from fabfile.model.context import Env
from fabfile.errors import FactError
from fabfile.infra.facts import NodeState
from fabfile.model.loading import parse
from fabfile.infra.observe import parse_state, script
from fabfile.parsers import ipvsadm
from fabfile.parsers.lbtk import LiveFile, frames_token
from fabfile.core.render import nginx
from fabfile.ops.sync_daemons import Row, status
from fabfile.ops.verify import Report, checks_of

from .core_fixtures import (DPKG_CAPTURE, FX, TOKEN, UNAME_CAPTURE, file_listing,
                            frame, read, units_output, verify_state)

VIP = "10.190.0.100"
HOSTS = {"node1": "10.190.0.11", "node2": "10.190.0.12", "node3": "10.190.0.13"}


def fx_data(**changes) -> dict:
    data = {
        "cluster": "fx",
        "defaults": {"interface": "eth0"},
        "nodes": [{"name": n, "host": h, "priority": p}
                  for (n, h), p in zip(HOSTS.items(), (100, 90, 80))],
        "vrrp_instances": [{"name": "VI_1", "virtual_router_id": 51, "virtual_ipaddress": [VIP]}],
        "virtual_servers": [{"vip": VIP, "port": 80, "lb_algo": "rr", "lb_kind": "DR", "director_fix": False,
                             "real_servers": [{"node": "node1"}, {"node": "node2"}]}],
        "sync_daemon": {"interface": "eth0", "syncid": 1},
    }
    data.update(changes)
    return data


LAB = {"bridge": "lbtk-br0", "gateway": "10.190.0.1/24"}     # the fixture cluster as a lab inventory


@pytest.fixture
def inv():
    return parse(fx_data(), "fx.yaml")


def sysctl_text(*fixtures: str, values: dict[str, str] | None = None) -> str:
    """Captured `sysctl KEY...` outputs, with some values changed or added in the same format."""
    lines = [ln for f in fixtures for ln in read(f"sysctl/{f}.txt").splitlines()]
    for key, value in (values or {}).items():
        lines = [ln for ln in lines if ln.split(" = ")[0] != key] + [f"{key} = {value}"]
    return "\n".join(lines) + "\n"


RIGHT_SYSCTL = sysctl_text("arp_set", "guest_director_vs", values={
    "net.ipv4.conf.eth0.rp_filter": "0", "net.ipv4.conf.lo.rp_filter": "0",
    "net.ipv4.vs.expire_nodest_conn": "1", "net.ipv4.vs.backup_only": "1"})
# node3 is no DR real server (no VIP on lo): its director stays on as a backup
NOT_RS_SYSCTL = sysctl_text("arp_set", "guest_director_vs", values={
    "net.ipv4.conf.eth0.rp_filter": "0", "net.ipv4.conf.lo.rp_filter": "0",
    "net.ipv4.vs.expire_nodest_conn": "1", "net.ipv4.vs.backup_only": "0"})


def director(node: str, *, holds: bool = False, lo: bool = True, sysctl: str | None = None,
             ipvs: str | None = "shared_q3_dir1_L_n", daemons: str | None = None, active=None) -> NodeState:
    """A director of the fixture cluster as `inv verify` reads it."""
    daemons = daemons or ("shared_q4_dir1_L_daemon" if holds else "shared_q4_dir2_L_daemon")
    sysctl = sysctl if sysctl is not None else (NOT_RS_SYSCTL if node == "node3" else RIGHT_SYSCTL)
    return verify_state(node, HOSTS[node], on_iface=(VIP,) if holds else (),
                        on_lo=(VIP,) if lo and node != "node3" else (), sysctl=sysctl, active=active,
                        ipvs=read(f"ipvsadm/{ipvs}.txt") if ipvs else None,
                        daemons=read(f"ipvsadm/{daemons}.txt"))


def healthy() -> dict[str, NodeState]:
    return {"node1": director("node1", holds=True), "node2": director("node2"), "node3": director("node3")}


def by_name(checks: list[Check]) -> dict[tuple[str, str], Check]:
    out = {(c.node, c.name): c for c in checks}
    assert len(out) == len(checks), "check rows are unique per node"
    return out


# ================================================================== observe.parse_state
def test_observe_script_framing_round_trips_real_output(tmp_path):
    """observe.script run by a real sh, with each fact's command replaced by printing a capture
    (and the real files() command on real files): the text it prints is exactly what
    core_fixtures.frame builds, and parse_state reads the captures back."""
    (tmp_path / "keepalived.conf").write_bytes(b"vrrp_instance VI_1 {\n    auth_pass s3cret\n}\n")
    (tmp_path / "keepalived.conf").chmod(0o600)
    (tmp_path / "lbtk-ipvs-sync").write_bytes(b"#!/bin/sh\nexit 0\n")
    (tmp_path / "lbtk-ipvs-sync").chmod(0o755)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "empty").chmod(0o644)
    paths = [str(tmp_path / "keepalived.conf"), str(tmp_path / "missing.conf"), str(tmp_path / "lbtk-ipvs-sync"),
             str(tmp_path / "empty")]

    def cat(fact, rel, err_rel=None, rc=0):
        cmd = f"cat {FX / rel}" + (f"; cat {FX / err_rel} >&2" if err_rel else "") + f"; (exit {rc})"
        return dataclasses.replace(fact, command=cmd)

    facts = [cat(F.ADDRS, "ip_addr/guest_director.txt"),
             cat(F.SYSCTLS, "sysctl/arp_set.txt"),
             cat(F.IPVS_TABLE, "ipvsadm/L_n.txt"),
             cat(F.SYNC_DAEMONS, "ipvsadm/L_daemon_master_backup.txt"),
             cat(F.IPVS_STATS, "ipvsadm/L_n_stats_exact.txt"),
             cat(F.SERVICES, "systemctl/show_deployed.txt"),
             F.files(paths)]
    # the capture predates the monitoring phase's units: captured not-found blocks for them follow it
    later = F.UNITS[len(read("systemctl/show_deployed.txt").split("\n\n")):]
    units = read("systemctl/show_deployed.txt") + "\n" + units_output(dict.fromkeys(later, "inactive"),
                                                                     dict.fromkeys(later, "not-found"), later)
    (tmp_path / "units.txt").write_text(units)
    facts[-2] = dataclasses.replace(F.SERVICES, command=f"cat {tmp_path / 'units.txt'}; (exit 0)")
    out = subprocess.run(["sh", "-c", script(facts)], capture_output=True, text=True, timeout=20).stdout
    token, out = frames_token(out)             # drawn on the node (tests/unit/test_frame_token.py)
    files = {paths[0]: LiveFile(0o600, b"vrrp_instance VI_1 {\n    auth_pass s3cret\n}\n"), paths[1]: None,
             paths[2]: LiveFile(0o755, b"#!/bin/sh\nexit 0\n"), paths[3]: LiveFile(0o644, b"")}
    # the files fact's tar carries times and owners: compare it parsed, everything else byte for byte
    files_out = out.split(f"@@{token} fact files\n", 1)[1].split(f"\n@@{token} stderr", 1)[0]
    out = out.replace(files_out, file_listing(files))
    assert out == frame({
        "addrs": (read("ip_addr/guest_director.txt"), "", 0),
        "sysctl": (read("sysctl/arp_set.txt"), "", 0),
        "ipvs": (read("ipvsadm/L_n.txt"), "", 0),
        "sync_daemons": (read("ipvsadm/L_daemon_master_backup.txt"), "", 0),
        "ipvs_stats": (read("ipvsadm/L_n_stats_exact.txt"), "", 0),
        "units": (units, "", 0),
        "files": (file_listing(files), "", 0),
    }, token)
    s = parse_state("node1", facts, out, token)
    assert [i.name for i in s.interfaces] == ["lo", "eth0", "eth1"]
    assert s.holds(VIP) and s.vips_on_lo == {"127.0.0.1", "::1"}
    assert s.sysctl["net.ipv4.conf.eth0.arp_announce"] == "2"
    assert len(s.ipvs.services) == 14 and s.ipvs.version == "1.2.1"
    assert [d.role for d in s.sync_daemons] == ["master", "backup"]
    assert s.ipvs_stats.exact and s.ipvs_stats.service("TCP 10.190.0.100:80").stats.conns == 301
    assert s.enabled == {u: "enabled" for u in F.UNITS} | dict.fromkeys(later, "not-found")
    assert s.active["rsyslog"] == "inactive"
    assert s.files == files


def test_parse_state_fills_every_node_state_field():
    paths = ["/etc/keepalived/keepalived.conf", "/etc/nginx/sites-enabled/default"]
    text = frame({
        "kernel": (UNAME_CAPTURE, "", 0),
        "release": (read("os_release/trixie.txt"), "", 0),
        "packages": (DPKG_CAPTURE, "", 0),
        "binaries": ("keepalived\nnginx\nipvsadm\niptables\n", "", 0),
        "has_ipvs": ("yes\n", "", 0),
        "addrs": (read("ip_addr/netns_all.txt"), "", 0),
        "sysctl": (read("sysctl/arp_set.txt") + read("sysctl/guest_director_vs.txt"), "", 0),
        "units": (units_output({"keepalived": "active", "nginx": "active", "lbtk-vip-lo": "active",
                                "lbtk-fwmark": "failed", "rsyslog": "inactive", "prometheus-node-exporter": "active",
                                "lbtk-publish-metrics.timer": "active"},
                               {"keepalived": "enabled", "nginx": "enabled", "lbtk-vip-lo": "enabled",
                                "lbtk-fwmark": "static", "rsyslog": "not-found", "prometheus-node-exporter": "enabled",
                                "lbtk-publish-metrics.timer": "enabled"}), "", 0),
        "ipvs": (read("ipvsadm/ka_L_n.txt"), "", 0),
        "sync_daemons": (read("ipvsadm/ka_L_daemon.txt"), "", 0),
        "ipvs_stats": (read("ipvsadm/L_n_stats_exact.txt"), "", 0),
        "pending": ("reload\tkeepalived\t\n", "", 0),
        "backups": ("@@backup 20240501T101500.123\n/etc/keepalived/keepalived.conf /etc/default/keepalived\n\n",
                    "", 0),
        "files": (file_listing({paths[0]: LiveFile(0o600, b"global_defs {}\n"), paths[1]: None}), "", 0),
        "ipvs_rate": (read("ipvsadm/L_n_rate.txt"), "", 0),
        "vrrp": (read("keepalived_json/healthy_node2.json"), "", 0),
        "changes": (read("keepalived_json/journal_split_node2.txt"), "", 0),
        "runtime": (read("lbtk_state/runtime.json"), "", 0),
        "lock": (read("lbtk_state/lock"), "", 0),
        "history": (read("lbtk_state/history"), "", 0),
        "nginx_defaults": (read("nginx_t/defaults_ok.txt"), "", 0),
        "digests": (read("genhash/healthz_all.txt"), "", 0),
        "script_files": ("ok /usr/local/sbin/site-health\n", "", 0),
        "config_tree": (file_listing({"/etc/keepalived/keepalived.conf": LiveFile(0o644, b"global_defs {}\n")}),
                        "", 0),
    })
    targets = [(f"10.189.0.1{k}", 80, "/healthz", 3) for k in (1, 2, 3)]
    s = parse_state("node2", [*F.ALL, F.files(paths), F.genhash(targets),
                              F.script_files(["/usr/local/sbin/site-health"]), F.config_tree()], text, TOKEN)
    assert (s.name, s.reachable, s.error) == ("node2", True, "")
    for f in dataclasses.fields(NodeState):
        if f.name not in ("name", "reachable", "error"):
            assert getattr(s, f.name) not in (None, {}, [], set()), f"{f.name} left empty"
    assert s.kernel == "6.18.44-fc-v669"
    assert s.packages["keepalived"] == "1:2.2.7-1+b2" and "nginx-core" not in s.packages   # `un`: not installed
    assert s.binaries == {"keepalived", "nginx", "ipvsadm", "iptables"} and s.has_ipvs is True
    assert s.holds("10.190.0.101") and "10.190.0.100" in s.vips_on_lo and s.holds("10.190.0.100")
    assert s.sysctl["net.ipv4.vs.sync_threshold"] == "3\t50"
    assert s.active == {"keepalived": "active", "nginx": "active", "lbtk-vip-lo": "active", "lbtk-fwmark": "failed",
                        "rsyslog": "inactive", "prometheus-node-exporter": "active", "lbtk-publish-metrics.timer": "active"}
    assert s.enabled == {"keepalived": "enabled", "nginx": "enabled", "lbtk-vip-lo": "enabled",
                         "lbtk-fwmark": "static", "rsyslog": "not-found", "prometheus-node-exporter": "enabled",
                         "lbtk-publish-metrics.timer": "enabled"}
    assert s.ipvs.keys() == ["TCP 10.190.0.101:80", "FWM 7"]
    assert s.sync_daemons[0].syncid == 9 and s.sync_daemons[0].role == "backup"
    assert s.pending == [("reload", "keepalived", "")]
    assert s.last_backup == ("20240501T101500.123", ["/etc/keepalived/keepalived.conf", "/etc/default/keepalived"])
    assert s.files == {paths[0]: LiveFile(0o600, b"global_defs {}\n"), paths[1]: None}
    assert s.nginx_installed and s.has("ipvsadm") and not s.has("nginx-core")


def test_parse_state_without_ipvs():
    mark = ipvsadm.NO_IPVS_MARK + "\n"
    s = parse_state("n", [F.IPVS_TABLE, F.SYNC_DAEMONS, F.IPVS_STATS, F.IPVS_AVAILABLE],
                    frame({"ipvs": (mark, "", 0), "sync_daemons": (mark, "", 0), "ipvs_stats": (mark, "", 0),
                           "has_ipvs": ("no\n", "", 0)}), TOKEN)
    assert (s.ipvs, s.sync_daemons, s.ipvs_stats, s.has_ipvs) == (None, [], None, False)
    # ipvsadm's own words on a kernel without IPVS (captured on this host) mean the same
    assert ipvsadm.parse_list_if_ipvs(read("ipvsadm/host_no_ipvs_L_n.stderr")) is None


def test_parse_state_refuses_truncated_missing_and_foreign_output():
    up = units_output({u: "active" for u in F.UNITS}, {u: "enabled" for u in F.UNITS})
    good = frame({"addrs": (read("ip_addr/netns_lo.txt"), "", 0), "units": (up, "", 0)})
    assert parse_state("n", [F.ADDRS, F.SERVICES], good, TOKEN).vips_on_lo == {"127.0.0.1", VIP, "::1"}
    cut = good[: good.index(f"@@{TOKEN} rc", good.index("fact units"))]
    with pytest.raises(FactError, match=r"^n: cannot read its facts: output ends inside fact 'units' \(truncated\?\)"):
        parse_state("n", [F.ADDRS, F.SERVICES], cut, TOKEN)
    with pytest.raises(FactError, match=r"^n: cannot read sysctl: no output for it \(truncated\?\)"):
        parse_state("n", [F.ADDRS, F.SYSCTLS], good, TOKEN)
    with pytest.raises(FactError, match="no fact frames in the output"):
        parse_state("n", [F.ADDRS], "Welcome to Ubuntu 22.04\n", TOKEN)
    with pytest.raises(FactError, match="no fact frames"):
        parse_state("n", [F.ADDRS], good, "0123456789ab")      # another run's token: not ours
    # a host without systemd (captured): the parser refuses, the error names the fact, one line
    no_systemd = frame({"units": ("", read("systemctl/show_host_no_systemd.stderr"), 1)})
    with pytest.raises(FactError) as e:
        parse_state("n", [F.SERVICES], no_systemd, TOKEN)
    assert e.value.fact.startswith("units (`systemctl show -p Id,LoadState,ActiveState,")
    assert "systemd not reachable: System has not been booted with systemd" in str(e.value)
    assert "\n" not in str(e.value)
    # ip's output for a missing device (captured: empty stdout) is refused, not read as "no VIPs"
    missing = frame({"addrs": (read("ip_addr/netns_missing_dev.txt"), read("ip_addr/netns_missing_dev.stderr"), 1)})
    with pytest.raises(FactError, match="empty output from ip -j addr"):
        parse_state("n", [F.ADDRS], missing, TOKEN)


# ================================================================== VIP checks
def test_one_holder_is_ok(inv):
    obs = healthy()
    assert vip_holders(inv, obs) == {VIP: ["node1"]}
    assert vip_checks(inv, obs) == [Check(f"VIP {VIP}", "cluster", True, "held by node1", CheckKind.VIP, VIP)]


def test_a_holder_other_than_the_planned_one_is_ok_but_said(inv):
    obs = {"node1": director("node1"), "node2": director("node2", holds=True), "node3": director("node3")}
    assert vip_checks(inv, obs) == [Check(f"VIP {VIP}", "cluster", True, "held by node2 (inventory prefers node1)", CheckKind.VIP, VIP)]


def test_no_holder_is_vip_down(inv):
    obs = {n: director(n) for n in HOSTS}
    assert all(VIP in o.vips_on_lo for n, o in obs.items() if n != "node3")   # lo does not count
    assert vip_checks(inv, obs) == [Check(f"VIP {VIP}", "cluster", False, "held by no node: VIP down", CheckKind.VIP, VIP)]


def test_two_holders_is_split_brain(inv):
    obs = {"node1": director("node1", holds=True), "node2": director("node2"), "node3": director("node3", holds=True)}
    assert vip_checks(inv, obs) == [Check(f"VIP {VIP}", "cluster", False, "SPLIT BRAIN: held by node1, node3", CheckKind.VIP, VIP)]


def test_an_unreachable_node_holds_nothing(inv):
    obs = {**healthy(), "node1": NodeState("node1", reachable=False, error="node1: ssh: timed out")}
    assert vip_holders(inv, obs) == {VIP: []}
    assert not vip_checks(inv, obs)[0].ok


def test_the_captured_netns_holds_its_vips_on_eth0_and_lo():
    s = verify_state("x", "10.190.0.2")
    assert not s.holds(VIP) and s.vips_on_lo == {"127.0.0.1", "::1"}
    raw = parse_state("x", [F.ADDRS], frame({"addrs": (read("ip_addr/netns_all.txt"), "", 0)}), TOKEN)
    assert raw.holds(VIP) and raw.holds("10.190.0.101") and VIP in raw.vips_on_lo
    assert not raw.holds("127.0.0.1")                        # lo is not "holding" in the VRRP sense


# ================================================================== node checks
def test_healthy_director_checks(inv):
    rows = node_checks(inv, "node1", director("node1", holds=True), is_master=True)
    assert [(c.name, c.ok) for c in rows] == [
        ("keepalived running", True), ("nginx running", True), ("ARP sysctls", True), ("VIP on lo", True),
        ("IPVS table", True), ("sync daemon", True)]
    d = {c.name: c.detail for c in rows}
    assert d["ARP sysctls"] == "11 values as wanted" and d["VIP on lo"] == VIP
    assert d["IPVS table"] == "1 service(s), 2 real server(s) as wanted"
    assert d["sync daemon"] == "master (mcast=eth0, syncid=1)"
    # node3 is no real server: no VIP on lo to check, no ARP keys, only the IPVS ones
    # (expire_nodest_conn, and backup_only stated 0)
    rows3 = {c.name: c for c in node_checks(inv, "node3", director("node3"), is_master=False)}
    assert "VIP on lo" not in rows3 and rows3["ARP sysctls"].detail == "2 values as wanted"


def test_unreachable_node_is_one_row(inv):
    err = "node2 (10.190.0.12): ssh connect failed: timed out"
    assert node_checks(inv, "node2", NodeState("node2", reachable=False, error=err)) == [
        Check("reachable", "node2", False, err, CheckKind.REACHABLE)]


def test_daemons_down(inv):
    rows = by_name(node_checks(inv, "node2", director("node2", active={"keepalived": "failed", "nginx": "inactive"})))
    assert rows["node2", "keepalived running"] == Check("keepalived running", "node2", False, "failed", CheckKind.SERVICE, "keepalived")
    assert rows["node2", "nginx running"] == Check("nginx running", "node2", False, "inactive", CheckKind.SERVICE, "nginx")
    starting = by_name(node_checks(inv, "node2", director("node2", active={"nginx": "activating"})))
    assert not starting["node2", "nginx running"].ok


def test_arp_sysctls_wrong(inv):
    """Kernel defaults (captured before the ARP file was applied) on a DR real server."""
    rows = by_name(node_checks(inv, "node1", director("node1", sysctl=sysctl_text("arp_defaults", "guest_director_vs"))))
    c = rows["node1", "ARP sysctls"]
    assert not c.ok
    wrong = c.detail.split("; ")
    assert "net.ipv4.conf.all.arp_ignore=0 (want 1)" in wrong
    assert "net.ipv4.conf.lo.arp_announce=0 (want 2)" in wrong
    assert "net.ipv4.conf.eth0.rp_filter=missing (want 0)" in wrong
    assert "net.ipv4.vs.expire_nodest_conn=0 (want 1)" in wrong
    assert "net.ipv4.vs.backup_only=missing (want 1)" in wrong
    assert "net.ipv4.conf.all.rp_filter=0 (want 0)" not in c.detail
    assert len(wrong) == 10          # 6 ARP values at 0, 2 rp_filter missing, 2 vs.*
    # the real-server capture: lo left at 0
    lo_wrong = by_name(node_checks(inv, "node1", director("node1", sysctl=sysctl_text(
        "guest_realserver_arp", "guest_director_vs", values={
            "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.eth0.rp_filter": "0", "net.ipv4.conf.lo.rp_filter": "0",
            "net.ipv4.vs.expire_nodest_conn": "1", "net.ipv4.vs.backup_only": "1"}))))["node1", "ARP sysctls"]
    assert lo_wrong.detail == "net.ipv4.conf.lo.arp_ignore=0 (want 1); net.ipv4.conf.lo.arp_announce=0 (want 2)"


def test_without_ipvs_the_vs_sysctls_are_not_wanted():
    lab = parse(fx_data(lab=LAB), "fx.yaml")      # the lab: no IPVS is its announced fallback
    no_vs = sysctl_text("arp_set", values={"net.ipv4.conf.eth0.rp_filter": "0", "net.ipv4.conf.lo.rp_filter": "0"})
    rows = by_name(node_checks(lab, "node1", director("node1", holds=True, ipvs=None, sysctl=no_vs), is_master=True))
    assert rows["node1", "ARP sysctls"] == Check("ARP sysctls", "node1", True, "9 values as wanted", CheckKind.ARP_SYSCTLS)
    assert rows["node1", "IPVS table"].ok and rows["node1", "IPVS table"].detail.startswith(f"lab: {NO_IPVS}")
    assert rows["node1", "sync daemon"] == Check("sync daemon", "node1", True, f"lab: {NO_IPVS}: no connection sync",
                                                 CheckKind.SYNC_DAEMON)


def test_vip_on_lo_missing(inv):
    rows = by_name(node_checks(inv, "node2", director("node2", lo=False)))
    assert rows["node2", "VIP on lo"] == Check("VIP on lo", "node2", False, f"missing {VIP}", CheckKind.VIP_ON_LO)


# ================================================================== IPVS table
def test_wanted_ipvs_uses_ipvsadm_keys(inv):
    assert wanted_ipvs(inv) == {f"TCP {VIP}:80": {"10.190.0.11:80": 1, "10.190.0.12:80": 1}}


def test_ipvs_as_wanted(inv):
    assert ipvs_check(inv, "node1", director("node1")) == Check(
        "IPVS table", "node1", True, "1 service(s), 2 real server(s) as wanted", CheckKind.IPVS_TABLE)


def test_ipvs_service_missing(inv):
    c = ipvs_check(inv, "node1", director("node1", ipvs="L_n_empty"))
    assert c == Check("IPVS table", "node1", False, f"TCP {VIP}:80 missing", CheckKind.IPVS_TABLE)


def test_ipvs_real_servers_missing(inv):
    """shared_q2: keepalived's health checks had removed every real server."""
    c = ipvs_check(inv, "node1", director("node1", ipvs="shared_q2_ipvsadm_L_n"))
    assert not c.ok
    assert c.detail == (f"TCP {VIP}:80 -> 10.190.0.11:80 not in pool (health check failing?); "
                        f"TCP {VIP}:80 -> 10.190.0.12:80 not in pool (health check failing?)")


def test_ipvs_weight_differs():
    data = fx_data()
    data["virtual_servers"][0]["real_servers"][0]["weight"] = 2
    c = ipvs_check(parse(data), "node1", director("node1"))
    assert c == Check("IPVS table", "node1", False, f"TCP {VIP}:80 -> 10.190.0.11:80 weight 1 (want 2)",
                      CheckKind.IPVS_TABLE)


def test_ipvs_extra_services(inv):
    """L_n: the kernel-tier table with 14 services; the inventory wants only TCP VIP:80."""
    s = director("node1", ipvs="L_n")
    c = ipvs_check(inv, "node1", s)
    assert not c.ok
    extra = [k for k in s.ipvs.keys() if k != f"TCP {VIP}:80"]
    assert len(extra) == 13 and "FWM 2 IPv6" in extra and "TCP [fd00:190::100]:80" in extra
    assert c.detail == "; ".join(f"{k} not in inventory" for k in extra)


def test_ipvs_wrr_and_fwmark_services():
    """ka_L_n (a table keepalived loaded): a persistent wrr service and fwmark 7, real servers port 0."""
    data = fx_data(vrrp_instances=[{"name": "VI_1", "virtual_router_id": 51, "virtual_ipaddress": [VIP, "10.190.0.101"]}],
                   virtual_servers=[
        {"vip": "10.190.0.101", "port": 80, "lb_algo": "wrr", "lb_kind": "DR", "persistence_timeout": 60,
         "persistence_granularity": "255.255.255.0",
         "real_servers": [{"address": "10.190.0.11", "weight": 3}, {"address": "10.190.0.12", "weight": 2}]},
        {"fwmark": 7, "port": 80, "real_servers": [{"address": "10.190.0.11"}]}])
    inv = parse(data)
    assert wanted_ipvs(inv) == {"TCP 10.190.0.101:80": {"10.190.0.11:80": 3, "10.190.0.12:80": 2},
                                "FWM 7": {"10.190.0.11:0": 1}}
    assert ipvs_check(inv, "node1", director("node1", ipvs="ka_L_n")).detail == "2 service(s), 3 real server(s) as wanted"
    one = ipvs_check(inv, "node1", director("node1", ipvs="L_n_one_service"))
    assert one.detail == ("TCP 10.190.0.101:80 missing; FWM 7 missing; TCP 10.190.0.100:82 not in inventory")


def test_ipvs_wrr_weights_from_the_one_service_listing():
    data = fx_data(virtual_servers=[{"vip": VIP, "port": 82, "lb_algo": "wrr", "lb_kind": "DR", "director_fix": False,
                                     "real_servers": [{"node": "node1", "weight": 3}, {"node": "node2", "weight": 2},
                                                      {"node": "node3", "weight": 1}]}])
    assert ipvs_check(parse(data), "node1", director("node1", ipvs="L_n_one_service")).ok
    data["virtual_servers"][0]["real_servers"][2]["weight"] = 5
    assert ipvs_check(parse(data), "node1", director("node1", ipvs="L_n_one_service")).detail == (
        f"TCP {VIP}:82 -> 10.190.0.13:82 weight 1 (want 5)")


def test_no_ipvs_in_the_lab_is_its_announced_fallback():
    lab = parse(fx_data(lab=LAB), "fx.yaml")
    assert ipvs_check(lab, "node1", director("node1", ipvs=None)) == Check(
        "IPVS table", "node1", True, "lab: kernel has no IPVS: keepalived runs VRRP-only", CheckKind.IPVS_TABLE)
    assert sync_check(lab, "node1", director("node1", ipvs=None), is_master=True) == Check(
        "sync daemon", "node1", True, "lab: kernel has no IPVS: no connection sync", CheckKind.SYNC_DAEMON)
    assert [(r["ok"], r["problem"]) for r in ipvs_rows(lab, {"node1": director("node1", ipvs=None)})] == [
        (True, "lab: kernel has no IPVS: keepalived runs VRRP-only")]


def test_no_ipvs_outside_the_lab_fails_the_ipvs_and_sync_rows(inv):
    """Production: a director without IPVS load balances nothing; verify must not say ok."""
    o = director("node1", ipvs=None)
    table, sync = ipvs_check(inv, "node1", o), sync_check(inv, "node1", o, is_master=True)
    assert (table.ok, table.kind, sync.ok, sync.kind) == (False, CheckKind.IPVS_TABLE, False, CheckKind.SYNC_DAEMON)
    assert table.detail.startswith("kernel has no IPVS: nothing is load balanced") and "modprobe ip_vs" in table.detail
    assert "lab" not in table.detail and sync.detail == table.detail
    assert [r["ok"] for r in ipvs_rows(inv, {"node1": o})] == [False]
    assert not all(c.ok for c in node_checks(inv, "node1", o, is_master=True))


# ================================================================== sync daemon
def test_sync_master_on_the_vip_holder_backup_elsewhere(inv):
    master = director("node1", holds=True)
    backup = director("node2")
    assert sync_check(inv, "node1", master, is_master=True) == Check(
        "sync daemon", "node1", True, "master (mcast=eth0, syncid=1)", CheckKind.SYNC_DAEMON)
    assert sync_check(inv, "node2", backup, is_master=False) == Check(
        "sync daemon", "node2", True, "backup (mcast=eth0, syncid=1)", CheckKind.SYNC_DAEMON)
    # roles swapped (a failover the daemons did not follow)
    assert sync_check(inv, "node1", master, is_master=False).detail == "master (mcast=eth0, syncid=1) — want backup"
    assert sync_check(inv, "node2", backup, is_master=True).detail == "backup (mcast=eth0, syncid=1) — want master"


def test_sync_none_running_or_another_syncid(inv):
    none = director("node2", daemons="L_daemon_none")
    assert sync_check(inv, "node2", none, is_master=False) == Check(
        "sync daemon", "node2", False, "not running — want backup", CheckKind.SYNC_DAEMON)
    other = director("node1", holds=True, daemons="L_daemon_master_backup")     # syncid 5
    c = sync_check(inv, "node1", other, is_master=True)
    assert not c.ok and c.detail.endswith("— want master") and "syncid=5" in c.detail


# ================================================================== HTTP
def _page(inv_, node: str) -> str:
    return next(f.content for f in nginx.files(inv_, inv_.node(node)) if f.path == nginx.PAGE)


def test_http_answer_names_the_node(inv):
    names = list(HOSTS)
    assert http_check(VIP, 80, _page(inv, "node2"), None, names) == Check(
        f"HTTP {VIP}:80", "cluster", True, "answered by node2", CheckKind.HTTP, VIP)


def test_http_error_and_foreign_answer():
    names = list(HOSTS)
    err = f"GET http://{VIP}:80/ failed: [Errno 111] Connection refused"
    assert http_check(VIP, 80, None, err, names) == Check(f"HTTP {VIP}:80", "cluster", False, err, CheckKind.HTTP, VIP)
    debian = "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>"
    c = http_check(VIP, 80, debian, None, names)
    assert not c.ok and c.detail == "answer names no node: '<!DOCTYPE html>\\n<html>\\n<head>\\n<title>Welcome to nginx!</titl'"


def test_http_answer_is_credited_to_the_right_node_when_one_name_contains_another():
    nodes = [{"name": f"lb{i}", "host": f"10.190.0.{10 + i}", "priority": 100 - i} for i in (1, 2, 10)]
    inv = parse(fx_data(nodes=nodes, virtual_servers=[], sync_daemon=None))
    c = http_check(VIP, 80, _page(inv, "lb10"), None, ["lb1", "lb2", "lb10"])
    assert c.detail == "answered by lb10"


# ================================================================== verify.checks_of end to end
def test_checks_of_a_healthy_cluster(inv):
    obs = healthy()
    holders = vip_holders(inv, obs)
    checks = checks_of(inv, obs, holders)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert [(c.node, c.name) for c in checks] == [
        ("cluster", f"VIP {VIP}"),
        *[("node1", n) for n in ("keepalived running", "nginx running", "ARP sysctls", "VIP on lo", "IPVS table", "sync daemon")],
        *[("node2", n) for n in ("keepalived running", "nginx running", "ARP sysctls", "VIP on lo", "IPVS table", "sync daemon")],
        *[("node3", n) for n in ("keepalived running", "nginx running", "ARP sysctls", "IPVS table", "sync daemon")]]
    report = Report(checks, holders, obs)
    assert report.ok and report.as_json()["vip_holders"] == {VIP: ["node1"]}


def test_checks_of_reads_the_sync_role_from_the_holders(inv):
    """After a failover node2 holds the VIP but still runs the backup daemon (shared_q4 dir2)."""
    obs = {"node1": director("node1"), "node2": director("node2", holds=True, daemons="shared_q4_dir2_L_daemon"),
           "node3": NodeState("node3", reachable=False, error="node3: ssh: no route to host")}
    holders = vip_holders(inv, obs)
    assert holders == {VIP: ["node2"]}
    failing = {(c.node, c.name): c.detail for c in checks_of(inv, obs, holders) if not c.ok}
    assert failing == {("node2", "sync daemon"): "backup (mcast=eth0, syncid=1) — want master",
                       ("node3", "reachable"): "node3: ssh: no route to host"}
    vip_row = checks_of(inv, obs, holders)[0]
    assert vip_row.ok and vip_row.detail == "held by node2 (inventory prefers node1)"
    assert not Report(checks_of(inv, obs, holders), holders, obs).ok


def test_checks_of_split_brain_wants_master_daemons_on_both(inv):
    obs = {"node1": director("node1", holds=True),
           "node2": director("node2", holds=True, daemons="shared_q4_dir2_L_daemon"), "node3": director("node3")}
    checks = by_name(checks_of(inv, obs, vip_holders(inv, obs)))
    assert checks["cluster", f"VIP {VIP}"].detail == "SPLIT BRAIN: held by node1, node2"
    assert checks["node1", "sync daemon"].ok
    assert checks["node2", "sync daemon"].detail == "backup (mcast=eth0, syncid=1) — want master"
    assert checks["node3", "sync daemon"].ok


# ================================================================== sync-status rows
def test_sync_status_rows():
    e = Env(inv=parse(fx_data()), path=Path("fx.yaml"), secrets={}, name="fx")
    obs = {"node1": director("node1", holds=True), "node2": director("node2"),
           "node3": NodeState("node3", reachable=False, error="node3: ssh: timed out")}
    holds = {n: o.holds(VIP) for n, o in obs.items()}
    assert status(e, obs, holds) == [
        Row("node1", "MASTER", "master", "master (mcast=eth0, syncid=1, group=224.0.0.81:8848)", True),
        Row("node2", "BACKUP", "backup", "backup (mcast=eth0, syncid=1, group=224.0.0.81:8848)", True),
        Row("node3", "?", "backup", "node3: ssh: timed out", False)]


def test_sync_status_wrong_role_none_running_and_no_ipvs():
    e = Env(inv=parse(fx_data()), path=Path("fx.yaml"), secrets={}, name="fx")
    obs = {"node1": director("node1", holds=True, daemons="shared_q4_dir2_L_daemon"),
           "node2": director("node2", daemons="L_daemon_none"),
           "node3": director("node3", ipvs=None)}
    rows = status(e, obs, {n: o.holds(VIP) for n, o in obs.items()})
    assert rows[:2] == [
        Row("node1", "MASTER", "master", "backup (mcast=eth0, syncid=1, group=224.0.0.81:8848)", False),
        Row("node2", "BACKUP", "backup", "none", False)]
    assert (rows[2].want, rows[2].ok) == ("-", False) and rows[2].running.startswith("kernel has no IPVS")
    assert rows[0].as_dict()["want"] == "master"
    lab = Env(inv=parse(fx_data(lab=LAB)), path=Path("fx.yaml"), secrets={}, name="fx")
    assert status(lab, obs, {n: o.holds(VIP) for n, o in obs.items()})[2] == Row(
        "node3", "BACKUP", "-", "lab: kernel has no IPVS: no connection sync on this node", True)


@pytest.mark.parametrize("shell", ["sh", "bash"])      # sh is dash: what `sudo sh -c` runs
def test_the_state_file_facts_read_files_with_builtins_as_cat_would(tmp_path, shell):
    """RUNTIME, OWED and LOCK read the toolkit's small state files with shell builtins (no fork):
    the bytes come out as cat prints them (backslashes, blanks, empty lines kept; a missing last
    newline added), and a missing file prints nothing and succeeds."""
    text = '{"drained": ["10.189.0.12:80"], "by": "ops \\\\ on-call"}\n  indented\tline \\n\n\nlast'
    state = tmp_path / "state"
    state.write_text(text)
    for fact, path in ((F.RUNTIME, F.RUNTIME_PATH), (F.OWED, F.PENDING), (F.LOCK, F.LOCK_PATH)):
        assert "cat" not in fact.command.split()
        r = subprocess.run([shell, "-c", fact.command.replace(path, str(state))], capture_output=True,
                           text=True, timeout=10)
        assert (r.stdout, r.returncode) == (text + "\n", 0)
        r = subprocess.run([shell, "-c", fact.command.replace(path, str(tmp_path / "missing"))],
                           capture_output=True, text=True, timeout=10)
        assert (r.stdout, r.stderr, r.returncode) == ("", "", 0)


# ================================================================== the IPVS table, judged once
def test_a_real_server_the_inventory_does_not_want_is_red_in_verify_and_in_the_table():
    """issue 23: verify's check and `inv ipvs` judged the table apart, and disagreed: a real server in
    the pool that the inventory does not list was red in the table and green in verify."""
    data = fx_data()
    data["virtual_servers"][0]["real_servers"] = [{"node": "node1"}]
    one = parse(data)
    s = director("node1")
    c = ipvs_check(one, "node1", s)
    assert (c.ok, c.detail) == (False, f"TCP {VIP}:80 -> 10.190.0.12:80 not in inventory")
    rows = {r["real_server"]: r for r in ipvs_rows(one, {"node1": s})}
    assert rows["10.190.0.12:80"]["problem"] == "real server not in the inventory" and not rows["10.190.0.12:80"]["ok"]
    assert rows["10.190.0.11:80"]["ok"]


@pytest.mark.parametrize("table", ["shared_q3_dir1_L_n", "shared_q2_ipvsadm_L_n", "L_n_empty", "L_n", "ka_L_n",
                                   "L_n_one_service", None])
def test_verify_and_the_ipvs_table_say_the_same_judgment(inv, table):
    s = director("node1", ipvs=table)
    rows = ipvs_rows(inv, {"node1": s})
    check = ipvs_check(inv, "node1", s)
    assert check.ok == all(r["ok"] for r in rows)
    entries = judge_ipvs(wanted_ipvs(inv), s.ipvs) if s.ipvs else []
    assert [e.row_problem for e in entries] == [r["problem"] for r in rows if r["service"]]
    problems = {e.check_problem for e in entries if e.check_problem}
    if s.ipvs is None:       # no table to judge: the kernel's lack is the one problem, said alike
        assert rows[0]["problem"] == check.detail
    else:
        assert (set() if check.ok else set(check.detail.split("; "))) == problems


def test_every_node_and_cluster_check_has_a_kind(inv):
    obs = healthy()
    checks = vip_checks(inv, obs) + [c for n in obs for c in node_checks(inv, n, obs[n])]
    assert all(c.kind is not CheckKind.OTHER for c in checks)
    assert {c.kind for c in checks} >= {CheckKind.VIP, CheckKind.SERVICE, CheckKind.IPVS_TABLE, CheckKind.SYNC_DAEMON}
    vip = next(c for c in checks if c.kind is CheckKind.VIP)
    assert vip.subject == VIP and vip.as_dict()["kind"] == "vip"
