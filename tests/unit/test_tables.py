"""The tables `inv ipvs`, `inv addrs`, `inv vrrp` (and verify, and `inv watch`) draw, rendered from
CAPTURED tool output only, compared with reviewed golden copies in tests/golden/tables/; plus the
parts behind them: keepalived's JSON parser, the split-brain cause, flapping, and the watch's fold.

Every NodeState here is built as the toolkit builds it on a live node: each fact's output is framed
as fabfile.infra.observe.script frames it and handed to observe.parse_state (tests/unit/core_fixtures.py).
The outputs are the captures in tests/fixtures/:
- ipvsadm/L_n.txt, ipvsadm/L_n_rate.txt and ip_addr/guest_*.txt: the kernel-tier director fx-dir
  (scripts/capture-fixtures/guest-ipvsadm.sh). FX_DATA below is the inventory of that cluster: the
  services ipvsadm was given there, with two deliberate differences so the tables show what a
  problem looks like: the inventory wants 10.190.0.131:8080 at weight 1 (the capture has 0) and a
  third real server 10.190.0.13 on :80 (the capture has none). The IPv6 services are not in it:
  the inventory model is IPv4-only, so they are "not in the inventory".
- keepalived_json/*: the lab (inventories/lab.yaml), healthy and in a split brain
  (scripts/capture-fixtures/keepalived_json.sh).

After an intended change of a table: LBTK_UPDATE_GOLDEN=1 pytest tests/unit/test_tables.py, then
review the diff of tests/golden/tables/ like code (and look at the files: they must read right).
"""
from __future__ import annotations

import difflib
import functools
import io
import json
import os
import re
import time
from dataclasses import replace

import pytest
from rich.console import Console

from fabfile.infra import facts as F
from fabfile import output
from fabfile.core.diagnose import flapping, split_brain_cause
from fabfile.infra.facts import NodeState
from fabfile.model.loading import load, parse
from fabfile.infra.observe import parse_state
from fabfile.parsers import ParseError, journal, keepalived_json
from fabfile.parsers.ipvsadm import NO_IPVS_MARK
from fabfile.parsers.lbtk import LiveFile
from fabfile.core.render import ASSUMED, render_node
from fabfile.core.render.keepalived import CONF
from fabfile.model.secrets import mask, resolve_all
from fabfile.tasks.tables import TABLES
from fabfile.views import cluster
from fabfile.views import watch as watch_view
from fabfile.ops.watch import KEEP_TRANSITIONS, Watcher

from .core_fixtures import ROOT, TOKEN, addrs_json, file_listing, frame, read, units_output

GOLDEN = ROOT / "tests" / "golden" / "tables"
UPDATE = os.environ.get("LBTK_UPDATE_GOLDEN") == "1"
FORMATS = ("plain", "markdown", "rich")

FX_VIP = "10.190.0.100"
LAB_VIP = "10.189.0.100"
UNREACHABLE = "rs3 (10.190.0.13): ssh connect failed: timed out"   # what observe() records for it
HEALTHY = {"node1": "healthy_node1.json", "node2": "healthy_node2.json"}
SPLIT = {n: f"split_auth_{n}.json" for n in ("node1", "node2", "node3")}


def dump(name: str) -> dict:
    """A keepalived JSON capture read with the json module (the expected values of the tests)."""
    return json.loads(read(f"keepalived_json/{name}"))[0]


def auth_failures(name: str) -> int:
    s = dump(name)["stats"]
    return s["auth_failure"] + s["authtype_mismatch"] + s["invalid_authtype"]


def taken_at(*names: str) -> float:
    """keepalived's dump does not say when it was taken: 3 s after its newest transition."""
    return round(max(dump(n)["data"]["last_transition"] for n in names)) + 3.0


NOW_HEALTHY = taken_at(*HEALTHY.values())
NOW_SPLIT = taken_at(*SPLIT.values())


# ================================================================== inventories
def _rs(*nodes: str) -> list[dict]:
    return [{"node": n} for n in nodes]


FX_DATA = {
    "cluster": "fx",
    "defaults": {"interface": "eth0"},
    "nodes": [{"name": "dir", "host": "10.190.0.2", "priority": 100, "prefixlen": 25},
              {"name": "rs1", "host": "10.190.0.11", "priority": 90, "prefixlen": 25},
              {"name": "rs2", "host": "10.190.0.12", "priority": 80, "prefixlen": 25},
              {"name": "rs3", "host": "10.190.0.13", "priority": 70, "prefixlen": 25}],
    "vrrp_instances": [{"name": "VI_1", "virtual_router_id": 51, "virtual_ipaddress": [FX_VIP]}],
    "virtual_servers": [   # guest-ipvsadm.sh's `ipvsadm -A/-a` lines, as an inventory says them
        {"vip": FX_VIP, "port": 80, "director_fix": False, "real_servers": _rs("rs1", "rs2", "rs3")},  # + rs3
        {"vip": FX_VIP, "port": 82, "lb_algo": "wrr", "director_fix": False,
         "real_servers": [{"node": "rs1", "weight": 3}, {"node": "rs2", "weight": 2}, {"node": "rs3", "weight": 1}]},
        {"vip": FX_VIP, "port": 83, "lb_kind": "TUN", "real_servers": _rs("rs3")},
        {"vip": FX_VIP, "port": 84, "lb_kind": "NAT", "real_servers": _rs("dir")},
        {"vip": FX_VIP, "port": 85, "lb_algo": "sh", "director_fix": False, "real_servers": _rs("rs1", "rs2")},
        {"vip": FX_VIP, "port": 443, "persistence_timeout": 60, "persistence_granularity": "255.255.255.0",
         "director_fix": False, "real_servers": _rs("rs1", "rs2")},
        {"vip": FX_VIP, "port": 444, "persistence_timeout": 360, "director_fix": False, "real_servers": _rs("rs3")},
        {"vip": FX_VIP, "port": 8080, "lb_algo": "wlc", "lb_kind": "NAT",     # .131: weight 1 (capture: 0)
         "real_servers": [{"address": "10.190.0.130"}, {"address": "10.190.0.131"}]},
        {"vip": FX_VIP, "port": 9000, "lb_kind": "NAT", "real_servers": [{"address": "10.190.0.130"}]},
        {"vip": FX_VIP, "port": 53, "protocol": "UDP", "director_fix": False, "real_servers": _rs("rs1", "rs2")},
        {"vip": FX_VIP, "port": 514, "protocol": "UDP", "director_fix": False, "real_servers": _rs("rs3")},
        {"fwmark": 1, "port": 81, "persistence_timeout": 300, "real_servers": _rs("rs1", "rs2")},
    ],
}


@pytest.fixture(scope="module")
def fx():
    return parse(FX_DATA, "fx.yaml")


@pytest.fixture(scope="module")
def lab():
    return load("lab")[0]


# ================================================================== NodeStates from captures
# the units fact (`systemctl show`) from captured blocks: every unit running and enabled, or
# keepalived stopped and the rest running (tests/unit/core_fixtures.units_output)
ACTIVE_ALL = units_output({u: "active" for u in F.UNITS}, {u: "enabled" for u in F.UNITS})
ACTIVE_KA_STOPPED = units_output({u: "inactive" if u == "keepalived" else "active" for u in F.UNITS},
                                 {u: "enabled" for u in F.UNITS})


def observed(node: str, facts, outputs: dict[str, str], rc: dict[str, int] | None = None) -> NodeState:
    """One node's round trip of `facts` (each fact's stdout given), parsed by observe.parse_state."""
    rc = rc or {}
    outputs = {"runtime": "", **outputs}    # no runtime record: the node never had a drain
    return parse_state(node, facts, frame({f.name: (outputs[f.name], "", rc.get(f.name, 0)) for f in facts}), TOKEN)


def unreachable(node: str) -> NodeState:
    return NodeState(node, reachable=False, error=UNREACHABLE.replace("rs3", node))


def ipvs_fx() -> dict[str, NodeState]:
    """`inv ipvs` over the fx cluster: the director's table and rates; rs3 does not answer."""
    facts = TABLES["ipvs"][0]
    return {"dir": observed("dir", facts, {"ipvs": read("ipvsadm/L_n.txt"), "ipvs_rate": read("ipvsadm/L_n_rate.txt")}),
            "rs3": unreachable("rs3")}


def ipvs_lab() -> dict[str, NodeState]:
    """`inv ipvs --env lab`: the lab's kernel has no IPVS, the fact prints its mark on every node."""
    facts = TABLES["ipvs"][0]
    return {n: observed(n, facts, {"ipvs": NO_IPVS_MARK + "\n", "ipvs_rate": NO_IPVS_MARK + "\n"})
            for n in ("node1", "node2", "node3")}


def addrs_fx() -> dict[str, NodeState]:
    """`inv addrs` over the fx cluster: the director (VIP on eth0), a DR real server with the VIP
    on lo (fx-rs1's `ip -j addr show dev lo`), one without it (fx-dir's lo entry of the same
    capture, as `ip -j addr show dev lo` prints it: 127.0.0.1 and ::1 only), rs3 not answering."""
    facts = TABLES["addrs"][0]
    bare_lo = json.dumps([i for i in json.loads(read("ip_addr/guest_director.txt")) if i["ifname"] == "lo"])
    return {"dir": observed("dir", facts, {"addrs": read("ip_addr/guest_director.txt")}),
            "rs1": observed("rs1", facts, {"addrs": read("ip_addr/guest_realserver_lo.txt")}),
            "rs2": observed("rs2", facts, {"addrs": bare_lo + "\n"}),
            "rs3": unreachable("rs3")}


def vrrp_state(node: str, dump: str, active: str = ACTIVE_ALL) -> NodeState:
    return observed(node, TABLES["vrrp"][0], {"units": active, "vrrp": read(f"keepalived_json/{dump}")})


def vrrp_healthy() -> dict[str, NodeState]:
    """The healthy lab captures (node1 MASTER, node2 BACKUP) and node3 with keepalived stopped."""
    return {"node1": vrrp_state("node1", "healthy_node1.json"), "node2": vrrp_state("node2", "healthy_node2.json"),
            "node3": vrrp_state("node3", "not_running_node3.txt", ACTIVE_KA_STOPPED)}


def vrrp_split() -> dict[str, NodeState]:
    """The split brain captures: node2's auth_pass changed by hand, node1 and node2 both MASTER."""
    return {n: vrrp_state(n, f"split_auth_{n}.json") for n in ("node1", "node2", "node3")}


SCENARIOS = {  # golden name -> (inventory fixture, states, rows(inv, states), draw)
    "ipvs_fx": ("fx", ipvs_fx, cluster.ipvs_rows, cluster.show_ipvs),
    "ipvs_lab": ("lab", ipvs_lab, cluster.ipvs_rows, cluster.show_ipvs),
    "addrs_fx": ("fx", addrs_fx, cluster.addr_rows, cluster.show_addrs),
    "vrrp_lab_healthy": ("lab", vrrp_healthy, functools.partial(cluster.vrrp_rows, now=NOW_HEALTHY),
                         cluster.show_vrrp),
    "vrrp_lab_split": ("lab", vrrp_split, functools.partial(cluster.vrrp_rows, now=NOW_SPLIT), cluster.show_vrrp),
}


# ================================================================== drawing
def terminal() -> Console:
    """A rich Console as on a terminal, 200 columns, without colour codes (styles are checked on
    the rich Table itself)."""
    return Console(file=io.StringIO(), force_terminal=True, width=200, color_system=None)


def drawn(draw, rows, fmt: str, monkeypatch, capsys) -> tuple[str, list[output.Table]]:
    """Everything `draw(rows, fmt)` prints (rich: on terminal()), and the output.Tables it drew."""
    tables: list[output.Table] = []
    real_show = output.show
    con = terminal()

    def show(t, f=None, console=None):
        tables.append(t)
        real_show(t, f, console=con if f == "rich" else console)

    with monkeypatch.context() as m:
        m.setattr(output, "show", show)
        if fmt == "rich":
            m.setattr(output, "say", lambda line: con.file.write(mask(line) + "\n"))
        capsys.readouterr()
        draw(rows, fmt)
        text = capsys.readouterr().out
    return (con.file.getvalue() if fmt == "rich" else text), tables


def golden(name: str, text: str) -> None:
    p = GOLDEN / name
    if UPDATE:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    assert p.exists(), f"no golden file {p.relative_to(ROOT)} (LBTK_UPDATE_GOLDEN=1 writes it)"
    want = p.read_text()
    if text != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True), "golden", "now"))
        raise AssertionError(f"{p.relative_to(ROOT)} differs (LBTK_UPDATE_GOLDEN=1 rewrites it):\n{diff}")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_table_matches_golden(name, fmt, request, monkeypatch, capsys):
    inv_name, states_of, rows_of, draw = SCENARIOS[name]
    inv = request.getfixturevalue(inv_name)
    rows = rows_of(inv, states_of())
    text, _ = drawn(draw, rows, fmt, monkeypatch, capsys)
    assert text.strip(), "the table printed something"
    golden(f"{name}.{fmt}.txt", text)


# ================================================================== the numbers in the cells
def _fixture_ipvs() -> tuple[dict, dict]:
    """L_n.txt and L_n_rate.txt read line by line (independently of the toolkit's parser):
    {(service, endpoint): (forward, weight, ActiveConn, InActConn)}, {(service, endpoint): (CPS, InPPS, OutPPS, InBPS, OutBPS)}."""
    def service(line: str) -> str:
        proto, rest = line.split(None, 1)
        words = rest.split()
        return f"FWM {words[0]}" + (" IPv6" if proto == "FWM" and words[1:2] == ["IPv6"] else "") \
            if proto == "FWM" else f"{proto} {words[0]}"

    table, rates, svc = {}, {}, None
    for ln in read("ipvsadm/L_n.txt").splitlines()[3:]:
        if ln.startswith("  ->"):
            ep, fwd, w, a, i = ln.split()[1:]
            table[(svc, ep)] = (fwd, int(w), int(a), int(i))
        else:
            svc = service(ln)
    for ln in read("ipvsadm/L_n_rate.txt").splitlines()[3:]:
        if ln.startswith("  ->"):
            ep, *nums = ln.split()[1:]
            rates[(svc, ep)] = tuple(int(x) for x in nums)
        else:
            svc = service(re.sub(r"(\s+\d+){5}\s*$", "", ln))
    return table, rates


def test_ipvs_rows_json_and_cells_carry_the_captured_numbers(fx, monkeypatch, capsys):
    table, rates = _fixture_ipvs()
    assert len(table) == 23 and set(rates) == set(table)
    rows = cluster.ipvs_rows(fx, ipvs_fx())
    as_json = json.loads(json.dumps(rows))            # what `inv ipvs --json` prints
    assert as_json == rows
    _, tables = drawn(cluster.show_ipvs, rows, "plain", monkeypatch, capsys)
    assert [t.title for t in tables] == ["IPVS on dir (ipvsadm -L -n, --rate)", "IPVS on rs3 (ipvsadm -L -n, --rate)"]
    mine = [r for r in as_json if r["node"] == "dir"]
    assert len(tables[0].rows) == len(mine)
    col = {c: i for i, c in enumerate(tables[0].columns)}
    seen = set()
    for r, cells in zip(mine, tables[0].rows):
        assert cells[col["service"]] == r["service"] and cells[col["real server"]] == (r["real_server"] or "-")
        if r["weight"] is None:                      # a real server the inventory wants, not in the pool
            continue
        key = (r["service"], r["real_server"])
        seen.add(key)
        fwd, weight, active, inact = table[key]
        assert (r["forward"], r["weight"], r["active_conn"], r["inact_conn"]) == (fwd, weight, active, inact)
        assert tuple(r[f] for f in cluster.RATE_FIELDS) == rates[key]
        assert (cells[col["ActiveConn"]], cells[col["InActConn"]]) == (str(active), str(inact))
        assert [cells[col[c]] for c in ("CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")] == [str(x) for x in rates[key]]
        assert cells[col["weight"]] == (str(weight) if r["wanted_weight"] in (None, weight)
                                        else f"{weight} (want {r['wanted_weight']})")
    assert seen == set(table), "every captured real server has its row"
    by = {(r["service"], r["real_server"]): r for r in mine}
    # the port-80 connection held open during the capture, and the 300 short ones split by rr
    assert by[(f"TCP {FX_VIP}:80", "10.190.0.12:80")]["active_conn"] == 1
    assert [by[(f"TCP {FX_VIP}:80", f"10.190.0.1{i}:80")]["cps"] for i in (1, 2)] == [9, 9]
    assert by[(f"TCP {FX_VIP}:9000", "10.190.0.130:9000")]["outbps"] == 11259573


def test_ipvs_table_shows_what_differs_from_the_inventory(fx, monkeypatch, capsys):
    rows = cluster.ipvs_rows(fx, ipvs_fx())
    _, tables = drawn(cluster.show_ipvs, rows, "plain", monkeypatch, capsys)
    t = tables[0]
    rt = output.rich_table(t)
    col = {c: i for i, c in enumerate(t.columns)}
    by = {(c[col["service"]], c[col["real server"]]): (c, ok, rrow.style) for c, ok, rrow in zip(t.rows, t.ok, rt.rows)}
    # weight differs from the inventory: "0 (want 1)", the row red
    cells, ok, style = by[(f"TCP {FX_VIP}:8080", "10.190.0.131:8080")]
    assert cells[col["weight"]] == "0 (want 1)" and cells[col["problem"]] == "weight 0, inventory wants 1"
    assert ok is False and style == "bold red"
    # a real server the inventory wants that is not in the pool: its row says so, red
    cells, ok, style = by[(f"TCP {FX_VIP}:80", "10.190.0.13:80")]
    assert cells[col["problem"]] == "missing from the pool (its health check fails?)"
    assert ok is False and style == "bold red"
    assert next(r for r in rows if r["real_server"] == "10.190.0.13:80")["wanted_weight"] == 1
    # services the (IPv4-only) inventory does not have; a healthy row is green
    for key in (("TCP [fd00:190::100]:80", "[fd00:190::11]:80"), ("FWM 2 IPv6", "[fd00:190::13]:0")):
        assert by[key][0][col["problem"]] == "not in the inventory" and by[key][2] == "bold red"
    cells, ok, style = by[(f"TCP {FX_VIP}:82", "10.190.0.11:82")]
    assert (cells[col["weight"]], cells[col["scheduler"]], ok, style) == ("3", "wrr", True, "green")
    assert by[(f"TCP {FX_VIP}:85", "10.190.0.11:85")][0][col["scheduler"]] == "sh sh-fallback sh-port"
    assert by[(f"TCP {FX_VIP}:443", "10.190.0.11:443")][0][col["scheduler"]] == \
        "rr persistent 60 mask 255.255.255.0"
    # rs3 did not answer: one red row naming why
    assert tables[1].rows == [["-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", f"unreachable: {UNREACHABLE}"]]
    assert tables[1].ok == [False]


def test_ipvs_table_keeps_ipv6_addresses_on_a_terminal(fx, monkeypatch, capsys):
    """rich would read `[fd00:190::100]` as a markup tag and drop it: the cells are escaped."""
    text, _ = drawn(cluster.show_ipvs, cluster.ipvs_rows(fx, ipvs_fx()), "rich", monkeypatch, capsys)
    assert "TCP [fd00:190::100]:80" in text and "[fd00:190::13]:0" in text


def test_addr_rows_json_and_cells_carry_the_captured_addresses(fx, monkeypatch, capsys):
    rows = cluster.addr_rows(fx, addrs_fx())
    assert json.loads(json.dumps(rows)) == rows
    captured = {(i["ifname"]): [f"{a['local']}/{a['prefixlen']}" for a in i["addr_info"]]
                for i in json.loads(read("ip_addr/guest_director.txt"))}
    d = {r["interface"]: r for r in rows if r["node"] == "dir"}
    assert {k: v["addresses"] for k, v in d.items()} == captured
    assert d["eth0"]["vips"] == [FX_VIP] and d["lo"]["vips_on_lo"] == [] and d["lo"]["ok"]
    _, tables = drawn(cluster.show_addrs, rows, "plain", monkeypatch, capsys)
    t = tables[0]
    rt = output.rich_table(t)
    assert len(t.rows) == len(rows)
    for r, cells, ok, rrow in zip(rows, t.rows, t.ok, rt.rows):
        assert cells[:4] == [r["node"], r["interface"] or "-", r["state"], " ".join(r["addresses"]) or "-"]
        assert cells[4:6] == [" ".join(r["vips"]), " ".join(r["vips_on_lo"])]
        assert rrow.style == {True: "green", False: "bold red", None: None}[ok]
    states = {(c[0], c[1]): (c, ok) for c, ok in zip(t.rows, t.ok)}
    assert states[("dir", "eth0")][1] is True                       # holds the VIP: green
    assert states[("rs1", "lo")][0][5] == FX_VIP and states[("rs1", "lo")][1] is None
    cells, ok = states[("rs2", "lo")]                                 # DR real server, no VIP on lo
    assert cells[6] == f"DR real server without {FX_VIP} on lo" and ok is False
    cells, ok = states[("rs3", "-")]
    assert cells[2] == "UNREACHABLE" and cells[6] == UNREACHABLE and ok is False


@pytest.mark.parametrize("scenario", ["vrrp_lab_healthy", "vrrp_lab_split"])
def test_vrrp_rows_json_and_cells_carry_keepalived_numbers(scenario, lab, monkeypatch, capsys):
    _, states_of, rows_of, _ = SCENARIOS[scenario]
    rows = rows_of(lab, states_of())
    assert json.loads(json.dumps(rows)) == rows
    _, tables = drawn(cluster.show_vrrp, rows, "plain", monkeypatch, capsys)
    t = tables[0]
    col = {c: i for i, c in enumerate(t.columns)}
    for r, cells in zip(rows, t.rows):
        if r["instance"] is None:
            assert r["node"] == "node3" and scenario == "vrrp_lab_healthy"
            assert cells[col["state"]] == "-" and cells[col["problem"]] == "keepalived not running"
            continue
        d = dump({"vrrp_lab_healthy": HEALTHY, "vrrp_lab_split": SPLIT}[scenario][r["node"]])
        s = d["stats"]
        assert r["state"] == {1: "BACKUP", 2: "MASTER"}[d["data"]["state"]] == cells[col["state"]]
        assert r["priority"] == d["data"]["effective_priority"] == int(cells[col["priority"]])
        assert r["advert_rcvd"] == s["advert_rcvd"] == int(cells[col["adverts in"]])
        assert r["advert_sent"] == s["advert_sent"] == int(cells[col["adverts out"]])
        auth = s["auth_failure"] + s["authtype_mismatch"] + s["invalid_authtype"]
        assert r["auth_errors"] == auth == int(cells[col["auth errors"]])
        assert cells[col["prio-0 in/out"]] == f"{s['pri_zero_rcvd']}/{s['pri_zero_sent']}"
        assert r["become_master"] == s["become_master"] == int(cells[col["became master"]])
        now = NOW_HEALTHY if scenario == "vrrp_lab_healthy" else NOW_SPLIT
        assert r["since_s"] == round(now - d["data"]["last_transition"], 1)


def test_vrrp_split_rows_are_red_and_say_why(lab, monkeypatch, capsys):
    rows = cluster.vrrp_rows(lab, vrrp_split(), now=NOW_SPLIT)
    auth = [auth_failures(SPLIT[n]) for n in ("node1", "node2", "node3")]
    assert all(auth), "every node counted adverts failing authentication"
    assert [(r["node"], r["state"], r["auth_errors"]) for r in rows] == \
        [("node1", "MASTER", auth[0]), ("node2", "MASTER", auth[1]), ("node3", "BACKUP", auth[2])]
    _, tables = drawn(cluster.show_vrrp, rows, "plain", monkeypatch, capsys)
    t = tables[0]
    col = {c: i for i, c in enumerate(t.columns)}
    assert [c[col["auth errors"]] for c in t.rows] == [str(n) for n in auth]
    # the two MASTERs of VI_1 are the problem, red, saying so; node3 (BACKUP) is not
    styles = [r.style for r in output.rich_table(t).rows]
    assert styles[:2] == ["bold red", "bold red"] and styles[2] != "bold red"
    assert all("split brain" in c[col["problem"]] for c in t.rows[:2])


def test_vrrp_healthy_rows_master_green_backup_neutral_stopped_red(lab, monkeypatch, capsys):
    rows = cluster.vrrp_rows(lab, vrrp_healthy(), now=NOW_HEALTHY)
    assert [(r["node"], r["state"], r["ok"]) for r in rows] == \
        [("node1", "MASTER", True), ("node2", "BACKUP", True), ("node3", None, False)]
    _, tables = drawn(cluster.show_vrrp, rows, "plain", monkeypatch, capsys)
    assert [r.style for r in output.rich_table(tables[0]).rows] == ["green", None, "bold red"]


# ================================================================== keepalived's JSON
def test_keepalived_json_healthy_master_and_backup():
    (m,) = keepalived_json.parse_keepalived_json(read("keepalived_json/healthy_node1.json"))
    (b,) = keepalived_json.parse_keepalived_json(read("keepalived_json/healthy_node2.json"))
    assert (m.instance, m.state, m.priority, m.base_priority, m.vrid, m.interface) == \
        ("VI_1", "MASTER", 100, 100, 51, "eth0")
    assert (b.instance, b.state, b.priority, b.base_priority, b.vrid, b.interface) == \
        ("VI_1", "BACKUP", 90, 90, 51, "eth0")
    for v, name in ((m, "healthy_node1.json"), (b, "healthy_node2.json")):
        d, s = dump(name)["data"], dump(name)["stats"]
        assert (v.advert_sent, v.advert_rcvd, v.become_master, v.release_master, v.pri_zero_rcvd,
                v.pri_zero_sent) == (s["advert_sent"], s["advert_rcvd"], s["become_master"], s["release_master"],
                                     s["pri_zero_rcvd"], s["pri_zero_sent"])
        assert v.last_transition == d["last_transition"] and v.auth_errors == 0 and v.other_errors == 0
    assert m.advert_sent > 0 and m.become_master >= 1
    assert m.as_dict()["state"] == "MASTER"


def test_keepalived_json_split_brain_counters():
    views = {n: keepalived_json.parse_keepalived_json(read(f"keepalived_json/split_auth_{n}.json"))[0]
             for n in ("node1", "node2", "node3")}
    assert {n: v.state for n, v in views.items()} == {"node1": "MASTER", "node2": "MASTER", "node3": "BACKUP"}
    assert {n: v.auth_errors for n, v in views.items()} == {n: auth_failures(f) for n, f in SPLIT.items()}
    assert all(v.auth_errors > 0 for v in views.values())
    assert views["node2"].become_master == dump(SPLIT["node2"])["stats"]["become_master"] >= 2   # took it twice
    assert views["node3"].advert_sent == 0 and views["node3"].advert_rcvd > 0                  # never MASTER


def test_keepalived_json_not_running_no_json_and_truncated_are_unavailable():
    assert keepalived_json.parse_keepalived_json(read("keepalived_json/not_running_node3.txt")) is None
    assert keepalived_json.parse_keepalived_json(keepalived_json.NO_JSON + "\n") is None
    assert keepalived_json.parse_keepalived_json("") is None
    text = read("keepalived_json/split_auth_node2.json")
    for cut in (1, len(text) // 3, len(text) // 2, len(text) - 3):
        assert keepalived_json.parse_keepalived_json(text[:cut]) is None, cut


def test_keepalived_json_wrong_shapes_are_parse_errors():
    item = json.loads(read("keepalived_json/healthy_node1.json"))[0]
    with pytest.raises(ParseError, match="expected a list"):
        keepalived_json.parse_keepalived_json(json.dumps(item))
    with pytest.raises(ParseError, match="lacks data/stats"):
        keepalived_json.parse_keepalived_json(json.dumps([{"data": item["data"]}]))
    with pytest.raises(ParseError, match="'advert_rcvd' is a string, not a number"):
        keepalived_json.parse_keepalived_json(json.dumps([{**item, "stats": {**item["stats"], "advert_rcvd": "x"}}]))


# ================================================================== diagnose
def _lab_secrets(monkeypatch, lab) -> dict[str, str]:
    monkeypatch.setenv("LAB_VRRP_PASS", "lab3cr3t")
    return resolve_all(lab, "lab")


def _desired(lab, secrets) -> dict[str, str]:
    return {n.name: next(f.content for f in render_node(lab, n.name, secrets, ASSUMED) if f.path == CONF)
            for n in lab.nodes}


def split_states(lab, desired: dict[str, str], live: dict[str, str] | None) -> dict[str, NodeState]:
    """verify's view of the split-brain captures: keepalived's dump, and (live given) each node's
    keepalived.conf as the files() fact lists it."""
    out = {}
    for n in ("node1", "node2", "node3"):
        facts = [F.KEEPALIVED_VIEW] + ([F.files([CONF])] if live is not None else [])
        outputs = {"vrrp": read(f"keepalived_json/split_auth_{n}.json")}
        if live is not None:
            outputs["files"] = file_listing({CONF: LiveFile(0o600, live[n].encode())})
        out[n] = observed(n, facts, outputs)
    return out


def _counted() -> str:
    return ", ".join(f"{n} {auth_failures(f)}" for n, f in SPLIT.items() if auth_failures(f))


def test_split_brain_cause_names_node2_whose_auth_pass_was_changed(lab, monkeypatch):
    desired = _desired(lab, _lab_secrets(monkeypatch, lab))
    assert all("auth_pass lab3cr3t" in c for c in desired.values())
    # the capture script's hand edit on node2: sed -i 's/auth_pass .*/auth_pass wrong123/'
    live = {**desired, "node2": re.sub(r"auth_pass .*", "auth_pass wrong123", desired["node2"])}
    cause = split_brain_cause(lab, LAB_VIP, ["node1", "node2"], split_states(lab, desired, live), desired)
    assert "fail authentication" in cause and "node2" in cause and "node1's" not in cause and "node3's" not in cause
    assert f"keepalived counts auth failures: {_counted()}" in cause
    assert "node2's live keepalived.conf differs from the inventory in the VRRP secret (auth_pass)" in cause
    assert "wrong123" not in cause and "lab3cr3t" not in cause


def test_split_brain_cause_starts_with_the_node_whose_adverts_fail(lab, monkeypatch):
    desired = _desired(lab, _lab_secrets(monkeypatch, lab))
    live = {**desired, "node2": re.sub(r"auth_pass .*", "auth_pass wrong123", desired["node2"])}
    cause = split_brain_cause(lab, LAB_VIP, ["node1", "node2"], split_states(lab, desired, live), desired)
    assert cause.startswith("node2's adverts fail authentication (keepalived counts auth failures:")


def test_split_brain_cause_from_the_counters_alone(lab, monkeypatch):
    desired = _desired(lab, _lab_secrets(monkeypatch, lab))
    cause = split_brain_cause(lab, LAB_VIP, ["node1", "node2"], split_states(lab, desired, None), desired)
    assert cause == f"adverts fail authentication (keepalived counts auth failures: {_counted()})"


def _changes(node: str, journal_fixture: str) -> NodeState:
    return observed(node, [F.STATE_CHANGES], {"changes": read(f"keepalived_json/{journal_fixture}")})


def test_journal_state_changes_from_the_fixtures():
    for name in ("journal_node1.txt", "journal_split_node2.txt"):
        lines = [ln for ln in read(f"keepalived_json/{name}").splitlines() if ln.strip()]
        changes = journal.state_changes(read(f"keepalived_json/{name}"))
        assert len(changes) == len(lines) >= 2
        for ln, c in zip(lines, changes):
            at, _, _ = ln.partition(" ")
            assert c.at == float(at) and c.instance == "VI_1"
            assert f"Entering {c.state} STATE" in ln
        assert [c.at for c in changes] == sorted(c.at for c in changes)
    assert journal.state_changes("-- No entries --\n") == []


def _master_path(states: dict[str, NodeState], since: float | None = None) -> list[str]:
    """The MASTER entries in time order, a node repeated in a row counted once."""
    path: list[str] = []
    for _, n in sorted((c.at, n) for n, s in states.items() for c in s.changes
                       if c.state == "MASTER" and (since is None or c.at >= since)):
        if not path or path[-1] != n:
            path.append(n)
    return path


def test_flapping_on_the_captured_journals(lab):
    """node1's and node2's journals over the capture (a split brain, deploys, restarts): the VIP's
    master path is read from the MASTER entries; two moves or more is flapping."""
    states = {"node1": _changes("node1", "journal_node1.txt"), "node2": _changes("node2", "journal_split_node2.txt")}
    path = _master_path(states)
    found = flapping(lab, states)
    if len(path) - 1 >= 2:
        (f,) = found
        assert f.subject == LAB_VIP and f.severity == "warning"
        assert f.text == (f"VIP moved {len(path) - 1} times in the last 10 min ({' -> '.join(path)}): flapping, "
                          "unless a drill or a deploy did it")
    else:
        assert found == []
    # one node's journal alone: it never lost the VIP to another node
    assert flapping(lab, {"node1": states["node1"]}) == []
    # only what is inside the window counts: from node2's last MASTER entry on, one entry
    last = max(c.at for c in states["node2"].changes if c.state == "MASTER")
    assert flapping(lab, states, now=last + 10, window_s=10) == []


def test_flapping_reported_when_the_master_moves_twice(lab):
    """The captured journals read as three nodes' (node3 with node1's lines too): at least two moves."""
    states = {"node1": _changes("node1", "journal_node1.txt"), "node2": _changes("node2", "journal_split_node2.txt"),
              "node3": _changes("node3", "journal_node1.txt")}
    path = _master_path(states)
    assert len(path) >= 3 and "node3" in path
    (f,) = flapping(lab, states)
    assert f.text.startswith(f"VIP moved {len(path) - 1} times in the last 10 min ({' -> '.join(path)}): flapping")


# ================================================================== the watch
def watch_state(node: str, *, holds: bool, dump: str, keepalived_stopped: bool = False) -> NodeState:
    host = {"node1": "10.189.0.11", "node2": "10.189.0.12", "node3": "10.189.0.13"}[node]
    return observed(node, F.WATCH, {
        "addrs": addrs_json(host, on_iface=(LAB_VIP,) if holds else (), on_lo=(LAB_VIP,)) + "\n",
        "units": ACTIVE_KA_STOPPED if keepalived_stopped else ACTIVE_ALL,
        "ipvs": NO_IPVS_MARK + "\n", "ipvs_rate": NO_IPVS_MARK + "\n", "ipvs_stats": NO_IPVS_MARK + "\n",
        "vrrp": read(f"keepalived_json/{dump}")})


def before_failover() -> dict[str, NodeState]:
    return {"node1": watch_state("node1", holds=True, dump="healthy_node1.json"),
            "node2": watch_state("node2", holds=False, dump="healthy_node2.json"),
            "node3": watch_state("node3", holds=False, dump="split_auth_node3.json")}


def after_failover() -> dict[str, NodeState]:
    """node1's keepalived stopped (graceful failover), node2 MASTER holding the VIP."""
    return {"node1": watch_state("node1", holds=False, dump="not_running_node3.txt", keepalived_stopped=True),
            "node2": watch_state("node2", holds=True, dump="split_auth_node2.json"),
            "node3": watch_state("node3", holds=False, dump="split_auth_node3.json")}


def test_watcher_fold_records_the_vip_moving(lab):
    w = Watcher(lab, conns=[])
    first = w.fold(before_failover(), NOW_HEALTHY, 0.12)
    assert first.holders == {LAB_VIP: ["node1"]}
    # what keepalived says happened before the watch began, oldest first
    dumps = {"node1": "healthy_node1.json", "node2": "healthy_node2.json", "node3": "split_auth_node3.json"}
    want = sorted((dump(f)["data"]["last_transition"], n, {1: "BACKUP", 2: "MASTER"}[dump(f)["data"]["state"]])
                  for n, f in dumps.items())
    assert first.transitions == [(at, f"{n}: VI_1 entered {st}") for at, n, st in want]
    second = w.fold(after_failover(), NOW_HEALTHY + 1.0, 0.11)
    assert second.holders == {LAB_VIP: ["node2"]}
    new = [what for at, what in second.transitions if at == NOW_HEALTHY + 1.0]
    assert new == [f"VIP {LAB_VIP}: node1 -> node2", "node1: keepalived active -> inactive",
                   "node2: VI_1 BACKUP -> MASTER"]
    assert w.fold(after_failover(), NOW_HEALTHY + 2.0).transitions == second.transitions   # nothing new
    # node1's keepalived back: it comes up BACKUP (it was MASTER when it stopped), then preempts
    back = before_failover()
    back["node1"] = watch_state("node1", holds=False, dump="healthy_node2.json")   # a BACKUP's dump
    third = w.fold(back, NOW_HEALTHY + 3.0)
    assert [what for at, what in third.transitions if at == NOW_HEALTHY + 3.0] == [
        f"VIP {LAB_VIP}: node2 -> nowhere", "node1: keepalived inactive -> active", "node1: VI_1 MASTER -> BACKUP",
        "node2: VI_1 MASTER -> BACKUP"]
    fourth = w.fold(before_failover(), NOW_HEALTHY + 4.0)
    assert [what for at, what in fourth.transitions if at == NOW_HEALTHY + 4.0] == [
        f"VIP {LAB_VIP}: nowhere -> node1", "node1: VI_1 BACKUP -> MASTER"]


def test_watcher_an_unavailable_view_is_not_a_transition(lab):
    """keepalived's dump read while it was being written parses as unavailable (None): the next
    refresh that reads it again compares with the state known before, not with nothing."""
    w = Watcher(lab, conns=[])
    w.fold(before_failover(), 0.0)
    cut = read("keepalived_json/healthy_node2.json")[:200]
    assert keepalived_json.parse_keepalived_json(cut) is None
    mid_write = before_failover()
    mid_write["node2"] = observed("node2", F.WATCH, {
        "addrs": addrs_json("10.189.0.12", on_lo=(LAB_VIP,)) + "\n", "units": ACTIVE_ALL,
        "ipvs": NO_IPVS_MARK + "\n", "ipvs_rate": NO_IPVS_MARK + "\n", "ipvs_stats": NO_IPVS_MARK + "\n",
        "vrrp": cut})
    assert mid_write["node2"].vrrp is None
    n = len(w.fold(mid_write, 1.0).transitions)
    assert len(w.fold(before_failover(), 2.0).transitions) == n, "BACKUP, unknown, BACKUP: nothing happened"
    assert w.fold(after_failover(), 3.0).transitions[-1] == (3.0, "node2: VI_1 BACKUP -> MASTER")


def test_watch_real_servers_table_on_the_fx_director(fx):
    """The watch's real-server rows of the VIP holder: in pool green, out of the pool and a wrong
    weight red (the fx captures: the director holds 10.190.0.100 on eth0); after a second refresh,
    each real server's new connections per second as a sparkline, from the IPVS counters."""
    facts = F.WATCH
    states = {"dir": observed("dir", facts, {
        "addrs": read("ip_addr/guest_director.txt"), "units": ACTIVE_ALL, "ipvs": read("ipvsadm/L_n.txt"),
        "ipvs_rate": read("ipvsadm/L_n_rate.txt"), "ipvs_stats": read("ipvsadm/L_n_stats_exact.txt"),
        "vrrp": read("keepalived_json/not_running_node3.txt")})}
    w = Watcher(fx, conns=[])
    frame_ = w.fold(states, 0.0)
    assert frame_.holders == {FX_VIP: ["dir"]}
    t = watch_view.tables(fx, frame_)[2]
    by = {(c[1], c[2]): (c, ok) for c, ok in zip(t.rows, t.ok)}
    cells, ok = by[(f"TCP {FX_VIP}:80", "10.190.0.12:80")]
    assert cells[3:9] == ["in pool", 1, 1, 150, 9, "-"] and ok is True      # one reading: no rate yet
    web = states["dir"].ipvs_stats.services[0]          # 20 more connections to 10.190.0.11:80 in 2 s
    later = replace(states["dir"], ipvs_stats=replace(states["dir"].ipvs_stats, services=[
        replace(web, real_servers=[replace(web.real_servers[0], stats=replace(web.real_servers[0].stats,
                                                                               conns=150 + 20))] + web.real_servers[1:]),
        *states["dir"].ipvs_stats.services[1:]]))
    t = watch_view.tables(fx, w.fold({"dir": later}, 2.0))[2]
    spark = {(c[1], c[2]): c[8] for c in t.rows}
    assert spark[(f"TCP {FX_VIP}:80", "10.190.0.11:80")] == "·" * 19 + "█"     # 10 conn/s: the busiest
    assert spark[(f"TCP {FX_VIP}:80", "10.190.0.12:80")] == "·" * 19 + "▁"     # none
    assert t.columns[8] == "CPS, last 5 min"
    cells, ok = by[(f"TCP {FX_VIP}:80", "10.190.0.13:80")]
    assert cells[3] == "OUT (check failing)" and ok is False
    cells, ok = by[(f"TCP {FX_VIP}:8080", "10.190.0.131:8080")]
    assert cells[3:5] == ["weight 0, inventory wants 1", 0] and ok is False


def test_watcher_keeps_the_last_transitions_only(lab):
    w = Watcher(lab, conns=[])
    w.fold(before_failover(), 0.0)
    for i in range(1, 16):
        w.fold(after_failover() if i % 2 else before_failover(), float(i))
    assert len(w.last.transitions) == KEEP_TRANSITIONS
    assert [at for at, _ in w.last.transitions] == sorted(at for at, _ in w.last.transitions)
    assert w.last.transitions[-3:] == [(15.0, f"VIP {LAB_VIP}: node1 -> node2"),
                                       (15.0, "node1: keepalived active -> inactive"),
                                       (15.0, "node2: VI_1 BACKUP -> MASTER")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_watch_screen_after_a_failover_matches_golden(fmt, lab, monkeypatch, capsys):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        w = Watcher(lab, conns=[])
        w.fold(before_failover(), NOW_HEALTHY, 0.12)
        frame_ = w.fold(after_failover(), NOW_HEALTHY + 1.0, 0.11)
        if fmt == "rich":
            con = terminal()
            con.print(watch_view.renderable(lab, frame_, 1.0))
            text = con.file.getvalue()
        else:
            text, _ = drawn(lambda _rows, f: watch_view.show_once(lab, frame_, f), None, fmt, monkeypatch, capsys)
        tables = watch_view.tables(lab, frame_)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert tables[0].rows == [[LAB_VIP, "node2", "ok"]] and tables[0].ok == [True]
    assert f"VIP {LAB_VIP}: node1 -> node2" in [r[1] for r in tables[3].rows]
    assert "lab at " in text and "(round trips 110 ms)" in text
    golden(f"watch_failover.{fmt}.txt", text)


def test_no_stale_golden_files():
    """Every golden file belongs to a test above (this runs last: an update run writes them first)."""
    want = {f"{n}.{f}.txt" for n in SCENARIOS for f in FORMATS} | {f"watch_failover.{f}.txt" for f in FORMATS}
    assert {p.name for p in GOLDEN.glob("*.txt")} == want
