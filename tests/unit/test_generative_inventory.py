"""Generative: random valid and near-valid inventories, each held to the rule

    either every problem is one line naming a field (what `inv check` prints, exit 2),
    or every node's keepalived.conf passes the real `keepalived -t` with ZERO messages and,
    read back, says what the inventory says: VIPs, priorities and states, peers (on each
    instance's own interface), tracked objects and their weights, global_defs' mail, GARP and FIFO
    keys, real servers, weights, the checker kinds per real server, sorry servers and quorums.

Fixed seed in the unit tier (LBTK_HYPOTHESIS_EXAMPLES, default 30); CI raises the budget.
keepalived -t runs in a throwaway network namespace holding the node's interfaces (root);
without root the config part is skipped and only the one-line rule is checked.
"""
from __future__ import annotations

import copy
import ipaddress
import os
import re

from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st

from fabfile.infra.confcheck import keepalived_check
from fabfile.model.loading import InventoryError, parse
from fabfile.parsers.keepalived_conf import parse_conf
from fabfile.core.render import ASSUMED, RenderFacts, render_all
from fabfile.core.render.keepalived import CONF
from fabfile.model.secrets import resolve_all
from fabfile.core.vrrp import election_warnings, plan, sync_groups
from fabfile.model.checkers import CHECKERS

EXAMPLES = int(os.environ.get("LBTK_HYPOTHESIS_EXAMPLES", "30"))
SOURCE = "gen.yaml"
SECRET_ENV = "LBTK_GEN_SECRET"
# `SOURCE: field.path[0].x: what — how`: a field path, a message, a fix
LINE = re.compile(r"^gen\.yaml: (?:[A-Za-z_][\w]*|\(top level\))(?:\[\d+\]|\['[^']*'\]|\.[\w-]+)*: .+ — .+$")
NET = ipaddress.ip_network("10.77.0.0/24")
NET6 = ipaddress.ip_network("fd00:77::/64")
NET2, NET26 = ipaddress.ip_network("10.78.0.0/24"), ipaddress.ip_network("fd00:78::/64")   # nodes[].interfaces
CMD = "/usr/bin/logger -t lbtk-gen"   # a command every director has (keepalived -t checks it exists)

# -- near-valid: keepalived.conf's own words with small mistakes an operator makes
WORDS = st.sampled_from(["a", "eth0", "VI 1", "x#y", "ok!", "{x}", "", "é", "lb-1", "a" * 20, "eth0.100", "tab\there"])
ALGOS = st.sampled_from(["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf",
                         "twos", "roundrobin", "RR", ""])
SECRETS = st.one_of(st.text(alphabet="abcdefghijklmnop0123456789-_.:", min_size=1, max_size=8),
                    st.sampled_from(["ab cd", "ab#cd", "ok!", "123456789", "", "pä"]))


@st.composite
def inventories(draw):
    n = draw(st.integers(2, 3))
    # the service's family: IPv4, IPv6 on dual-stack nodes (address6), or IPv6-only nodes (IPv6 hosts)
    stack = draw(st.sampled_from(["v4", "v4", "dual", "v6"]))
    net = NET6 if stack != "v4" else NET
    hosts = [str((NET6 if stack == "v6" else NET).network_address + 11 + k) for k in range(n)]
    prios = draw(st.lists(st.integers(1, 254), min_size=n, max_size=n, unique=True))
    nodes = [{"name": f"node{k + 1}", "host": hosts[k], "priority": prios[k],
              "mac": f"02:bd:00:00:77:{k + 11:02x}"} for k in range(n)]
    if stack == "dual":
        for k, node in enumerate(nodes):
            node["address6"] = str(NET6.network_address + 11 + k)
    version = draw(st.sampled_from([2, 2, 3]) if stack == "v4" else st.sampled_from([None, 3]))
    advert = draw(st.sampled_from([1, 2, 3]) if version == 2 else st.sampled_from([0.05, 0.5, 1, 1.25, 40.95]))
    vips = [str(net.network_address + 100 + k) for k in range(draw(st.integers(1, 3)))]
    vi = {"name": "VI_1", "virtual_router_id": draw(st.integers(1, 255)), "advert_int": advert,
          "unicast": draw(st.booleans()), "virtual_ipaddress": list(vips)}
    if version is not None:
        vi["vrrp_version"] = version
    if version == 2 and draw(st.booleans()):
        vi["authentication"] = {"auth_type": "PASS", "auth_pass_env": SECRET_ENV}
    if draw(st.booleans()):
        vi["nopreempt"] = True
    real = []
    for k in range(draw(st.integers(1, n))):
        rs = {"node": f"node{k + 1}", "weight": draw(st.integers(0, 10))}
        check = draw(st.sampled_from(["TCP_CHECK", "HTTP_GET", "SSL_GET", None]))
        if check == "TCP_CHECK":
            rs["TCP_CHECK"] = {"connect_timeout": draw(st.integers(1, 5)), "retry": draw(st.integers(0, 3)),
                               "delay_before_retry": draw(st.integers(1, 3))}
        elif check in ("HTTP_GET", "SSL_GET"):
            rs[check] = draw(http_checks(check))
        # several checkers on one server (all must pass)
        for extra in draw(st.lists(st.sampled_from(["MISC_CHECK", "PING_CHECK", "DNS_CHECK", "UDP_CHECK"]),
                                   max_size=2, unique=True)):
            rs[extra] = draw(other_checks(extra))
        if draw(st.integers(0, 4)) == 0:
            rs["inhibit_on_failure"] = True
        if draw(st.integers(0, 9)) == 0:
            rs["smtp_alert"] = draw(st.booleans())
        real.append(rs)
    vs = {"vip": vips[0], "port": draw(st.sampled_from([80, 443, 8080])),
          "lb_algo": draw(st.sampled_from(["rr", "wrr", "wlc", "sh", "sed", "mh"])),
          "lb_kind": draw(st.sampled_from(["DR", "NAT"])), "delay_loop": draw(st.integers(1, 10)),
          "real_servers": real, "director_fix": draw(st.booleans())}
    if draw(st.integers(0, 4)) == 0:
        vs["protocol"] = "UDP"
    if draw(st.booleans()):
        vs["persistence_timeout"] = draw(st.integers(1, 3600))
        if draw(st.booleans()):
            vs["persistence_granularity"] = draw(st.sampled_from([48, 64, 128]) if stack != "v4"
                                                 else st.sampled_from(["255.255.255.0", "255.255.0.0"]))
    inv = {"cluster": "gen", "defaults": {"interface": "eth0"}, "nodes": nodes,
           "vrrp_instances": [vi], "virtual_servers": [vs], "install": {"method": "detect"}}
    if stack == "dual" and draw(st.integers(0, 2)) > 0:
        # dual-stack: an IPv4 instance beside the IPv6 one (the same vrid, another VRRP space), one sync group
        inv["vrrp_instances"].append({"name": "VI_4", "virtual_router_id": vi["virtual_router_id"],
                                      "virtual_ipaddress": [str(NET.network_address + 100)]})
        inv["vrrp_sync_groups"] = [{"name": "VG_1", "group": ["VI_1", "VI_4"]}]
    if draw(st.integers(0, 4)) == 0:
        inv = draw(second_interface(inv, stack))
    inv = draw(globals_drawn(inv))
    inv = draw(instance_options(inv, stack))
    inv = draw(tracking(inv))
    inv = draw(vserver_options(inv, net))
    # 0 to 2 near-valid mutations (none in half the examples: most stay valid for keepalived -t)
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        inv = draw(mutations(inv))
    return inv


def often(draw, tenths: int) -> bool:
    """True in about tenths/10 of the examples (each drawn key stays rare enough that most examples
    are still valid, and the rest refused for one rule at a time)."""
    return draw(st.integers(0, 9)) < tenths


@st.composite
def http_checks(draw, kind):
    """HTTP_GET / SSL_GET: one url inline, or several url blocks (status ranges, virtualhost)."""
    status = st.sampled_from([200, 204, 301, "200-299 301", "200-204"])
    if often(draw, 6):
        check = {"path": draw(st.sampled_from(["/", "/health", "/a/b.html"])), "status_code": draw(status)}
    else:
        paths = draw(st.lists(st.sampled_from(["/", "/health", "/ready", "/a/b.html"]), min_size=2, max_size=3,
                              unique=True))
        check = {"url": [{"path": p, "status_code": draw(status)} | ({"virtualhost": "ready.example.com"}
                                                                     if often(draw, 2) else {}) for p in paths]}
    if often(draw, 3):
        check["virtualhost"] = "www.example.com"
    if kind == "SSL_GET" and often(draw, 5):
        check["enable_sni"] = True
    return check


@st.composite
def other_checks(draw, kind):
    if kind == "MISC_CHECK":
        return [{"misc_path": "/bin/true", "misc_timeout": draw(st.integers(1, 5))}]
    if kind == "PING_CHECK":
        return {"delay_loop": draw(st.integers(1, 5))}
    if kind == "DNS_CHECK":
        return {"type": draw(st.sampled_from(["A", "AAAA", "SOA", "MX"])),
                "name": draw(st.sampled_from([".", "example.com"])), "retry": draw(st.integers(0, 2))}
    udp = {}
    if often(draw, 5):
        udp["payload"] = draw(st.sampled_from(["00 0a1b", "0a"]))
    udp["require_reply"] = draw(st.sampled_from([False, True, "00XX"]))
    if udp["require_reply"] and often(draw, 3):
        udp["min_reply_length"], udp["max_reply_length"] = 2, draw(st.sampled_from([2, 512]))
    return udp


@st.composite
def second_interface(draw, inv, stack):
    """nodes[].interfaces: every node on a second network (eth1), an instance there (its own source
    address and peers), half the time in one sync group with the first (a two-legged director)."""
    inv = copy.deepcopy(inv)
    six = stack == "v6"
    net = NET26 if six else NET2
    for k, node in enumerate(inv["nodes"]):
        node["interfaces"] = {"eth1": {"address": str(net.network_address + 11 + k)}}
    vi = {"name": "VI_IN", "interface": "eth1", "virtual_router_id": draw(st.integers(1, 255)),
          "unicast": draw(st.booleans()), "virtual_ipaddress": [str(net.network_address + 254)]}
    if not six and not vi["unicast"] and often(draw, 5):
        vi["mcast_src_ip"] = True
    inv["vrrp_instances"].append(vi)
    if "vrrp_sync_groups" not in inv and often(draw, 5):
        inv["vrrp_sync_groups"] = [{"name": "VG_2", "group": ["VI_1", "VI_IN"]}]
    return inv


@st.composite
def globals_drawn(draw, inv):
    """global_defs: alert mails, GARP timing, vrrp_skip_check_adv_addr, notify FIFOs."""
    inv = copy.deepcopy(inv)
    g = {}
    if often(draw, 3):
        g["notification_email"] = draw(st.sampled_from([["ops@example.org"], ["ops@example.org", "root"]]))
        g["smtp_server"] = draw(st.sampled_from(["127.0.0.1", "10.77.0.25 587", {"host": "::1", "port": 25}]))
        if often(draw, 5):
            g["notification_email_from"] = "keepalived@example.org"
        if often(draw, 3):
            g["smtp_connect_timeout"] = draw(st.integers(1, 60))
        if often(draw, 5):
            g["smtp_alert"] = draw(st.booleans())
        if often(draw, 3):
            inv["vrrp_instances"][0]["smtp_alert"] = draw(st.booleans())
    if often(draw, 3):
        for key, values in (("vrrp_garp_interval", [0.001, 0.5, 10]), ("vrrp_gna_interval", [0.000001, 1]),
                            ("vrrp_garp_master_delay", [0, 5, 10]), ("vrrp_garp_master_repeat", [1, 5]),
                            ("vrrp_garp_master_refresh", [0, 60]), ("vrrp_garp_master_refresh_repeat", [1, 2]),
                            ("vrrp_garp_lower_prio_delay", [0, 3]), ("vrrp_garp_lower_prio_repeat", [0, 1])):
            if often(draw, 4):
                g[key] = draw(st.sampled_from(values))
    if often(draw, 2):
        g["vrrp_skip_check_adv_addr"] = True
    if often(draw, 2):
        for fifo in draw(st.lists(st.sampled_from(["notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo"]),
                                  min_size=1, max_size=3, unique=True)):
            g[fifo] = f"/run/keepalived/{fifo}.fifo"
            if often(draw, 5):
                g[fifo + "_script"] = CMD
    if g:
        inv["global_defs"] = g
    return inv


@st.composite
def instance_options(draw, inv, stack):
    """The first instance's own priority and state per node (equal on purpose, or not), notify_stop,
    mcast_src_ip when multicast, use_vmac / vmac_xmit_base, virtual_routes."""
    inv = copy.deepcopy(inv)
    vi, names = inv["vrrp_instances"][0], [n["name"] for n in inv["nodes"]]
    if often(draw, 3):
        # (an IPv6 multicast tie is refused: its advert source is a link-local address; rarely drawn)
        if often(draw, 3) and (vi["unicast"] or stack == "v4" or often(draw, 1)):
            p = draw(st.integers(1, 254))
            vi["priority"], vi["equal_priorities"] = {n: p for n in names}, True
        else:
            prios = draw(st.lists(st.integers(1, 254), min_size=len(names), max_size=len(names), unique=True))
            vi["priority"] = dict(zip(names, prios))
        if often(draw, 5):
            top = max(vi["priority"], key=vi["priority"].get)
            vi["state"] = {n: "MASTER" if n == top and not vi.get("nopreempt") else "BACKUP" for n in names}
    if often(draw, 2):
        vi["notify_stop"] = CMD + " stop"
    if not vi["unicast"] and stack == "v4" and often(draw, 5):
        vi["mcast_src_ip"] = True if often(draw, 5) else {n["name"]: n["host"] for n in inv["nodes"]}
    if often(draw, 2):
        vi["use_vmac"] = draw(st.sampled_from([True, "vrrp.gen"]))
        if vi["unicast"] or often(draw, 5):
            vi["vmac_xmit_base"] = True
    if often(draw, 2):
        six = stack == "v6"
        vi["virtual_routes"] = draw(st.lists(st.sampled_from(
            ["fd00:99::/64 via fd00:77::1 dev eth0", "blackhole fd00:98::/64 no_track"] if six else
            ["192.168.2.0/24 via 10.77.0.1 dev eth0", "blackhole 192.168.4.0/24 no_track",
             "src 10.77.0.100 to 192.168.3.0/24 via 10.77.0.1 dev eth0 table 100"]),
            min_size=1, max_size=2, unique=True))
    return inv


@st.composite
def tracking(draw, inv):
    """track_interface, track_script with weights, vrrp_track_processes + track_process, track_files +
    track_file, on the first instance (in a sync group a weight is refused: near-valid)."""
    inv = copy.deepcopy(inv)
    vi = inv["vrrp_instances"][0]
    grouped = "vrrp_sync_groups" in inv      # keepalived ignores weights in a sync group: refused, so mostly 0
    weight = st.integers(-30, 30) if not grouped or often(draw, 1) else st.just(0)
    if often(draw, 2):
        vi["track_interface"] = [draw(st.sampled_from(["eth2", {"name": "eth2"}])),
                                 draw(st.sampled_from(["eth3", {"name": "eth3"}] if grouped else
                                                      ["eth3 weight -20", {"name": "eth3", "weight": 10}]))][
            :draw(st.integers(1, 2))]
    if often(draw, 2):
        inv["vrrp_scripts"] = {"chk_gen": {"script": "/usr/bin/true", "weight": draw(weight)}}
        vi["track_script"] = [draw(st.sampled_from(["chk_gen", {"name": "chk_gen"}] if grouped else
                                                   ["chk_gen", "chk_gen weight 5", {"name": "chk_gen", "weight": -5}]))]
    if often(draw, 2):
        inv["vrrp_track_processes"] = {"gen_proc": {"process": draw(st.sampled_from(["nginx", "keepalived"])),
                                                    "weight": draw(weight)}}
        vi["track_process"] = ["gen_proc" if grouped else draw(st.sampled_from(["gen_proc", "gen_proc weight -7"]))]
    if often(draw, 2):
        inv["track_files"] = {"gen_file": {"file": "/run/lbtk-gen-flag", "weight": draw(weight)}
                              | ({"init_file": True} if often(draw, 5) else {})}
        vi["track_file"] = ["gen_file" if grouped else draw(st.sampled_from(["gen_file", {"name": "gen_file", "weight": -3}]))]
    return inv


@st.composite
def vserver_options(draw, inv, net):
    """sorry_server (+ inhibit, method), quorum/hysteresis (+ commands), alpha/omega, and a
    virtual_server_group of a VIP range and a fwmark."""
    inv = copy.deepcopy(inv)
    vs = inv["virtual_servers"][0]
    if often(draw, 2):
        vs["sorry_server"] = {"address": str(net.network_address + 50)} | (
            {"port": vs["port"] if vs["lb_kind"] != "NAT" else 8081} if often(draw, 5) else {})
        if often(draw, 3):
            vs["sorry_server_inhibit"] = True
        if often(draw, 3):
            vs["sorry_server_lvs_method"] = "NAT"
    total = sum(rs["weight"] for rs in vs["real_servers"])
    if total and often(draw, 2):
        vs["quorum"] = draw(st.integers(1, total))
        if vs["quorum"] > 1 and often(draw, 5):
            vs["hysteresis"] = draw(st.integers(0, vs["quorum"] - 1))
        if often(draw, 5):
            vs["quorum_up"], vs["quorum_down"] = CMD + " up", CMD + " down"
    for key in ("alpha", "omega"):
        if often(draw, 2):
            vs[key] = True
    vips = inv["vrrp_instances"][0]["virtual_ipaddress"]
    if often(draw, 2):
        first = ipaddress.ip_address(vips[0])     # the instance's VIPs as one range (IPv6: the last group, hex)
        end = (int(first) & (0xFFFF if first.version == 6 else 0xFF)) + len(vips) - 1
        members = [(f"{first}-{end:x}" if first.version == 6 else f"{first}-{end}") if len(vips) > 1 else str(first)]
        members[0] += " 8082"
        if often(draw, 5):
            members.append(f"fwmark {draw(st.integers(100, 200))}")
        inv["virtual_server_groups"] = [{"name": "GEN_G", "members": members}]
        kind = draw(st.sampled_from(["DR", "NAT"]))   # NAT names the real server's port, DR takes the member's
        inv["virtual_servers"].append({"group": "GEN_G", "lb_kind": kind, "real_servers": [
            {"node": "node1", "TCP_CHECK": {"connect_port": 8082}} | ({"port": 8082} if kind == "NAT" else {})]}
            | ({"ip_family": "inet6"} if first.version == 6 else {}))
    return inv


@st.composite
def mutations(draw, inv):
    inv = copy.deepcopy(inv)
    vi, vs = inv["vrrp_instances"][0], inv["virtual_servers"][0]
    which = draw(st.integers(0, 17))
    if which == 0:
        vi["virtual_ipaddress"].append(draw(st.sampled_from(
            [inv["nodes"][0]["host"], "10.77.0.0", "10.77.0.255", "10.77.0.150/33", "10.77.0.151/24",
             vi["virtual_ipaddress"][0], "10.78.0.1", "10.77.0.152 dev eth0", "10.77.0.153 lable x"])))
    elif which == 1:
        vs["lb_algo"] = draw(ALGOS)
    elif which == 2:
        vs["real_servers"].append(copy.deepcopy(vs["real_servers"][0]))
    elif which == 3:
        vs["real_servers"][0]["port"] = draw(st.sampled_from([vs["port"], vs["port"] + 1]))
    elif which == 4:
        vi["advert_int"] = draw(st.sampled_from([0, 0.001, 0.5, 41, 255, 256, 1.005]))
    elif which == 5:
        inv["defaults"]["interface"] = draw(WORDS)
    elif which == 6:
        inv.setdefault("global_defs", {})["router_id"] = draw(st.sampled_from(
            ["{node}", "lb-{NODE}", "lb {node}", "{nod}", "x{", "r#1", "plain"]))
    elif which == 7:
        vi["virtual_router_idd"] = vi.pop("virtual_router_id", vi.pop("virtual_router_idd", 51))
    elif which == 8:
        vs["vip"] = draw(st.sampled_from(["10.77.0.200", vi["virtual_ipaddress"][0]]))
    elif which == 9:
        vs["real_servers"].append({"address": draw(st.sampled_from([vi["virtual_ipaddress"][0], "10.77.0.50"])),
                                   "weight": 1})
    elif which == 10:
        vi["authentication"] = {"auth_type": "PASS", "auth_pass_env": SECRET_ENV}
    elif which == 11:
        inv["nodes"][1]["priority"] = inv["nodes"][0]["priority"]
    elif which == 12:
        inv["vrrp_instances"].append({"name": draw(st.sampled_from(["VI_2", "VI 2", "VI_1"])),
                                      "virtual_router_id": draw(st.sampled_from([vi.get("virtual_router_id", 51), 200])),
                                      "interface": draw(st.sampled_from(["eth0", "eth1"])),
                                      "virtual_ipaddress": [draw(st.sampled_from(["10.77.0.120",
                                                                                  vi["virtual_ipaddress"][0]]))]})
    elif which == 13:
        inv.setdefault("nginx", {})["page"] = draw(st.sampled_from(["<h1>{node}</h1>", "{nodes}", "{{literal}}", "{"]))
    elif which == 14:
        inv["vrrp_scripts"] = {draw(st.sampled_from(["chk", "chk nginx", "c#k"])): {
            "script": draw(st.sampled_from(["/usr/bin/true", "/bin/echo a#b", 'say "hi"']))}}
        vi["track_script"] = list(inv["vrrp_scripts"])
    elif which == 16:   # IPv6 mistakes: a VIP of the other family, link-local, /129, multicast, v2
        what = draw(st.sampled_from(["vip", "vip", "v2", "granularity", "no_address6"]))
        if what == "vip":
            vi["virtual_ipaddress"].append(draw(st.sampled_from(
                ["fd00:77::150", "fe80::150", "fd00:77::151/129", "ff02::1", "fd00:78::1", "::1", "fd00:77::",
                 "10.77.0.150", "fd00:77::152%eth0"])))
        elif what == "v2":
            vi["vrrp_version"] = 2
        elif what == "granularity":
            vs["persistence_timeout"] = 60
            vs["persistence_granularity"] = draw(st.sampled_from([0, 129, "255.255.255.0", 64]))
        else:
            inv["nodes"][-1].pop("address6", None)
    elif which == 17:   # issue 26's keys, each with a mistake keepalived refuses or silently ignores
        rs, g = vs["real_servers"][0], inv.setdefault("global_defs", {})
        what = draw(st.sampled_from(["smtp", "fifo", "track", "vmac", "mcast", "quorum", "sorry", "udp", "route",
                                     "state", "group"]))
        if what == "smtp":
            g.pop("smtp_server", None)
            g["smtp_alert"] = True
        elif what == "fifo":
            g["notify_fifo"] = g["vrrp_notify_fifo"] = "/run/keepalived/same.fifo"
        elif what == "track":
            vi["track_script"] = [draw(st.sampled_from(["nosuch", "chk weight x", "chk weight 300"]))]
        elif what == "vmac":
            vi.pop("use_vmac", None)
            vi["vmac_xmit_base"] = True
        elif what == "mcast":
            vi["unicast"], vi["mcast_src_ip"] = True, True
        elif what == "quorum":
            vs["quorum"] = 1000
            vs["hysteresis"] = draw(st.sampled_from([1000, 2000]))
        elif what == "sorry":
            vs.pop("sorry_server", None)
            vs["sorry_server_inhibit"] = True
        elif what == "udp":
            rs["UDP_CHECK"] = {"payload": draw(st.sampled_from(["ff", "0g", "00 0"])), "min_reply_length": 9,
                               "max_reply_length": 3}
        elif what == "route":
            vi["virtual_routes"] = [draw(st.sampled_from(["blackhole 192.168.4.0/24", "192.168.2.0/24 via",
                                                          "fd00:99::/64 via 10.77.0.1 dev eth0"]))]
        elif what == "state":
            vi["nopreempt"] = True
            vi["state"] = {inv["nodes"][0]["name"]: "MASTER"}
        else:
            inv["virtual_servers"].append({"group": "NOSUCH", "real_servers": [{"node": "node1"}]})
    else:
        vs["lb_kind"] = draw(st.sampled_from(["TUN", "DSR"]))
    return inv


def entries(block) -> list[str]:
    """A block of `NAME [weight N]` lines (track_*), each line as written."""
    return [" ".join([c.keyword, *c.args]) for c in block.children] if block else []


def read_back(conf: str, inv, node, planned) -> None:
    """keepalived.conf, read as keepalived reads it, says what the inventory says."""
    c = parse_conf(conf)
    g, gd = inv.global_defs, c.find("global_defs")[0]
    emails = gd.first("notification_email")
    assert (emails.words() if emails else []) == g.notification_email
    assert gd.first("smtp_server") is None if g.smtp_server is None else \
        gd.first("smtp_server").args == [g.smtp_server.host, str(g.smtp_server.port)]
    assert (gd.first("vrrp_skip_check_adv_addr") is not None) == g.vrrp_skip_check_adv_addr
    for key in ("vrrp_garp_master_delay", "vrrp_garp_master_repeat", "vrrp_garp_master_refresh",
                "notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo"):
        assert gd.value(key) == (None if getattr(g, key) is None else str(getattr(g, key))), key
    assert [(g.args[0], g.first("group").words()) for g in c.find("vrrp_sync_group")] == sync_groups(inv)
    blocks = {b.args[0]: b for b in c.find("vrrp_instance")}
    assert set(blocks) == {p.name for p in planned}
    for p in planned:
        b, vi = blocks[p.name], p.source
        iface = inv.interface_of(node, vi)
        assert b.value("interface") == iface
        assert b.value("virtual_router_id") == str(p.virtual_router_id)
        assert b.value("priority") == str(p.priorities[node.name])
        assert b.value("state") == p.states[node.name]
        vips = b.first("virtual_ipaddress").words()
        excluded = b.first("virtual_ipaddress_excluded")
        assert vips + (excluded.words() if excluded else []) == [v.split()[0] for v in p.vips]
        family = vi.family
        assert b.value("version") == ("3" if vi.vrrp_version == 3 else None)
        if vi.unicast:   # the addresses on the instance's interface (nodes[].interfaces, else the node's)
            assert b.first("unicast_peer").words() == [inv.ip_on(n, inv.interface_of(n, vi), family)
                                                       for n in inv.nodes if n.name != node.name]
            assert b.value("unicast_src_ip") == inv.ip_on(node, iface, family)
        else:
            assert b.first("unicast_peer") is None
            # true: the node's own address on the instance's interface
            assert b.value("mcast_src_ip") == (None if not vi.mcast_src_ip else inv.ip_on(node, iface, family)
                                               if vi.mcast_src_ip is True else vi.mcast_src_ip.get(node.name))
        for field in ("track_interface", "track_script", "track_process", "track_file"):
            assert entries(b.first(field)) == [t.rendered() for t in getattr(vi, field)], field
        assert (b.value("notify_stop") or None) == vi.notify_stop
        assert (b.first("use_vmac") is not None) == (vi.use_vmac is not False)
        assert (b.first("vmac_xmit_base") is not None) == vi.vmac_xmit_base
        routes = b.first("virtual_routes")
        assert len(routes.children if routes else []) == len(vi.virtual_routes)
    vss = c.find("virtual_server")
    assert len(vss) == len(inv.virtual_servers)
    for k, (blk, vs) in enumerate(zip(vss, inv.virtual_servers)):
        fw = inv.fwmark_of(k)
        assert blk.args == (["group", vs.group] if vs.group else ["fwmark", str(fw)] if fw else [vs.vip, str(vs.port)])
        assert blk.value("lb_algo") == vs.lb_algo and blk.value("lb_kind") == vs.lb_kind
        sorry = vs.sorry_server     # a port unless DR/TUN forwards by fwmark (keepalived would clear it)
        port = sorry and (sorry.port or vs.port) and (not fw or (vs.sorry_server_lvs_method or vs.lb_kind) == "NAT")
        assert (blk.first("sorry_server").args if blk.first("sorry_server") else None) == \
            (None if sorry is None else [sorry.address, *([str(sorry.port or vs.port)] if port else [])])
        for key in ("quorum", "hysteresis"):
            assert blk.value(key) == (None if getattr(vs, key) is None else str(getattr(vs, key))), key
        for key in ("alpha", "omega", "sorry_server_inhibit"):
            assert (blk.first(key) is not None) == getattr(vs, key), key
        rss = blk.find("real_server")
        assert len(rss) == len(vs.real_servers)
        for r, rs in zip(rss, vs.real_servers):
            assert r.args[0] == inv.real_server_address(rs, vs)
            if not fw and not vs.group:
                assert r.args[1] == str(rs.port or vs.port)
            assert r.value("weight") == str(rs.weight)
            assert (r.first("inhibit_on_failure") is not None) == rs.inhibit_on_failure
            # the checkers, kind by kind in keepalived.conf's order (an SMTP_CHECK's hosts are one each)
            assert [x.keyword for x in r.children if x.keyword in CHECKERS] == \
                [kind for kind, want in rs.checkers for _ in (want.per_host() if kind == "SMTP_CHECK" else [want])]
            for kind in CHECKERS:
                for want, got in zip(getattr(rs, kind), r.find(kind)):
                    if kind in ("TCP_CHECK", "HTTP_GET", "SSL_GET"):
                        assert got.value("connect_timeout") == str(want.connect_timeout)
                        assert got.value("retry") == str(want.retry)
                    if kind in ("HTTP_GET", "SSL_GET"):
                        urls = got.find("url")
                        assert [u.value("path") for u in urls] == [u.path for u in want.urls]
                        assert [" ".join(u.first("status_code").args) if u.first("status_code") else None
                                for u in urls] == [None if u.status_code is None else str(u.status_code)
                                                   for u in want.urls]
                    if kind == "MISC_CHECK":
                        assert got.value("misc_timeout") == str(want.misc_timeout)
                    if kind == "PING_CHECK":
                        assert got.value("delay_loop") == str(want.delay_loop)
                    if kind == "DNS_CHECK":
                        assert (got.value("type"), got.value("name")) == (want.type, want.name)


@seed(20261201)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("LBTK_HYPOTHESIS_RANDOM") != "1",
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=inventories(), secret=SECRETS)
def test_one_line_or_keepalived_accepts_and_means_it(data, secret):
    os.environ[SECRET_ENV] = secret
    try:
        check_example(data)      # random secrets ("0", "a") are no one's to mask: nothing is registered
    finally:
        os.environ.pop(SECRET_ENV, None)


def check_example(data) -> None:
    try:
        inv = parse(copy.deepcopy(data), SOURCE)
        secrets = resolve_all(inv, SOURCE)
    except InventoryError as e:
        event("refused in one line per problem")
        assert e.lines, e
        for line in e.lines:
            assert "\n" not in line and LINE.match(line), line
        return
    event("accepted: keepalived -t and read back")
    event("accepted, families " + "+".join(f"IPv{f}" for f in sorted({vi.family for vi in inv.vrrp_instances})))
    files = render_all(inv, secrets, ASSUMED)
    # deploy reads the paths of one render (managed_paths): a fact may empty a file, never name another
    without_ipvs = render_all(inv, secrets, RenderFacts(ipvs=False))
    assert all([f.path for f in files[n]] == [f.path for f in without_ipvs[n]] for n in files)
    planned = plan(inv)
    election_warnings(inv)     # `inv check`'s warnings about ties weights make: lines, never a traceback
    for node in inv.nodes:
        conf = next(f.content for f in files[node.name] if f.path == CONF)
        read_back(conf, inv, node, planned)
        if os.geteuid() == 0:
            r = keepalived_check(inv, node, conf)
            assert r.exit_code == 0 and not r.messages, (node.name, r.messages, data)
