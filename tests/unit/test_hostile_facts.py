"""Generative: a node that prints hostile, mistyped or control-character output for any fact.

Every node's output is untrusted (issue 24, the security review). For every fact of fabfile/infra/facts.py ALL, a
lab node's captured output is mutated (escape sequences and bidi overrides inside names and
records, wrong JSON types, cut and garbled text) and the whole read path runs on it: the fact's
own parser, observe.parse_state, the checks, and the tasks that draw them (verify, status,
history, watch, the ipvs/addrs/vrrp tables) in a format drawn per example (plain, markdown, rich on
a console that is not a terminal; test_every_node_string_is_shown_escaped_in_every_format draws all
three on escape-laden strings in every field), through a fake `remote` that answers each fact's
frame as a node would. Held to:

- a parser answers with a value or a ParseError, nothing else;
- no exception leaves a task (a per-node failure is a failed row, exit 1 at most);
- a node whose output a parser refused has a failed row in verify and in each table;
- nothing a terminal would act on reaches the output: no character of the categories Cc, Cf, Cs,
  Zl or Zp but the newlines between lines.

Fixed seed in the unit tier (LBTK_HYPOTHESIS_EXAMPLES, default 30, about 5 s); CI raises the budget.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import unicodedata

import pytest
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st
from invoke import Context, Exit
from rich.console import Console

from fabfile import output
from fabfile.errors import FactError, one_line
from fabfile.infra import facts as F
from fabfile.infra import observe as observe_mod
from fabfile.infra import remote
from fabfile.model.context import Env
from fabfile.model.loading import load
from fabfile.model.secrets import resolve_all
from fabfile.parsers import ParseError, ip_addr
from fabfile.parsers.lbtk import FRAMES, LiveFile, Raw

from .core_fixtures import DPKG_CAPTURE, TOKEN, UNAME_CAPTURE, addrs_json, file_listing, frame, read, units_output

EXAMPLES = int(os.environ.get("LBTK_HYPOTHESIS_EXAMPLES", "30"))
VIP = "10.189.0.100"
NODES = ("node1", "node2", "node3")
FORMATS = ("plain", "markdown", "rich")
SECRET = "lab3cr3t"


# ================================================================== what a terminal must never get
UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def raw_controls(text: str) -> list[str]:
    """The characters of `text` a terminal would act on or hide (newlines between lines allowed)."""
    return sorted({repr(c) for c in text if c != "\n" and unicodedata.category(c) in UNSAFE_CATEGORIES})


def test_visible_escapes_every_control_format_and_separator_character():
    """output.visible's list of characters, held to the Unicode database of this Python."""
    # planes 0, 1 and 14 hold every such character (2 and 3 are CJK ideographs, 15 and 16 private use)
    missed = [hex(n) for n in (*range(0x20000), *range(0xE0000, 0xE1000))
              if unicodedata.category(chr(n)) in UNSAFE_CATEGORIES and output.visible(chr(n)) == chr(n)]
    assert not missed
    assert output.visible("\x1b[2J\x9b\u202e\ud800\n\t\r\x00") == "\\x1b[2J\\x9b\\u202e\\ud800\\n\\t\\r\\x00"
    assert output.visible("a\nb\x1b", lines=True) == "a\nb\\x1b"
    plain = "node1 eth0 10.189.0.100/32 fd00::1 — é ✓ [red] \\x1b"
    assert output.visible(plain) == plain      # printable text, markup-looking or not, is left alone


# ================================================================== a healthy lab node, captured
def first_service(capture: str) -> str:
    """An ipvsadm capture cut after its first service (TCP 10.190.0.100:80, two real servers): the
    same service in -L -n, --rate and --stats, and a table rich draws in milliseconds, not seconds."""
    return "".join(read(capture).splitlines(keepends=True)[:6])


def healthy(inv, node: str) -> dict[str, tuple[str, str, int]]:
    """Every fact of facts.ALL as a healthy lab node prints it (captures; node1 holds the VIP)."""
    host = inv.node(node).host
    master = node == "node1"
    out = {
        "kernel": UNAME_CAPTURE,
        "release": read("os_release/bookworm.txt"),
        "packages": DPKG_CAPTURE,
        "binaries": "".join(b + "\n" for b in F.BINARIES),
        "has_ipvs": "yes\n",
        "addrs": addrs_json(host, on_iface=(VIP,) if master else (), on_lo=() if master else (VIP,)) + "\n",
        "sysctl": read("sysctl/arp_set.txt"),
        "units": units_output({u: "active" for u in F.UNITS}, {u: "enabled" for u in F.UNITS}),
        "ipvs": first_service("ipvsadm/L_n.txt"),
        "sync_daemons": read("ipvsadm/L_daemon_master.txt" if master else "ipvsadm/ka_L_daemon.txt"),
        "ipvs_stats": first_service("ipvsadm/L_n_stats_exact.txt"),
        "pending": "",
        "backups": "@@backup 20261201T183000.123\n/etc/keepalived/keepalived.conf\n\n",
        "ipvs_rate": first_service("ipvsadm/L_n_rate.txt"),
        "vrrp": read("keepalived_json/healthy_node1.json" if master else "keepalived_json/healthy_node2.json"),
        "changes": read("keepalived_json/journal_node1.txt"),
        "runtime": read("lbtk_state/runtime.json"),
        "lock": read("lbtk_state/lock"),
        "history": read("lbtk_state/history"),
        "nginx_defaults": read("nginx_t/defaults_ok.txt"),
    }
    assert set(out) == {f.name for f in F.ALL}, "a capture for every fact"
    return {k: (v, "", 0) for k, v in out.items()}


# ================================================================== hostile output
ATTACKS = ["\x1b[2J\x1b[H", "\x1b[32mOK\x1b[0m", "\x1b]0;owned\x07", "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\",
           "\x9b31m", "\r", "\n", "\t", "\x00", "\x07", "\x08", "\x7f", "\x85", "\u202e", "\u2066", "\u200b",
           "\ufeff", "\u2028", "\U000e0041", "\ud800", "[red]", "[/]", "[bold", "[link=x]", "\\", "]", "{}", "%s",
           "'", '"', "é", "٣", "²", "lo", "eth0", VIP, "MASTER", "-", ":", "@@", " ", "0", "-1", "1e999"]
HOSTILE = st.lists(st.one_of(st.sampled_from(ATTACKS), st.text(max_size=3)), max_size=5).map("".join)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | HOSTILE,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(HOSTILE, inner, max_size=3), max_leaves=5)
JSON_FACTS = {"addrs", "vrrp", "runtime", "lock"}      # one JSON document; history: one a line


def _paths(doc, at=()):
    """Every place in a JSON document a value can be put: (path, container key or index)."""
    yield at
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, at + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, at + (i,))


_DELETE = object()     # a value that removes the key or item instead


def _put(doc, path, value):
    if not path:
        return value
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@st.composite
def mutated_json(draw, text: str) -> str:
    doc = json.loads(text)
    path = draw(st.sampled_from(list(_paths(doc))))
    value = draw(st.one_of(JSON_VALUES, st.just(_DELETE) if path else JSON_VALUES))
    return json.dumps(_put(doc, path, value)) + "\n"   # ensure_ascii: a lone surrogate survives as \ud800


@st.composite
def mutated_text(draw, text: str) -> str:
    lines = text.split("\n")
    i = draw(st.integers(0, len(lines) - 1))
    how = draw(st.sampled_from(["insert", "word", "line", "cut"]))
    ln = lines[i]
    if how == "insert":
        at = draw(st.integers(0, len(ln)))
        lines[i] = ln[:at] + draw(HOSTILE) + ln[at:]
    elif how == "word" and ln.split():
        words = ln.split(" ")
        k = draw(st.integers(0, len(words) - 1))
        words[k] = draw(HOSTILE)
        lines[i] = " ".join(words)
    elif how == "line":
        lines[i] = draw(HOSTILE)
    else:
        return "\n".join(lines)[:draw(st.integers(0, len(text)))]
    return "\n".join(lines)


@st.composite
def hostile_output(draw, fact: str, base: tuple[str, str, int]) -> tuple[str, str, int]:
    out, err, rc = base
    if fact == "history" and out.strip():
        lines = out.splitlines()
        k = draw(st.integers(0, len(lines) - 1))
        lines[k] = draw(mutated_json(lines[k])).rstrip("\n")
        out = "\n".join(lines) + "\n"
    elif fact in JSON_FACTS and draw(st.booleans()):
        out = draw(mutated_json(out))
    elif draw(st.integers(0, 4)) == 0:
        out = draw(HOSTILE)
    else:
        out = draw(mutated_text(out))
    if draw(st.integers(0, 5)) == 0:
        err = draw(HOSTILE)
    return out, err, rc


@st.composite
def hostile_clusters(draw, base: dict[str, dict[str, tuple[str, str, int]]]):
    node = draw(st.sampled_from(NODES))
    facts = draw(st.lists(st.sampled_from([f.name for f in F.ALL]), min_size=1, max_size=3, unique=True))
    mine = dict(base[node])
    for name in facts:
        mine[name] = draw(hostile_output(name, mine[name]))
    return node, facts, {**base, node: mine}


# ================================================================== the cluster, through a fake remote
class FakeConn:
    """A node group's link, as far as the read path looks at it."""

    def __init__(self, node: str):
        self.name = node
        self.conn = self          # already open: nothing connects

    is_connected = True
    keep = kept = None        # connections not kept between runs (fabfile/infra/keeper.py)

    def close(self) -> None:
        pass


class Cluster:
    """The nodes' outputs the fake remote answers with (per node: fact name -> (stdout, stderr, rc))."""
    outputs: dict[str, dict[str, tuple[str, str, int]]] = {}


_FACT = re.compile(r"fact %s\\n' \"\$__t\" (\S+);")


def fake_run(c, command, check=True, timeout=None):
    """One round trip: observe.script's frames, each fact answered with what this node prints."""
    asked = _FACT.findall(command)
    assert asked, "only observe's fact scripts are run on the read path"
    mine = Cluster.outputs[c.name]
    # the script's header names the token the node drew (parsers.lbtk.frames_token), then the frames
    token = "5eed0f1e-2a3b-4c5d-8e9f-001122334455"
    return remote.Result(f"{FRAMES} {token}\n" + frame({name: mine.get(name, ("", "", 0)) for name in asked}, token),
                         "", 0)


@pytest.fixture(scope="module")
def lab():
    inv, path = load("lab")
    with pytest.MonkeyPatch.context() as m:
        m.setenv("LAB_VRRP_PASS", SECRET)
        m.setenv("COLUMNS", "200")     # rich's width off a terminal (80 wraps every wide table)
        env = Env(inv=inv, path=path, secrets=resolve_all(inv, "lab"), name="lab")
        from fabfile.tasks import drift, history, oncall, tables, verify, watch
        for mod in (drift, history, oncall, tables, verify):
            m.setattr(mod, "node_env", lambda *a, **k: (env, list(inv.nodes)))
        m.setattr(watch, "load_env", lambda *a, **k: env)
        m.setattr(remote, "_link", lambda inv_, n, masker=None: FakeConn(n.name))   # the transport faked
        m.setattr(remote, "parallel", lambda conns, fn, *a, limit=None: [fn(c, *a) for c in conns])
        m.setattr(remote, "run", fake_run)
        yield env


@pytest.fixture(scope="module")
def base(lab):
    return {n: healthy(lab.inv, n) for n in NODES}


def run_task(task, **kw) -> str:
    """A task's whole output; a per-node problem may end it with exit 1, nothing else may end it."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            task(Context(), env="lab", **kw)
        except Exit as e:
            assert e.code == 1 and not e.message, f"the task failed: {e.message!r} (exit {e.code})"
    return buf.getvalue()


def every_task(fmt: str) -> dict[str, str]:
    from fabfile.tasks import history, oncall, tables, verify, watch
    return {"verify": run_task(verify.verify, format=fmt, no_http=True),
            "status": run_task(oncall.status, format=fmt),
            "history": run_task(history.history, format=fmt),
            "watch": run_task(watch.watch, format=fmt),
            **{name: run_task(getattr(tables, name), format=fmt) for name in ("ipvs", "addrs", "vrrp")}}


def test_a_healthy_cluster_reads_clean(lab, base):
    """The baseline the mutations start from: every fact parses, every task runs, the tables are
    drawn in every format and carry the nodes' values."""
    Cluster.outputs = base
    for n in NODES:
        observe_mod.parse_state(n, F.ALL, frame(base[n]), TOKEN)
    for fmt in FORMATS:
        drawn = every_task(fmt)
        assert not raw_controls("".join(drawn.values()))
        assert "10.189.0.11/" in drawn["addrs"] and "VI_1" in drawn["vrrp"] and "20261201T183000.123" in drawn["history"]


def watch_screen(inv, before, after) -> str:
    """`inv watch` on a terminal: a frame of `before`, then one of `after` (its transitions), drawn
    as rich.live draws it (a Console that is not a terminal: no colour codes to tell apart)."""
    from fabfile.ops.watch import Watcher
    from fabfile.views import watch as watch_view
    w = Watcher(inv, [FakeConn(n) for n in NODES])
    Cluster.outputs = before
    w.refresh()
    Cluster.outputs = after
    con = Console(file=io.StringIO(), force_terminal=False, width=200)
    con.print(watch_view.renderable(inv, w.refresh(), 1.0))
    return con.file.getvalue()


@seed(24)
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_hostile_output_is_one_nodes_failed_row_and_never_reaches_the_terminal_raw(lab, base, data):
    node, facts, outputs = data.draw(hostile_clusters(base))
    by_name = {f.name: f for f in F.ALL}
    for name in facts:                         # each parser: a value or a ParseError, nothing else
        try:
            by_name[name].parse(Raw(*outputs[node][name]))
        except ParseError:
            pass
    try:                                       # verify's round trip: readable, or this node's FactError
        observe_mod.parse_state(node, F.VERIFY, frame({f.name: outputs[node][f.name] for f in F.VERIFY}), TOKEN)
        unreadable = False
    except FactError as e:
        assert e.node == node
        unreadable = True
    event("unreadable for verify" if unreadable else "read by verify")
    Cluster.outputs = outputs
    from fabfile.ops.verify import verify as run_verify
    from fabfile.views import cluster
    report = run_verify(lab.inv, [FakeConn(n) for n in NODES], http=False, secrets=lab.secrets)
    assert set(report.observed) == set(NODES), "every node has its state, the hostile one too"
    assert report.observed[node].unreadable == unreadable
    for other in set(NODES) - {node}:
        assert report.observed[other].reachable, "the other nodes are read all the same"
    if unreadable:                             # its failed row, in the checks and in every table
        assert any(c.node == node and not c.ok for c in report.checks)
        for rows in (cluster.ipvs_rows(lab.inv, report.observed), cluster.addr_rows(lab.inv, report.observed),
                     cluster.vrrp_rows(lab.inv, report.observed)):
            assert any(r["node"] == node and not r["ok"] for r in rows)
    # every task in one format a run (each format is drawn in turn; test_every_format_... draws all
    # three on every node string at once): nothing raw reaches the terminal
    fmt = data.draw(st.sampled_from(FORMATS))
    for task_name, text in every_task(fmt).items():
        assert not raw_controls(text), f"{task_name} --format {fmt} printed {raw_controls(text)}"
    if fmt == "rich":
        screen = watch_screen(lab.inv, base, outputs)
        assert not raw_controls(screen), f"watch's live screen printed {raw_controls(screen)}"


# ================================================================== the review's cases, one by one
def addrs_with(base, change) -> str:
    """node2's captured `ip -j addr`, its first interface (lo) changed by `change(entry)`."""
    data = json.loads(base["node2"]["addrs"][0])
    data[0] = change(data[0])
    return json.dumps(data) + "\n"


REVIEW_ADDRS = {   # what the review fed verify: each ended it with exit 3 for the whole cluster
    "a list where an interface belongs": lambda d: [d],
    "a number for ifname": lambda d: {**d, "ifname": 5},
    "null addr_info": lambda d: {**d, "addr_info": None},
    "a list where an address belongs": lambda d: {**d, "addr_info": [[1]]},
    "a number for an address": lambda d: {**d, "addr_info": [{**d["addr_info"][0], "local": 5}]},
    "an infinite prefix length": lambda d: {**d, "addr_info": [{**d["addr_info"][0], "prefixlen": 1e999}]},
    "a string of flags": lambda d: {**d, "flags": "UP"},
    "true for ifindex": lambda d: {**d, "ifindex": True},
}


@pytest.mark.parametrize("case", REVIEW_ADDRS)
def test_mistyped_ip_addr_is_a_parse_error_and_that_nodes_failed_row(case, lab, base):
    text = addrs_with(base, REVIEW_ADDRS[case])
    with pytest.raises(ParseError, match=r"^ip -j addr: (entry 0|not JSON \(Infinity)"):
        ip_addr.parse_ip_addr(text)
    Cluster.outputs = {**base, "node2": {**base["node2"], "addrs": (text, "", 0)}}
    from fabfile.tasks import verify
    out = run_task(verify.verify, format="plain", no_http=True)
    (row,) = [ln for ln in out.splitlines() if ln.startswith("reachable ")]
    assert "node2" in row and "FAIL" in row and "cannot read addrs" in row
    assert "node1" in out and "node3" in out and "VIP on lo           node3    ok" in out


def test_a_node_whose_facts_cannot_be_read_is_not_unreachable_for_verify(lab, base):
    """Every node answered garbage: their failed rows, not `no node answered` (exit 2)."""
    Cluster.outputs = {n: {**base[n], "addrs": ("[[1]]\n", "", 0)} for n in NODES}
    from fabfile.ops.verify import verify as run_verify
    report = run_verify(lab.inv, [FakeConn(n) for n in NODES], http=False)
    assert all(s.unreadable for s in report.observed.values())
    assert {c.node for c in report.checks if not c.ok} >= set(NODES)


WRONG_TYPES = [None, True, 0, 1.5, 10 ** 400, "\x1b[2J[/]", ["\u202e"], {"x": 1}]
UNREADABLE_JSON = ["[" * 100_000, "1" * 5000, "NaN", "[Infinity]", '{"a": -Infinity}', "\ud800", '"\\ud800"']


@pytest.mark.parametrize("fact", ["addrs", "vrrp", "runtime", "lock", "history"])
def test_json_parsers_take_a_wrong_type_anywhere_as_a_parse_error(fact, base):
    """Every place of the captured document, every JSON type: the parser returns a value of its own
    types, or says ParseError; nothing else escapes it (exhaustive: the generative test samples)."""
    parse = {f.name: f.parse for f in F.ALL}[fact]
    text = base["node1"][fact][0].splitlines()[0] if fact == "history" else base["node1"][fact][0]
    doc = json.loads(text)
    tried = 0
    for path in list(_paths(doc)):
        for value in [*WRONG_TYPES, *([_DELETE] if path else [])]:
            mutated = json.dumps(_put(json.loads(text), path, value))
            try:
                parse(Raw(mutated + "\n"))
            except ParseError:
                pass
            tried += 1
    for raw in UNREADABLE_JSON:
        try:
            parse(Raw(raw + "\n"))
        except ParseError:
            pass
    assert tried > 3 * len(WRONG_TYPES)


# ================================================================== every node string, every format
ESC_NAME = "e\x1b[2J\x1b[H"                       # an interface name Linux allows (no '/', no space, <= 15 bytes)
FAKE_GREEN = "\x1b[32mall ok\x1b[0m"
TITLE = "\x1b]0;owned\x07"
RTL = "\u202erevo\u202c"


def escaped_cluster(base) -> dict:
    """node2 with an escape sequence, a bidi override or rich markup in every string it reports:
    interface name, keepalived's instance and interface, the journal, runtime.json, the lock, history."""
    mine = dict(base["node2"])
    mine["addrs"] = (addrs_with(base, lambda d: d).replace('"eth0"', json.dumps(ESC_NAME)), "", 0)
    vrrp = json.loads(mine["vrrp"][0])
    vrrp[0]["data"].update(iname="VI_1" + FAKE_GREEN + "[red]", ifp_ifname=ESC_NAME)
    mine["vrrp"] = (json.dumps(vrrp) + "\n", "", 0)
    mine["changes"] = (mine["changes"][0].replace("(VI_1)", "(VI\x1b[2J[/])"), "", 0)
    mine["runtime"] = (json.dumps({"serial": 3, "drained": ["10.189.0.13"], "by": TITLE + "root@" + RTL,
                                   "at": FAKE_GREEN}) + "\n", "", 0)
    mine["lock"] = (json.dumps({"run": "r", "operator": TITLE + "[/]", "pid": 7, "cwd": "/", "task": FAKE_GREEN,
                                "since": "now"}) + "\n", "", 0)
    hist = json.loads(mine["history"][0])
    hist.update(operator=TITLE + "eve", task=FAKE_GREEN + "\n" + "fake line", id="20261202T000000.000")
    mine["history"] = (mine["history"][0] + json.dumps(hist) + "\n", "", 0)
    return {**base, "node2": mine}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_node_string_is_shown_escaped_in_every_format(fmt, lab, base):
    Cluster.outputs = escaped_cluster(base)
    drawn = every_task(fmt)
    everything = "".join(drawn.values())
    assert not raw_controls(everything)
    assert "e\\x1b[2J\\x1b[H" in drawn["addrs"] and "e\\x1b[2J\\x1b[H" in drawn["verify"]
    assert "\\x1b[32mall ok\\x1b[0m[red]" in drawn["vrrp"]               # the markup shown, not obeyed
    assert "\\x1b]0;owned\\x07root@\\u202erevo\\u202c" in drawn["status"]
    assert "\\x1b]0;owned\\x07eve" in drawn["history"]
    assert "\\x1b[32mall ok\\x1b[0m\\nfake line" in drawn["history"].replace("\n", "")    # one cell, not two lines
    assert "\\x1b]0;owned\\x07[/]" in drawn["status"]                    # the lock holder
    if fmt == "rich":
        screen = watch_screen(lab.inv, base, escaped_cluster(base))
        assert not raw_controls(screen) and "VI_1\\x1b[32mall ok" in screen


def test_diffs_of_live_files_show_escapes(lab, base, capsys):
    """`inv diff` and `deploy --check`: a live file holding escape sequences is shown escaped,
    line by line, whatever the format."""
    from fabfile.core.render.keepalived import CONF
    from fabfile.ops.deploy import plan_node
    from fabfile.tasks import drift
    from fabfile.views import deploy as deploy_view
    from .core_fixtures import live_files
    from fabfile.core.render import managed_paths
    outputs = {}
    for n in NODES:      # every node as rendered and never drained; node2's keepalived.conf edited
        live = {**live_files(lab, n), F.RUNTIME_PATH: None}
        if n == "node2":
            live[CONF] = LiveFile(0o600, live[CONF].content + b"# \x1b[2J\x1b[32mlooks fine\r\x1b]0;x\x07\n")
        assert set(live) == {*managed_paths(lab.inv, n, lab.secrets), F.RUNTIME_PATH, F.SECRET_RECORD_PATH}
        outputs[n] = {**base[n], "runtime": ("", "", 0), "files": (file_listing(live), "", 0)}
    Cluster.outputs = outputs
    out = run_task(drift.diff, format="plain")
    assert not raw_controls(out)
    assert "-# \\x1b[2J\\x1b[32mlooks fine\\r\\x1b]0;x\\x07\n" in out
    assert "--- node2:/etc/keepalived/keepalived.conf" in out and "node1:" not in out.split("drift (")[0]
    from fabfile.ops.deploy import NodeRun, gather
    states = gather(lab, NODES)
    runs = [NodeRun(n, states[n], plan_node(lab, n, states[n], ["keepalived"])) for n in NODES]
    capsys.readouterr()
    deploy_view.check(runs, "plain")
    shown = capsys.readouterr().out
    assert not raw_controls(shown) and "\\x1b[2J\\x1b[32mlooks fine\\r" in shown


# ================================================================== the other ways out
def test_the_error_line_shows_a_nodes_stderr_escaped():
    msg, code = one_line(remote.RemoteError("node2: sudo: \x1b[2J\x1b]0;x\x07 refused\u202e"))
    assert code == 2 and not raw_controls(msg) and "\\x1b[2J\\x1b]0;x\\x07 refused\\u202e" in msg


def test_progress_lines_and_rich_descriptions_are_safe(capsys):
    from rich.text import Text
    from fabfile import progress
    p = progress.Progress(["node1"])
    p.rich = False
    p.step("node1", "reload \x1b[2J[/]")
    p.finish("node1", "FAILED \u202e", ok=False)
    out = capsys.readouterr().out
    assert out == "node1: reload \\x1b[2J[/]\nnode1: FAILED \\u202e\n"
    shown = Text.from_markup(f"[bold red]{progress._markup('[/]x [red]y' + chr(92))}").plain
    assert shown.startswith("[/]x [red]y" + chr(92))      # rich's escape() doubles a last backslash


def test_an_interface_named_with_an_escape_is_read_as_iproute2_and_sysctl_print_it(base):
    """iproute2's JSON writer escapes only \\t \\n \\r \\f \\b: an ESC in an interface name comes out
    raw inside the JSON string, and sysctl prints the name in its keys. Both are read (the node is
    not made unreadable by a name Linux allows), and shown escaped."""
    raw_json = base["node2"]["addrs"][0].replace('"eth0"', '"' + ESC_NAME + '"')
    assert "\x1b" in raw_json
    names = [i.name for i in ip_addr.parse_ip_addr(raw_json)]
    assert ESC_NAME in names
    from fabfile.parsers import sysctl
    values = sysctl.parse_sysctl(f"net.ipv4.conf.{ESC_NAME}.arp_ignore = 0\nnet.ipv4.conf.eth0.arp_ignore = 1\n").values
    assert values[f"net.ipv4.conf.{ESC_NAME}.arp_ignore"] == "0"
