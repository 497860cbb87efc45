"""The parsers, on output captured from the real tools only (tests/fixtures/<tool>/).

Nothing here is typed by hand: every input is a file written by scripts/capture-fixtures/
(ipvsadm in the kernel-tier VM with IPVS, keepalived -t / ip / sysctl in network namespaces,
systemctl in a booted systemd-nspawn container). `test_every_fixture_is_covered` makes sure each
captured file is claimed by a parser below.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from fabfile.parsers import ParseError, split_host_port
from fabfile.parsers import ip_addr, ipvsadm, keepalived_t, sysctl, systemctl, systemctl_show

FX = Path(__file__).resolve().parents[1] / "fixtures"
VIP = "10.190.0.100"


def read(rel: str) -> str:
    return (FX / rel).read_text()


def rc(rel: str) -> int:
    """A fixture's exit code: NAME.rc, or 0 when the capture script wrote none."""
    p = FX / rel
    return int(p.read_text()) if p.exists() else 0


# ------------------------------------------------------------------ coverage of the fixtures
IPVSADM = {  # fixture -> the parser that must accept it
    "L_n": ipvsadm.parse_list, "L_n_empty": ipvsadm.parse_list, "L_n_one_service": ipvsadm.parse_list,
    "L_n_rules_only": ipvsadm.parse_list, "ka_L_n": ipvsadm.parse_list,
    "shared_q2_ipvsadm_L_n": ipvsadm.parse_list, "shared_q3_dir1_L_n": ipvsadm.parse_list,
    "S_n": ipvsadm.parse_save, "S_n_empty": ipvsadm.parse_save, "ka_S_n": ipvsadm.parse_save,
    "L_n_stats": ipvsadm.parse_stats, "L_n_stats_exact": ipvsadm.parse_stats,
    "L_n_stats_empty": ipvsadm.parse_stats, "shared_q3_dir1_L_n_stats": ipvsadm.parse_stats,
    "L_n_rate": ipvsadm.parse_rate,
    "L_n_c": ipvsadm.parse_connections, "L_n_c_empty": ipvsadm.parse_connections,
    "L_daemon_none": ipvsadm.parse_daemons, "L_daemon_master": ipvsadm.parse_daemons,
    "L_daemon_master_backup": ipvsadm.parse_daemons, "ka_L_daemon": ipvsadm.parse_daemons,
    "ka_L_daemon_after_master": ipvsadm.parse_daemons, "shared_q4_dir1_L_daemon": ipvsadm.parse_daemons,
    "shared_q4_dir2_L_daemon": ipvsadm.parse_daemons,
}
IPVSADM_REJECTED = {"L_n_thresholds", "L_n_persistent_conn"}   # other column sets: ParseError
IPVSADM_STDERR_ONLY = {"host_no_ipvs_L_n"}                      # stdout empty, the message on stderr


def test_every_fixture_is_covered():
    claimed = {f"ipvsadm/{n}.txt" for n in set(IPVSADM) | IPVSADM_REJECTED | IPVSADM_STDERR_ONLY}
    claimed |= {f"keepalived_t/{p.stem}.txt" for p in (FX / "keepalived_t").glob("*.rc")}
    claimed |= {f"ip_addr/{n}.txt" for n in IP_ADDR}
    claimed |= {f"sysctl/{n}.txt" for n in SYSCTL}
    claimed |= {f"systemctl/{n}.txt" for n in SYSTEMCTL + SHOW}
    claimed |= {f"keepalived_json/{n}" for n in KEEPALIVED_JSON}
    claimed |= {f"genhash/{n}.txt" for n in GENHASH}
    claimed |= {f"nginx_t/{n}.txt" for n in NGINX_T}
    claimed |= {f"os_release/{r}.txt" for r in ("bookworm", "trixie")}   # tests/unit/test_upgrade.py
    claimed |= {"lbtk/files_tar.txt"}                 # test_files_fact_as_a_lab_node_printed_it
    claimed |= {"kernel_console/trixie_tcg_int3_oops.txt"}   # test_guest_crash_names_the_first_crash_line...
    present = {str(p.relative_to(FX)) for p in FX.glob("*/*.txt")} | \
        {str(p.relative_to(FX)) for p in FX.glob("keepalived_json/*.json")}
    assert present - claimed == set(), "fixtures no test claims"
    assert claimed - present == set(), "claimed fixtures that were not captured"
    assert len(present) >= 60


# keepalived's JSON dump and journal lines, captured from the lab (scripts/capture-fixtures/keepalived_json.sh)
KEEPALIVED_JSON = {
    "healthy_node1.json": ("MASTER", 0), "healthy_node2.json": ("BACKUP", 0),
    "split_auth_node1.json": ("MASTER", None), "split_auth_node2.json": ("MASTER", None),
    "split_auth_node3.json": ("BACKUP", None), "not_running_node3.txt": (None, None),
    "journal_node1.txt": (None, None), "journal_split_node2.txt": (None, None),
}


@pytest.mark.parametrize("name", sorted(KEEPALIVED_JSON))
def test_keepalived_json_fixture_parses(name):
    from fabfile.parsers import journal, keepalived_json
    text = read(f"keepalived_json/{name}")
    state, auth = KEEPALIVED_JSON[name]
    if name.startswith("journal"):
        changes = journal.state_changes(text)
        assert changes and all(c.instance == "VI_1" and c.state in ("MASTER", "BACKUP") for c in changes)
        assert [c.at for c in changes] == sorted(c.at for c in changes)
        return
    views = keepalived_json.parse_keepalived_json(text)
    if state is None:
        assert views is None
        return
    assert [v.instance for v in views] == ["VI_1"] and views[0].state == state and views[0].vrid == 51
    if auth == 0:   # captured right after keepalived restarted: its counters start at zero
        assert views[0].auth_errors == 0
    if name.startswith("split_auth"):
        assert views[0].auth_errors > 0
    assert keepalived_json.parse_keepalived_json(text[: len(text) // 2]) is None   # cut short: unavailable


@pytest.mark.parametrize("name", sorted(IPVSADM))
def test_ipvsadm_fixture_parses(name):
    out = IPVSADM[name](read(f"ipvsadm/{name}.txt"))
    assert out is not None


@pytest.mark.parametrize("name", sorted(IPVSADM))
def test_ipvsadm_fixture_rejected_by_the_other_parsers(name):
    """A parser handed another ipvsadm command's output says so (empty outputs excepted: an
    empty -S or --daemon output is a valid 'nothing')."""
    text = read(f"ipvsadm/{name}.txt")
    others = {ipvsadm.parse_list, ipvsadm.parse_stats, ipvsadm.parse_rate, ipvsadm.parse_connections,
              ipvsadm.parse_save, ipvsadm.parse_daemons} - {IPVSADM[name]}
    if not text.strip():
        others -= {ipvsadm.parse_save, ipvsadm.parse_daemons}
    for parse in others:
        with pytest.raises(ParseError):
            parse(text)


# ------------------------------------------------------------------ ipvsadm -L -n
def test_list_full_table():
    t = ipvsadm.parse_list(read("ipvsadm/L_n.txt"))
    assert (t.version, t.size) == ("1.2.1", 4096)
    assert t.keys() == [
        "TCP 10.190.0.100:80", "TCP 10.190.0.100:82", "TCP 10.190.0.100:83", "TCP 10.190.0.100:84",
        "TCP 10.190.0.100:85", "TCP 10.190.0.100:443", "TCP 10.190.0.100:444", "TCP 10.190.0.100:8080",
        "TCP 10.190.0.100:9000", "UDP 10.190.0.100:53", "UDP 10.190.0.100:514",
        "TCP [fd00:190::100]:80", "FWM 1", "FWM 2 IPv6"]
    web = t.service("TCP 10.190.0.100:80")
    assert (web.protocol, web.address, web.port, web.fwmark, web.scheduler) == ("TCP", VIP, 80, None, "rr")
    assert web.persistent is None and web.netmask is None and web.flags == []
    assert [(r.address, r.port, r.forward, r.weight) for r in web.real_servers] == [
        ("10.190.0.11", 80, "Route", 1), ("10.190.0.12", 80, "Route", 1)]
    # 300 short requests plus one held open: rr splits them, the open one is ActiveConn
    assert sum(r.inact_conn for r in web.real_servers) == 300
    assert sum(r.active_conn for r in web.real_servers) == 1


def test_list_wrr_weights_and_distribution():
    s = ipvsadm.parse_list(read("ipvsadm/L_n.txt")).service("TCP 10.190.0.100:82")
    assert s.scheduler == "wrr"
    assert [(r.address, r.weight, r.inact_conn) for r in s.real_servers] == [
        ("10.190.0.11", 3, 6), ("10.190.0.12", 2, 4), ("10.190.0.13", 1, 2)]   # 12 requests, 3:2:1


def test_list_forward_methods_and_quiesced_server():
    t = ipvsadm.parse_list(read("ipvsadm/L_n.txt"))
    assert t.service("TCP 10.190.0.100:83").real_servers[0].forward == "Tunnel"
    # a -m real server on the director's own address: kernel 6.1 still reports Masq, not Local
    assert t.service("TCP 10.190.0.100:84").real_servers[0].forward == "Masq"
    nat = t.service("TCP 10.190.0.100:8080")
    assert nat.scheduler == "wlc"
    assert [(r.endpoint, r.forward, r.weight, r.inact_conn) for r in nat.real_servers] == [
        ("10.190.0.130:8080", "Masq", 1, 4), ("10.190.0.131:8080", "Masq", 0, 0)]


def test_list_persistence_with_granularity_and_default_timeout():
    t = ipvsadm.parse_list(read("ipvsadm/L_n.txt"))
    p = t.service("TCP 10.190.0.100:443")
    assert (p.persistent, p.netmask) == (60, "255.255.255.0")
    # persistence: all 6 requests of the one client went to the same real server
    assert sorted(r.inact_conn for r in p.real_servers) == [0, 6]
    d = t.service("TCP 10.190.0.100:444")
    assert (d.persistent, d.netmask) == (360, None)          # ipvsadm -p without value


def test_list_scheduler_flags_ops_udp():
    t = ipvsadm.parse_list(read("ipvsadm/L_n.txt"))
    assert t.service("TCP 10.190.0.100:85").flags == ["sh-fallback", "sh-port"]
    assert t.service("TCP 10.190.0.100:85").scheduler == "sh"
    ops = t.service("UDP 10.190.0.100:514")
    assert (ops.protocol, ops.flags) == ("UDP", ["ops"])
    dns = t.service("UDP 10.190.0.100:53")
    assert sum(r.inact_conn for r in dns.real_servers) == 5       # 5 datagrams from 5 ports


def test_list_fwmark_and_ipv6():
    t = ipvsadm.parse_list(read("ipvsadm/L_n.txt"))
    fwm = t.service("FWM 1")
    assert (fwm.protocol, fwm.address, fwm.port, fwm.fwmark, fwm.persistent) == ("FWM", None, None, 1, 300)
    assert [(r.address, r.port) for r in fwm.real_servers] == [("10.190.0.11", 0), ("10.190.0.12", 0)]
    assert sorted(r.inact_conn for r in fwm.real_servers) == [0, 4]   # persistent 300: one RS
    v6 = t.service("TCP [fd00:190::100]:80")
    assert (v6.address, v6.port, v6.family) == ("fd00:190::100", 80, "inet6")
    assert [r.endpoint for r in v6.real_servers] == ["[fd00:190::11]:80", "[fd00:190::12]:80"]
    f6 = t.service("FWM 2 IPv6")
    assert (f6.fwmark, f6.family, f6.real_servers[0].address) == (2, "inet6", "fd00:190::13")


def test_list_rules_only_has_zero_counters():
    t = ipvsadm.parse_list(read("ipvsadm/L_n_rules_only.txt"))
    assert len(t.services) == 14
    assert all(r.active_conn == 0 and r.inact_conn == 0 for s in t.services for r in s.real_servers)


def test_list_empty_table_and_one_service():
    e = ipvsadm.parse_list(read("ipvsadm/L_n_empty.txt"))
    assert (e.services, e.version, e.size) == ([], "1.2.1", 4096)
    one = ipvsadm.parse_list(read("ipvsadm/L_n_one_service.txt"))     # -t VIP:82: no version line
    assert one.version is None
    assert one.keys() == ["TCP 10.190.0.100:82"]
    assert [r.weight for r in one.services[0].real_servers] == [3, 2, 1]


def test_list_keepalived_managed_table():
    t = ipvsadm.parse_list(read("ipvsadm/ka_L_n.txt"))
    assert t.keys() == ["TCP 10.190.0.101:80", "FWM 7"]
    vs = t.service("TCP 10.190.0.101:80")
    # keepalived's persistence_timeout 60 + persistence_granularity 255.255.255.0
    assert (vs.scheduler, vs.persistent, vs.netmask) == ("wrr", 60, "255.255.255.0")
    assert [(r.address, r.weight, r.forward) for r in vs.real_servers] == [
        ("10.190.0.11", 3, "Route"), ("10.190.0.12", 2, "Route")]
    assert t.service("FWM 7").real_servers[0].endpoint == "10.190.0.11:0"


def test_list_shared_captures():
    q2 = ipvsadm.parse_list(read("ipvsadm/shared_q2_ipvsadm_L_n.txt"))
    assert q2.keys() == ["TCP 10.190.0.100:80"] and q2.services[0].real_servers == []
    q3 = ipvsadm.parse_list(read("ipvsadm/shared_q3_dir1_L_n.txt"))
    assert [(r.address, r.forward, r.weight, r.active_conn, r.inact_conn)
            for r in q3.services[0].real_servers] == [("10.190.0.11", "Route", 1, 0, 3),
                                                       ("10.190.0.12", "Route", 1, 0, 3)]


def test_list_rejects_other_listings():
    for name in sorted(IPVSADM_REJECTED):
        with pytest.raises(ParseError, match="unsupported ipvsadm listing columns"):
            ipvsadm.parse_list(read(f"ipvsadm/{name}.txt"))
    with pytest.raises(ParseError, match="got ipvsadm -L -n --stats output"):
        ipvsadm.parse_list(read("ipvsadm/L_n_stats.txt"))


def test_no_ipvs_on_this_host_kernel():
    assert read("ipvsadm/host_no_ipvs_L_n.txt") == ""
    assert rc("ipvsadm/host_no_ipvs_L_n.rc") == 2
    err = read("ipvsadm/host_no_ipvs_L_n.stderr")
    assert ipvsadm.ipvs_unavailable(err)
    assert not ipvsadm.ipvs_unavailable(read("ipvsadm/L_n.txt"))
    with pytest.raises(ParseError, match="empty output"):
        ipvsadm.parse_list(read("ipvsadm/host_no_ipvs_L_n.txt"))


def test_service_key_helper():
    t = ipvsadm.parse_list(read("ipvsadm/L_n.txt"))
    assert ipvsadm.service_key(t.services[0]) == "TCP 10.190.0.100:80" == ipvsadm.key(t.services[0])
    assert t.services[0].key == "TCP 10.190.0.100:80"
    assert t.service("TCP 10.190.0.100:81") is None


# ------------------------------------------------------------------ ipvsadm -S -n
def test_save_matches_list():
    saved = ipvsadm.parse_save(read("ipvsadm/S_n.txt"))
    listed = ipvsadm.parse_list(read("ipvsadm/L_n.txt"))
    assert saved.keys() == listed.keys()
    for s, l in zip(saved.services, listed.services):
        assert (s.scheduler, s.persistent, s.netmask, s.flags, s.family) == \
               (l.scheduler, l.persistent, l.netmask, l.flags, l.family), s.key
        assert [(r.address, r.port, r.forward, r.weight) for r in s.real_servers] == \
               [(r.address, r.port, r.forward, r.weight) for r in l.real_servers], s.key
        assert all(r.active_conn is None and r.inact_conn is None for r in s.real_servers)
    assert saved.version is None


def test_save_details():
    saved = ipvsadm.parse_save(read("ipvsadm/S_n.txt"))
    assert saved.service("TCP 10.190.0.100:443").netmask == "255.255.255.0"      # -M
    assert saved.service("TCP 10.190.0.100:444").persistent == 360               # -p 360
    assert saved.service("TCP 10.190.0.100:83").real_servers[0].forward == "Tunnel"  # -i --tun-type ipip
    assert saved.service("FWM 2 IPv6").real_servers[0].endpoint == "[fd00:190::13]:0"
    assert [r.weight for r in saved.service("TCP 10.190.0.100:82").real_servers] == [3, 2, 1]
    assert ipvsadm.parse_save(read("ipvsadm/S_n_empty.txt")).services == []
    ka = ipvsadm.parse_save(read("ipvsadm/ka_S_n.txt"))
    assert ka.keys() == ["TCP 10.190.0.101:80", "FWM 7"]
    assert (ka.services[0].persistent, ka.services[0].netmask) == (60, "255.255.255.0")


# ------------------------------------------------------------------ --stats / --rate
def test_stats_counters():
    st = ipvsadm.parse_stats(read("ipvsadm/L_n_stats.txt"))
    assert (st.version, st.size) == ("1.2.1", 4096)
    web = st.service("TCP 10.190.0.100:80")
    assert web.stats.conns == 301
    assert web.stats.outpkts == 0 and web.stats.outbytes == 0       # DR: replies bypass the director
    assert web.stats.inpkts > 0 and web.stats.inbytes > 0
    assert sum(r.stats.conns for r in web.real_servers) == 301
    assert sum(r.stats.inpkts for r in web.real_servers) == web.stats.inpkts
    assert [r.stats.conns for r in st.service("TCP 10.190.0.100:82").real_servers] == [6, 4, 2]
    nat = st.service("TCP 10.190.0.100:8080")
    assert nat.stats.conns == 4 and nat.stats.outpkts > 0 and nat.stats.outbytes > 0   # NAT: both ways
    assert st.service("UDP 10.190.0.100:53").stats.conns == 5
    assert st.service("FWM 1").stats.conns == 4
    assert st.service("FWM 2 IPv6").stats.conns == 0


def test_stats_units_against_exact():
    approx = ipvsadm.parse_stats(read("ipvsadm/L_n_stats.txt"))
    exact = ipvsadm.parse_stats(read("ipvsadm/L_n_stats_exact.txt"))
    assert approx.exact is False and exact.exact is True
    bulk_a = approx.service("TCP 10.190.0.100:9000").stats
    bulk_e = exact.service("TCP 10.190.0.100:9000").stats
    assert bulk_e.outbytes >= 160_000_000                          # the 160 MB sent through NAT
    assert "K" in read("ipvsadm/L_n_stats.txt")                     # ipvsadm printed e.g. 160136K
    assert bulk_a.outbytes == bulk_e.outbytes // 1000 * 1000        # K = x1000, rounded down
    assert bulk_a.conns == bulk_e.conns == 1
    # everything below 100 million is printed exactly either way
    assert approx.service("TCP 10.190.0.100:80") == exact.service("TCP 10.190.0.100:80")


def test_stats_empty_and_shared():
    assert ipvsadm.parse_stats(read("ipvsadm/L_n_stats_empty.txt")).services == []
    q3 = ipvsadm.parse_stats(read("ipvsadm/shared_q3_dir1_L_n_stats.txt"))
    s = q3.service("TCP 10.190.0.100:80")
    assert s.stats == ipvsadm.Counters(6, 36, 0, 2376, 0)
    assert [(r.endpoint, r.stats.conns, r.stats.inbytes) for r in s.real_servers] == [
        ("10.190.0.11:80", 3, 1188), ("10.190.0.12:80", 3, 1188)]


def test_rate():
    r = ipvsadm.parse_rate(read("ipvsadm/L_n_rate.txt"))
    assert len(r.services) == 14
    web = r.service("TCP 10.190.0.100:80")
    assert isinstance(web.stats, ipvsadm.Rates)
    assert web.stats.cps > 0 and web.stats.outpps == 0
    assert r.service("TCP 10.190.0.100:9000").stats.outbps > 1_000_000
    with pytest.raises(ParseError, match="got ipvsadm -L -n --rate output"):
        ipvsadm.parse_stats(read("ipvsadm/L_n_rate.txt"))


# ------------------------------------------------------------------ -c
def test_connections():
    conns = ipvsadm.parse_connections(read("ipvsadm/L_n_c.txt"))
    assert len(conns) == len(read("ipvsadm/L_n_c.txt").splitlines()) - 2
    by_state = Counter(c.state for c in conns)
    assert by_state["ESTABLISHED"] == 1 and by_state["UDP"] == 5 and by_state["FIN_WAIT"] > 300
    est = next(c for c in conns if c.state == "ESTABLISHED")
    assert (est.protocol, str(est.virtual), est.source.address) == ("TCP", "10.190.0.100:80", "10.190.0.10")
    assert est.destination.address in ("10.190.0.11", "10.190.0.12") and est.destination.port == 80
    assert 0 < est.expire <= 15 * 60                                 # ESTABLISHED timeout 15 min
    udp = [c for c in conns if c.protocol == "UDP"]
    assert {str(c.virtual) for c in udp} == {"10.190.0.100:53"} and all(c.expire <= 300 for c in udp)
    web = Counter(str(c.destination) for c in conns if str(c.virtual) == "10.190.0.100:80")
    assert sum(web.values()) == 301 and set(web) == {"10.190.0.11:80", "10.190.0.12:80"}


def test_connection_templates():
    conns = ipvsadm.parse_connections(read("ipvsadm/L_n_c.txt"))
    tmpl = [c for c in conns if c.is_template]
    # the -M 255.255.255.0 service: the client's /24 network, port 0
    net = next(c for c in tmpl if c.protocol == "TCP")
    assert (str(net.source), str(net.virtual), net.state) == ("10.190.0.0:0", "10.190.0.100:443", "ASSURED")
    # the fwmark service: protocol IP, virtual 0.0.0.<fwmark>
    fwm = next(c for c in tmpl if c.protocol == "IP")
    assert (str(fwm.source), str(fwm.virtual)) == ("10.190.0.10:0", "0.0.0.1:0")
    assert len(tmpl) == 2
    assert ipvsadm.parse_connections(read("ipvsadm/L_n_c_empty.txt")) == []


# ------------------------------------------------------------------ --daemon
def test_daemons():
    both = ipvsadm.parse_daemons(read("ipvsadm/L_daemon_master_backup.txt"))
    assert both == [
        ipvsadm.SyncDaemon("master", "eth0", 5, 1472, "224.0.0.81", 8848, 1),
        ipvsadm.SyncDaemon("backup", "eth0", 5, 1400, "224.0.0.82", 8850, 2)]
    assert [d.role for d in ipvsadm.parse_daemons(read("ipvsadm/L_daemon_master.txt"))] == ["master"]
    assert ipvsadm.parse_daemons(read("ipvsadm/L_daemon_none.txt")) == []
    d1 = ipvsadm.parse_daemons(read("ipvsadm/shared_q4_dir1_L_daemon.txt"))
    d2 = ipvsadm.parse_daemons(read("ipvsadm/shared_q4_dir2_L_daemon.txt"))
    assert [(d.role, d.mcast_interface, d.syncid) for d in d1 + d2] == [("master", "eth0", 1), ("backup", "eth0", 1)]


def test_daemons_run_by_keepalived():
    # lvs_sync_daemon eth0 FX_VI id 9 maxlen 1000 port 8851 ttl 3 group 224.0.0.83:
    # started as backup while VRRP is BACKUP (maxlen shown 1024), master once VRRP is MASTER
    before = ipvsadm.parse_daemons(read("ipvsadm/ka_L_daemon.txt"))
    after = ipvsadm.parse_daemons(read("ipvsadm/ka_L_daemon_after_master.txt"))
    assert before == [ipvsadm.SyncDaemon("backup", "eth0", 9, 1024, "224.0.0.83", 8851, 3)]
    assert after == [ipvsadm.SyncDaemon("master", "eth0", 9, 1000, "224.0.0.83", 8851, 3)]


# ------------------------------------------------------------------ keepalived -t
KT = {  # case -> (exit code, verdict, words keepalived must have said)
    "clean": (0, "ok", []),
    "script_security_ok": (0, "ok", []),
    "nat_mask": (5, "warnings", ["(nat_mask.conf: Line 28) Unknown keyword 'nat_mask'"]),
    "nb_get_retry": (5, "warnings", ["Unknown keyword 'nb_get_retry'"]),
    "auth_pass_long": (5, "warnings", ["Truncating auth_pass to 8 characters"]),
    "nopreempt_master": (5, "warnings", ["(VI_1) Warning - nopreempt will not work with initial state MASTER - clearing"]),
    "missing_brace": (5, "warnings", ["There are 1 missing '}'s or extra '{'s", "Unknown keyword 'virtual_server'"]),
    "unicast_peer_one_line": (5, "warnings", ["(VI_1) 10.190.0.4 is missing a value"]),
    "dr_port_mismatch": (5, "warnings", ["ports don't match - resetting"]),
    "missing_interface": (5, "warnings", ["WARNING - interface eth9 for vrrp_instance VI_1 doesn't exist",
                                          "Non-existent interface specified in configuration"]),
    "vip_dev_missing": (5, "warnings", ["interface eth7 for ip address 10.190.0.100/24 doesn't exist"]),
    "vrid_out_of_range": (5, "warnings", ["number '300' outside range [1, 255]"]),
    "duplicate_instance": (5, "warnings", ["vrrp instance VI_1 already defined"]),
    "script_security_no_user": (5, "warnings", ["Unable to set default user keepalived_script for script"]),
    "script_no_security": (6, "script-security", ["SECURITY VIOLATION - scripts are being executed but script_security not enabled."]),
    "linkbeat_unknown_iface": (4, "fatal", ["unknown interface eth9 specified for linkbeat interface"]),
    "missing_include": (0, "warnings", ["Config files missing '/nonexistent/lbtk-extra.conf'."]),
    "missing_file": (0, "fatal", ["Config files missing 'nonexistent.conf'."]),
}


def kt(name: str) -> keepalived_t.KeepalivedCheck:
    return keepalived_t.parse_keepalived_check(read(f"keepalived_t/{name}.stdout"),
                                               read(f"keepalived_t/{name}.txt"),
                                               rc(f"keepalived_t/{name}.rc"))


def test_keepalived_catalogue_is_complete():
    assert set(KT) == {p.stem for p in (FX / "keepalived_t").glob("*.rc")}


@pytest.mark.parametrize("name", sorted(KT))
def test_keepalived_t(name):
    code, verdict, words = KT[name]
    r = kt(name)
    assert (r.exit_code, r.verdict) == (code, verdict)
    for w in words:
        assert any(w in m for m in r.messages), (w, r.messages)
    assert bool(r.messages) == bool(words)
    assert r.ok == (verdict == "ok")
    assert read(f"keepalived_t/{name}.stdout") == ""          # -t writes to stderr only


def test_keepalived_t_messages_as_printed():
    r = kt("missing_brace")
    assert r.messages.count("There are 1 missing '}'s or extra '{'s") == 1   # printed 4 times
    assert len(r.messages) == 19
    assert r.would_run
    assert not kt("linkbeat_unknown_iface").would_run
    assert not kt("script_no_security").would_run
    assert kt("vrid_out_of_range").messages == [
        "(vrid_out_of_range.conf: Line 7) number '300' outside range [1, 255]",
        "(vrid_out_of_range.conf: Line 7) (VI_1): VRID '300' not valid - must be between 1 & 255",
        "(VI_1) the virtual router id must be set"]


def test_keepalived_t_locations():
    f, line, text = keepalived_t.split_location(kt("nat_mask").messages[0])
    assert (f, line, text) == ("nat_mask.conf", 28, "Unknown keyword 'nat_mask'")
    assert read("keepalived_t/nat_mask.conf").splitlines()[line - 1].strip() == "nat_mask 255.255.255.0"
    assert keepalived_t.split_location(kt("missing_include").messages[0]) == (
        None, 1, "Config files missing '/nonexistent/lbtk-extra.conf'.")
    assert keepalived_t.split_location(kt("nopreempt_master").messages[0])[:2] == (None, None)


def test_keepalived_t_merged_streams():
    """With a pty, stderr arrives in stdout: same messages."""
    name = "missing_interface"
    merged = keepalived_t.parse_keepalived_check(read(f"keepalived_t/{name}.txt"), "", 5)
    assert merged == kt(name)


# ------------------------------------------------------------------ ip -j addr
IP_ADDR = ["netns_all", "netns_eth0_v4", "netns_lo", "netns_eth1_down_v4", "netns_missing_dev",
           "guest_director", "guest_director_eth0_v4", "guest_realserver_lo"]
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def ifaces(name):
    return ip_addr.parse_ip_addr(read(f"ip_addr/{name}.txt"))


def test_ip_addr_all():
    ii = ifaces("netns_all")
    assert [i.name for i in ii] == ["lo", "fxpeer0", "eth0", "fxpeer1", "eth1", "fxpeer2", "eth2"]
    assert [i.ifindex for i in ii] == [1, 2, 3, 4, 5, 6, 7]
    by = {i.name: i for i in ii}
    assert (by["lo"].state, by["lo"].mac, by["lo"].link_type, by["lo"].mtu) == (
        "UNKNOWN", "00:00:00:00:00:00", "loopback", 65536)
    assert by["eth0"].state == "UP" and MAC.match(by["eth0"].mac) and by["eth0"].up
    assert by["eth1"].state == "DOWN" and by["eth1"].addresses == [] and not by["eth1"].up
    assert by["eth2"].state == "LOWERLAYERDOWN" and "NO-CARRIER" in by["eth2"].flags
    assert [a.cidr for a in by["lo"].addresses] == ["127.0.0.1/8", "10.190.0.100/32", "::1/128"]
    eth0 = by["eth0"].addresses
    assert [(a.cidr, a.label, a.secondary, a.dynamic) for a in eth0 if a.family == "inet"] == [
        ("10.190.0.2/24", "eth0", False, False), ("10.190.0.100/24", "eth0", True, False),
        ("10.190.0.101/24", "eth0:vip", True, False), ("10.190.0.50/24", "eth0", True, True)]
    v6 = [a for a in eth0 if a.family == "inet6"]
    assert [(a.local, a.prefixlen, a.scope, a.label) for a in v6][0] == ("fd00:190::2", 64, "global", None)
    assert v6[1].scope == "link"


def test_ip_addr_holds_and_owner():
    ii = ifaces("netns_all")
    assert ip_addr.address_owner(ii, VIP) == ["lo", "eth0"]       # lo /32 and the eth0 secondary
    assert ip_addr.address_owner(ii, "10.190.0.101") == ["eth0"]
    assert ip_addr.holds(ii, "fd00:190:0::2")                       # spelling does not matter
    assert not ip_addr.holds(ii, "10.190.0.99")
    assert ip_addr.address_owner(ii, "10.190.0.99") == []
    assert ip_addr.interface(ii, "eth2").addresses[0].cidr == "10.190.0.130/25"


def test_ip_addr_family_filter_and_dev():
    v4 = ifaces("netns_eth0_v4")
    assert [i.name for i in v4] == ["eth0"]
    assert v4[0].mac is None and v4[0].link_type is None          # -4 leaves the link fields out
    assert {a.family for a in v4[0].addresses} == {"inet"} and len(v4[0].addresses) == 4
    lo = ifaces("netns_lo")
    assert ip_addr.address_owner(lo, VIP) == ["lo"]
    assert ifaces("netns_eth1_down_v4") == []                      # no IPv4 on eth1: not listed


def test_ip_addr_missing_device():
    assert rc("ip_addr/netns_missing_dev.rc") == 1
    assert read("ip_addr/netns_missing_dev.stderr").strip() == 'Device "eth9" does not exist.'
    with pytest.raises(ParseError, match="empty output"):
        ifaces("netns_missing_dev")


def test_ip_batch_failure_names_the_line_and_the_reason():
    # iproute2 6.1's `ip -batch -`, third line failing: the reason first, then the line number
    assert ip_addr.batch_failure(read("ip_addr/batch_failed_line3.stderr")) == (3, 'Cannot find device "nope"')
    assert ip_addr.batch_failure(read("ip_addr/batch_exists_line3.stderr")) == \
        (3, "Error: ipv4: Address already assigned.")
    assert ip_addr.batch_failure("") == (None, "failed")


def test_ip_addr_director_and_real_server_in_kernel_tier():
    d = ifaces("guest_director")
    assert ip_addr.address_owner(d, VIP) == ["eth0"]
    assert ip_addr.address_owner(d, "fd00:190::100") == ["eth0"]
    assert ip_addr.interface(d, "eth1").addresses[0].cidr == "10.190.0.129/25"
    d4 = ifaces("guest_director_eth0_v4")
    assert [a.cidr for a in d4[0].addresses] == ["10.190.0.2/25", "10.190.0.100/32"]
    rs = ifaces("guest_realserver_lo")
    assert ip_addr.address_owner(rs, VIP) == ["lo"]
    assert next(a for a in rs[0].addresses if a.local == VIP).prefixlen == 32


def test_ip_addr_rejects_other_text():
    with pytest.raises(ParseError, match="not JSON"):
        ip_addr.parse_ip_addr(read("sysctl/arp_set.txt"))
    with pytest.raises(ParseError):
        ip_addr.parse_ip_addr(read("ipvsadm/L_n.txt"))


# ------------------------------------------------------------------ sysctl
SYSCTL = ["arp_defaults", "arp_set", "with_missing", "with_missing_merged", "port_range",
          "guest_realserver_arp", "guest_director_vs"]
ARP_KEYS = ["net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.all.arp_announce", "net.ipv4.conf.eth0.arp_ignore",
            "net.ipv4.conf.eth0.arp_announce", "net.ipv4.conf.lo.arp_ignore", "net.ipv4.conf.lo.arp_announce"]


def sy(name):
    stderr = FX / f"sysctl/{name}.stderr"
    return sysctl.parse_sysctl(read(f"sysctl/{name}.txt"), stderr.read_text() if stderr.exists() else "")


def test_sysctl_values():
    d = sy("arp_defaults")
    assert list(d.values) == ARP_KEYS + ["net.ipv4.conf.all.rp_filter", "net.ipv4.ip_nonlocal_bind"]
    assert set(d.values.values()) == {"0"} and d.missing == [] and d.errors == []
    s = sy("arp_set")
    assert [s.get(k) for k in ARP_KEYS] == ["1", "2", "1", "2", "1", "2"]
    assert s.get("net.ipv4.ip_nonlocal_bind") == "1" and s.get("net.ipv4.conf.all.rp_filter") == "0"


def test_sysctl_missing_keys():
    r = sy("with_missing")
    assert rc("sysctl/with_missing.rc") == 2
    assert r.values == {"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.lo.arp_announce": "2"}
    assert r.missing == ["net.ipv4.conf.eth9.arp_ignore", "net.ipv4.vs.conntrack"]
    assert sy("with_missing_merged") == r                         # stderr merged into stdout


def test_sysctl_tab_values_and_kernel_tier():
    assert sy("port_range").values == {"net.ipv4.ip_local_port_range": "32768\t60999", "net.ipv4.ip_forward": "0"}
    rs = sy("guest_realserver_arp")
    assert [rs.get(k) for k in ARP_KEYS] == ["1", "2", "1", "2", "0", "0"]
    d = sy("guest_director_vs")
    assert d.values == {"net.ipv4.ip_forward": "1", "net.ipv4.vs.conntrack": "0",
                        "net.ipv4.vs.sync_threshold": "3\t50", "net.ipv4.vs.expire_nodest_conn": "0"}


def test_sysctl_rejects_other_text():
    with pytest.raises(ParseError, match="not sysctl KEY output"):
        sysctl.parse_sysctl(read("ipvsadm/L_daemon_master.txt"))


# ------------------------------------------------------------------ systemctl
SYSTEMCTL = ["is_active", "is_active_all_active", "is_active_after_stop", "is_enabled", "is_enabled_missing",
             "host_no_systemd_is_active"]


def sc(name):
    stderr = FX / f"systemctl/{name}.stderr"
    return read(f"systemctl/{name}.txt"), stderr.read_text() if stderr.exists() else ""


def test_systemctl_is_active():
    units = ["nginx", "keepalived", "ssh", "lbtk-vip-lo", "lbtk-fail", "lbtk-slow", "lbtk-nope"]
    assert systemctl.parse_is_active(units, *sc("is_active")) == {
        "nginx": "active", "keepalived": "inactive", "ssh": "active", "lbtk-vip-lo": "active",
        "lbtk-fail": "failed", "lbtk-slow": "activating", "lbtk-nope": "inactive"}
    assert rc("systemctl/is_active.rc") == 0                      # 0 although some are not active
    assert systemctl.parse_is_active(["nginx", "ssh", "systemd-journald"], *sc("is_active_all_active")) == {
        "nginx": "active", "ssh": "active", "systemd-journald": "active"}
    assert systemctl.parse_is_active(["nginx"], *sc("is_active_after_stop")) == {"nginx": "inactive"}
    assert rc("systemctl/is_active_after_stop.rc") == 3


def test_systemctl_is_active_wrong_unit_count():
    with pytest.raises(ParseError, match="7 line"):
        systemctl.parse_is_active(["nginx", "keepalived"], *sc("is_active"))


def test_systemctl_is_enabled():
    units = ["nginx", "keepalived", "ssh", "lbtk-vip-lo", "systemd-journald", "apt-daily.timer", "lbtk-fail"]
    assert systemctl.parse_is_enabled(units, *sc("is_enabled")) == {
        "nginx": "disabled", "keepalived": "disabled", "ssh": "enabled", "lbtk-vip-lo": "enabled",
        "systemd-journald": "static", "apt-daily.timer": "masked", "lbtk-fail": "static"}


def test_systemctl_is_enabled_stops_at_missing_unit():
    out, err = sc("is_enabled_missing")
    assert rc("systemctl/is_enabled_missing.rc") == 1
    assert systemctl.parse_is_enabled(["nginx", "lbtk-nope", "ssh"], out, err) == {
        "nginx": "disabled", "lbtk-nope": "not-found", "ssh": "unknown"}


def test_systemctl_without_systemd():
    out, err = sc("host_no_systemd_is_active")
    assert out == "" and rc("systemctl/host_no_systemd_is_active.rc") == 1
    with pytest.raises(systemctl.NoSystemd, match="System has not been booted with systemd"):
        systemctl.parse_is_active(["keepalived", "nginx"], out, err)
    assert issubclass(systemctl.NoSystemd, ParseError)


def test_systemctl_rejects_other_words():
    with pytest.raises(ParseError, match="unknown state"):
        systemctl.parse_is_active(["a", "b", "c", "d", "e", "f", "g"], *sc("is_enabled"))


# ------------------------------------------------------------------ shared helper
def test_split_host_port_on_captured_endpoints():
    seen = []
    for line in read("ipvsadm/L_n.txt").splitlines()[3:]:
        if line.strip().startswith("->"):
            seen.append(split_host_port(line.split()[1]))
    assert ("10.190.0.130", 8080) in seen and ("fd00:190::13", 0) in seen and len(seen) == 23
    with pytest.raises(ParseError, match="not an address:port"):
        split_host_port(read("ipvsadm/L_n.txt").splitlines()[0])


# ------------------------------------------------------------------ genhash (keepalived's HTTP_GET digest)
# captured from the lab by scripts/capture-fixtures/genhash.sh: fixture -> {(address, port, path): what}
HEALTHZ = "eff5bc1ef8ec9d03e640fc4370f5eacd"        # md5 of the lab's /healthz body "ok\n"
GENHASH = {
    "healthz_all": {(f"10.189.0.1{k}", 80, "/healthz"): (HEALTHZ, 200, "") for k in (1, 2, 3)},
    "page_node2": {("10.189.0.12", 80, "/"): ("ebe6e7d93bc0fd340b50af2b6223ad65", 200, "")},
    "not_found": {("10.189.0.12", 80, "/no-such-page"): ("998368d7c95ea4293237f2320546e440", 404, "")},
    "refused": {("10.189.0.12", 81, "/healthz"): (None, None, "Connection failed")},
    "timeout": {("10.189.0.99", 80, "/healthz"): (None, None, "Timeout connecting")},
    "bad_address": {("lb9", 80, "/healthz"): (None, None, "server should be an IP, not lb9")},
    "plain": {("10.189.0.12", 80, "/healthz"): (HEALTHZ, None, ""),
              ("10.189.0.12", 81, "/healthz"): (None, None, "Connection failed")},
}


@pytest.mark.parametrize("name", sorted(GENHASH))
def test_genhash(name):
    from fabfile.parsers import genhash
    got = genhash.parse_genhash(read(f"genhash/{name}.txt"))
    assert {k: (g.digest, g.status, g.error) for k, g in got.items()} == GENHASH[name]
    for (a, p, path), g in got.items():
        assert (g.address, g.port, g.path, g.url) == (a, p, path, f"http://{a}:{p}{path}")
        assert g.ok == (g.digest is not None)


def test_genhash_verbose_details():
    from fabfile.parsers import genhash
    (g,) = genhash.parse_genhash(read("genhash/not_found.txt")).values()
    assert (g.status, g.reason) == (404, "Not Found") and g.usecs and g.usecs > 0
    assert "HTML Buffer" not in read("genhash/page_node2.txt")    # the body's dump stays on the node
    (ok,) = genhash.parse_genhash(read("genhash/page_node2.txt")).values()
    assert ok.reason == "OK"


@pytest.mark.parametrize("text, words", [
    ("garbage\n", "text before the first @@genhash frame"),
    ("@@genhash 10.0.0.1 eighty /\neff5bc1ef8ec9d03e640fc4370f5eacd\n", "not a frame header"),
    ("@@genhash 10.0.0.1 80 /\n", "printed nothing"),
    ("@@genhash 10.0.0.1 80 /\nsomething eff5bc1ef8ec9d03e640fc4370f5eacd\neff5bc1ef8ec9d03e640fc4370f5eacd\n",
     "a digest among other text"),
])
def test_genhash_garbage_is_one_parse_error(text, words):
    from fabfile.parsers import genhash
    with pytest.raises(ParseError, match=words) as e:
        genhash.parse_genhash(text)
    assert "\n" not in str(e.value)


def test_genhash_truncated_verbose_output_is_refused():
    from fabfile.parsers import genhash
    text = read("genhash/healthz_all.txt")
    cut = text[:text.index("HTML hash final resulting")]       # the first frame cut before its digest
    with pytest.raises(ParseError, match="without its 'HTML hash final resulting' section"):
        genhash.parse_genhash(cut)
    no_status = text.replace("\nHTTP/1.1 200 OK\n", "\ngarbage\n", 1)     # the header, not its hex dump
    with pytest.raises(ParseError, match="no HTTP status line"):
        genhash.parse_genhash(no_status)


# ------------------------------------------------------------------ nginx -t and its default servers
# captured from the lab by scripts/capture-fixtures/nginx_t.sh
NGINX_T = ["test_ok", "defaults_ok", "test_duplicate_default", "defaults_duplicate_default",
           "test_duplicate_zz-shop", "defaults_duplicate_zz-shop"]


def test_nginx_t_duplicate_default_server():
    from fabfile.parsers import nginx_t
    assert read("nginx_t/test_ok.txt") == "" and not (FX / "nginx_t/test_ok.stderr").exists()
    for site, named in (("default", "/etc/nginx/sites-enabled/lbtk.conf"), ("zz-shop", "/etc/nginx/sites-enabled/zz-shop")):
        assert read(f"nginx_t/test_duplicate_{site}.txt") == "" and rc(f"nginx_t/test_duplicate_{site}.rc") == 1
        d = nginx_t.parse_duplicate_default(read(f"nginx_t/test_duplicate_{site}.stderr"))
        assert (d.listen, d.file) == ("0.0.0.0:80", named)
    assert nginx_t.parse_duplicate_default("nginx: [emerg] unknown directive \"lisen\" in /x:1\n") is None


def test_nginx_t_default_listens():
    from fabfile.parsers import nginx_t
    ok = nginx_t.parse_default_listens(read("nginx_t/defaults_ok.txt"))
    assert [(x.file, x.line, x.listen, x.endpoint) for x in ok] == [
        ("/etc/nginx/sites-enabled/lbtk.conf", 3, "80", ("0.0.0.0", 80))]
    dup = nginx_t.parse_default_listens(read("nginx_t/defaults_duplicate_default.txt"))
    assert [(x.file.rsplit("/", 1)[1], x.endpoint) for x in dup] == [
        ("default", ("0.0.0.0", 80)), ("default", ("[::]", 80)), ("lbtk.conf", ("0.0.0.0", 80))]
    assert [nginx_t.endpoint(w) for w in ("10.0.0.1", "10.0.0.1:8080", "*:81", "[::]", "unix:/run/x.sock")] == [
        ("10.0.0.1", 80), ("10.0.0.1", 8080), ("0.0.0.0", 81), ("[::]", 80), None]
    with pytest.raises(ParseError, match="not a `FILE:LINE:listen"):
        nginx_t.parse_default_listens("grep: /etc/nginx/conf.d: No such file or directory\n")


# ---------------------------------------------------------------- files fact (GNU tar, base64)
def test_files_fact_as_a_lab_node_printed_it():
    """tests/fixtures/lbtk/files_tar.txt: scripts/capture-fixtures/files_tar.sh on node1 (keepalived.conf
    left out: it holds the secret); a path that does not exist is absent from the archive."""
    from fabfile.parsers.lbtk import parse_files
    fx = Path(__file__).resolve().parents[1] / "fixtures" / "lbtk"
    paths = (fx / "files_tar.paths").read_text().split()
    got = parse_files((fx / "files_tar.txt").read_text(), paths)
    assert set(got) == set(paths)
    assert got["/etc/lbtk-not-there"] is None and got["/etc/nginx/sites-enabled/default"] is None
    assert got["/etc/nginx/sites-enabled/lbtk.conf"].mode == 0o644
    assert b"server" in got["/etc/nginx/sites-enabled/lbtk.conf"].content
    assert got["/var/www/lbtk/index.html"].content.startswith(b"<h1>node1</h1>")
    for bad in ("", "!!!", (fx / "files_tar.txt").read_text()[:1000]):
        with pytest.raises(ParseError):
            parse_files(bad, paths)
    with pytest.raises(ParseError, match="nobody asked for"):
        parse_files((fx / "files_tar.txt").read_text(), ["/etc/default/keepalived"])


# ------------------------------------------------------------------ systemctl show (the units fact)
# captured from Debian 12 lab nodes (systemd 252) by scripts/capture-fixtures/systemctl_show.sh;
# Debian 13's (systemd 257) in tests/unit/test_parsers_trixie.py
SHOW = ["show_fresh", "show_deployed", "show_disabled_no_reload", "show_enabled_no_reload", "show_stopped",
        "show_failed_missing", "show_hand_removed", "show_host_no_systemd"]


def test_systemctl_show_a_node_before_and_after_a_deploy():
    from fabfile.infra import facts
    # captured before the monitoring phase added its units to the fact (the parser takes any list)
    units = list(facts.UNITS[:5])
    fresh = systemctl_show.parse_show(units, *sc("show_fresh"))
    assert fresh["keepalived"] == ("inactive", "disabled") and fresh["nginx"] == ("inactive", "disabled")
    assert fresh["lbtk-vip-lo"] == ("inactive", "not-found")          # no unit file yet: exit 0 all the same
    assert rc("systemctl/show_fresh.rc") == 0
    deployed = systemctl_show.parse_show(units, *sc("show_deployed"))
    assert all(deployed[u] == ("active", "enabled") for u in ("keepalived", "nginx", "lbtk-vip-lo"))
    # the same words is-active / is-enabled print, split into NodeState's two fields
    active, enabled = systemctl_show.split(deployed)
    assert active["keepalived"] == "active" and enabled["keepalived"] == "enabled" and list(active) == units


def test_systemctl_show_follows_enable_and_disable_without_a_daemon_reload():
    units = ["keepalived", "nginx", "lbtk-vip-lo", "lbtk-fwmark", "rsyslog"]
    assert systemctl_show.parse_show(units, *sc("show_disabled_no_reload"))["keepalived"] == ("active", "disabled")
    assert systemctl_show.parse_show(units, *sc("show_enabled_no_reload"))["keepalived"] == ("active", "enabled")
    assert systemctl_show.parse_show(units, *sc("show_stopped"))["keepalived"] == ("inactive", "enabled")


def test_systemctl_show_failed_and_missing_units():
    got = systemctl_show.parse_show(["keepalived", "lbtk-fail", "lbtk-nope", "nginx"], *sc("show_failed_missing"))
    assert got == {"keepalived": ("active", "enabled"), "lbtk-fail": ("failed", "static"),
                   "lbtk-nope": ("inactive", "not-found"), "nginx": ("active", "enabled")}


def test_systemctl_show_refuses_other_output():
    out, _ = sc("show_deployed")
    units = ["keepalived", "nginx", "lbtk-vip-lo", "lbtk-fwmark", "rsyslog"]
    with pytest.raises(ParseError, match="5 unit block"):
        systemctl_show.parse_show(units[:4], out)
    with pytest.raises(ParseError, match="block for .nginx.service. where lbtk-vip-lo.service was asked"):
        systemctl_show.parse_show(["keepalived", "lbtk-vip-lo", "nginx", "lbtk-fwmark", "rsyslog"], out)
    with pytest.raises(ParseError, match="twice"):
        systemctl_show.parse_show(units[:1], out.replace("\n\n", "\n", 1).split("\n\n")[0])
    with pytest.raises(ParseError, match="unexpected line"):
        systemctl_show.parse_show(units, read("systemctl/is_active.txt"))
    with pytest.raises(ParseError, match="0 unit block"):
        systemctl_show.parse_show(units, "")
    cut = out[: out.index("UnitFileState=")]
    with pytest.raises(ParseError, match="no UnitFileState for keepalived"):
        systemctl_show.parse_show(units[:1], cut)


def test_systemctl_show_without_systemd():
    out, err = sc("show_host_no_systemd")
    assert out == "" and rc("systemctl/show_host_no_systemd.rc") == 1
    with pytest.raises(systemctl.NoSystemd, match="System has not been booted with systemd"):
        systemctl_show.parse_show(["keepalived", "nginx"], out, err)


# ================================================================== the kernel tier's console
def test_guest_crash_names_the_first_crash_line_of_a_real_console():
    from fabfile.parsers.kernel_console import guest_crash
    console = (FX / "kernel_console" / "trixie_tcg_int3_oops.txt").read_text()
    assert guest_crash(console) == "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI"
    # only the panic's tail left (a console read while qemu was still writing the report's end)
    tail = console[console.index("Kernel panic"):]
    assert guest_crash(tail) == "Kernel panic - not syncing: Fatal exception in interrupt"
    assert guest_crash("") is None             # a healthy boot: `quiet loglevel=1` prints nothing
    assert guest_crash("\n".join(ln for ln in console.splitlines()
                                 if "Oops" not in ln and "panic" not in ln)) is None
