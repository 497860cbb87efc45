"""Every failure ends as ONE line and a documented exit code (fabfile/errors.py), never a traceback.

  * the observation layer: whatever a node prints for a fact — garbage, nothing, a real capture
    cut in the middle, binary junk — `fabfile.infra.observe.parse_state` returns a NodeState or raises
    FactError, and the FactError becomes one `error: NODE: ...` line with exit code 2; broken
    framing (a marker cut, no rc line, no frames at all) is a FactError too;
  * the task layer: `fabfile.tasks.common.one_line_errors` turns every exception class into an
    invoke `Exit` with one line and its code, secrets masked;
  * the real CLI: a bad --format is one stderr line; `inv render` says which node facts it assumed;
  * paramiko: a closed port or a non-SSH server prints no traceback through paramiko's logger.

No root, no lab, no network: the only sockets are on 127.0.0.1.
"""
from __future__ import annotations

import inspect
import json
import logging
import random
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from invoke import Exit

from fabfile.infra import facts as F
from fabfile.model import secrets
from fabfile.errors import (EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED, FactError, LbtkError, UsageError, one_line)
from fabfile.infra.facts import NodeState
from fabfile.model.loading import InventoryError, inventory_dir
from fabfile.infra.observe import parse_state, script
from fabfile.parsers import ParseError
from fabfile.parsers.lbtk import LiveFile, Raw, frames_token
from fabfile.infra.remote import RemoteError
from fabfile.tasks.common import one_line_errors
from tests.cli import inv_warm as inv
from tests.unit.core_fixtures import file_listing, units_output

ROOT = Path(__file__).resolve().parents[2]
FX = ROOT / "tests" / "fixtures"
TOKEN = "0123456789ab"
NODE = "node-x7"

FILES = F.files(["/etc/keepalived/keepalived.conf", "/etc/nginx/sites-enabled/lbtk"])
GENHASH = F.genhash([(f"10.189.0.1{k}", 80, "/healthz", 3) for k in (1, 2, 3)])
FACTS = [*F.ALL, FILES, GENHASH]
FACT_IDS = [f"{i}-{f.name}" for i, f in enumerate(FACTS)]


# ---------------------------------------------------------------- framing, as observe.script() does it
def frame(name: str, stdout: str, stderr: str = "", rc: int = 0, token: str = TOKEN) -> str:
    """One fact's frame: \\n@@TOKEN fact NAME\\n<stdout>\\n@@TOKEN stderr\\n<stderr>\\n@@TOKEN rc N\\n"""
    return f"\n@@{token} fact {name}\n{stdout}\n@@{token} stderr\n{stderr}\n@@{token} rc {rc}\n"


def test_frame_is_what_the_script_prints():
    """The frames built here are byte for byte what observe.script() makes /bin/sh print (facts with
    harmless printf commands: nothing here touches this machine)."""
    fake = [F.Fact("one", "printf 'a b\\nc\\n'; echo oops >&2; (exit 3)", lambda r: r, "kernel"),
            F.Fact("two", "printf 'no newline'", lambda r: r, "kernel"),
            F.Fact("three", "true", lambda r: r, "kernel")]
    out = subprocess.run(["/bin/sh", "-c", script(fake)], capture_output=True, text=True,
                         timeout=10).stdout
    token, out = frames_token(out)             # drawn on the node: tests/unit/test_frame_token.py
    assert out == (frame("one", "a b\nc\n", "oops\n", 3, token) + frame("two", "no newline", token=token)
                   + frame("three", "", token=token))
    seen = {}
    for f in fake:
        parse_state(NODE, [F.Fact(f.name, f.command, lambda r, n=f.name: seen.setdefault(n, r), "kernel")], out, token)
    # (a body's final newline is not kept: "a\n" and "a" read the same, which no parser minds)
    assert (seen["one"].stdout.rstrip("\n"), seen["one"].stderr.rstrip("\n"), seen["one"].exited) == ("a b\nc", "oops", 3)
    assert seen["two"] == Raw("no newline", "", 0) and seen["three"] == Raw("", "", 0)


# ---------------------------------------------------------------- what a node may print for a fact
GARBAGE = [
    "hello world",
    "command not found\nsh: 1: ipvsadm: not found\n",
    "Segmentation fault (core dumped)\n",
    "{}", "[]", "null", "[{}]", '[{"ifname": 3}]', '[{"ifname": "eth0", "ifindex": "x"}]', "[1, 2",
    "yes\nno\n", "maybe", "active\nbogus-state\n", "enabled\nenabled\nenabled\nenabled\nenabled\n",
    "keepalived\t1:2.2.7\n", "a\tb\tc\td\n", "\t\t\n",
    "@@file /etc/keepalived/keepalived.conf\n644\n!!!not base64\n",
    "aGk=\n", (FX / "lbtk/files_tar.txt").read_text()[:400] + "\n",       # not tar; a tar cut short
    "@@vrrp 10.0.0.1\n", "ok node1 0.1\n", "2024-13-45T99\n/etc/x\n",
    "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  nonsense\n",
    "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n  -> 10.0.0.1:80 Route 1 0 0\n",
    "master sync daemon (mcast=eth0, syncid=x)\n",
    "net.ipv4.ip_forward\n", "= 1\n", " = \n",
    "\x00\x01\x02", "\r\n\r\n", "\u2028\u2029\x85\x0b\x0c", "ë" * 500, "x" * 100_000,
    "\n@@deadbeef0000 rc 0\n",                       # a marker with another run's token: just text
]


def _fixtures() -> list[tuple[str, str, str, int]]:
    """(name, stdout, stderr, rc) of every captured output of the tools the facts read."""
    out = []
    for tool in ("ip_addr", "ipvsadm", "sysctl", "systemctl", "genhash", "nginx_t"):
        for p in sorted((FX / tool).glob("*.txt")):
            err = p.with_suffix(".stderr")
            rc = p.with_suffix(".rc")
            out.append((f"{tool}/{p.stem}", p.read_text(), err.read_text() if err.exists() else "",
                        int(rc.read_text()) if rc.exists() else 0))
    return out


FIXTURES = _fixtures()


def truncations(text: str) -> list[str]:
    """A real output cut in the middle: mid-character-run, mid-line, and at a line boundary."""
    if not text:
        return []
    half = len(text) // 2
    lines = text.splitlines(keepends=True)
    mid_line = "".join(lines[: len(lines) // 2]) + lines[len(lines) // 2][: max(1, len(lines[len(lines) // 2]) // 2)]
    at_line = "".join(lines[: max(1, len(lines) // 2)])
    return list(dict.fromkeys(t for t in (text[:half], text[: half + 1], mid_line, at_line, text[:1]) if t != text))


def binary_junk(seed: int, n: int = 600) -> str:
    rnd = random.Random(seed)
    return rnd.randbytes(n).decode(errors="replace")


def expect_state_or_fact_error(node: str, fact: F.Fact, text: str, why: str) -> NodeState | FactError:
    try:
        state = parse_state(node, [fact], text, TOKEN)
    except FactError as e:
        msg, code = one_line(e)
        assert "\n" not in msg and len(msg.splitlines()) == 1, f"{why}: not one line: {msg!r}"
        assert msg.startswith("error: "), f"{why}: {msg!r}"
        assert node in msg, f"{why}: the node is not named: {msg!r}"
        assert code == EXIT_ERROR, f"{why}: exit code {code}"
        assert str(e) == " ".join(str(e).split()), f"{why}: FactError text is not one clean line: {str(e)!r}"
        return e
    except BaseException as e:  # noqa: BLE001 - exactly what this test is about
        raise AssertionError(f"{why}: parse_state raised {e.__class__.__name__}: {e!r} "
                             f"(only NodeState or FactError are allowed)") from e
    assert isinstance(state, NodeState) and state.name == node, f"{why}: returned {repr(state)[:300]}"
    return state


@pytest.mark.parametrize("fact", FACTS, ids=FACT_IDS)
def test_garbage_stdout(fact):
    for i, g in enumerate(GARBAGE):
        for stderr, rc in (("", 0), ("sh: 1: something: not found", 127), (g, 1)):
            r = expect_state_or_fact_error(NODE, fact, frame(fact.name, g, stderr, rc), f"{fact.name} garbage #{i}")
            if isinstance(r, FactError):
                assert fact.name in str(r), f"the fact is not named: {r}"


@pytest.mark.parametrize("fact", FACTS, ids=FACT_IDS)
def test_empty_stdout(fact):
    for stderr, rc in (("", 0), ("", 1), ("Failed to connect to bus: No such file or directory", 1),
                       ("System has not been booted with systemd as init system (PID 1). Can't operate.", 1)):
        expect_state_or_fact_error(NODE, fact, frame(fact.name, "", stderr, rc), f"{fact.name} empty, rc {rc}")


@pytest.mark.parametrize("fact", FACTS, ids=FACT_IDS)
def test_real_output_truncated(fact):
    for name, text, stderr, rc in FIXTURES:
        for cut in truncations(text):
            for err in (stderr, stderr[: len(stderr) // 2]):
                expect_state_or_fact_error(NODE, fact, frame(fact.name, cut, err, rc),
                                           f"{fact.name} <- {name} cut at {len(cut)}/{len(text)}")


def test_truncated_json_is_refused():
    """`ip -j addr` cut in the middle can never be read as a (shorter) list of interfaces."""
    for name, text, _, _ in FIXTURES:
        if name.startswith("ip_addr/") and text.strip():
            r = expect_state_or_fact_error(NODE, F.ADDRS, frame("addrs", text[: len(text) // 2]), name)
            assert isinstance(r, FactError), f"{name} cut in half parsed as {r.interfaces!r}"


@pytest.mark.parametrize("fact", FACTS, ids=FACT_IDS)
def test_binary_junk(fact):
    for seed in range(12):
        junk = binary_junk(seed)
        expect_state_or_fact_error(NODE, fact, frame(fact.name, junk, binary_junk(seed + 100, 80), seed % 3),
                                   f"{fact.name} junk seed {seed}")


# ---------------------------------------------------------------- broken framing
GOOD = {  # a plausible answer for every fact, so a whole round trip parses
    "kernel": "6.1.0-18-amd64\n",
    "release": (FX / "os_release/bookworm.txt").read_text(),
    "packages": "keepalived\t1:2.2.7-1+b2\tii \nipvsadm\t1:1.31-1+b3\tii \nnginx\t1.22.1-9\tii \n",
    "binaries": "keepalived\nnginx\nipvsadm\niptables\n",
    "has_ipvs": "yes\n",
    "addrs": (FX / "ip_addr/netns_all.txt").read_text(),
    "sysctl": (FX / "sysctl/arp_set.txt").read_text(),
    "units": units_output({u: "inactive" if u == "lbtk-vip-lo" else "active" for u in F.UNITS},
                          {u: "enabled" for u in F.UNITS}),
    "ipvs": (FX / "ipvsadm/L_n.txt").read_text(),
    "sync_daemons": (FX / "ipvsadm/L_daemon_master.txt").read_text(),
    "ipvs_stats": (FX / "ipvsadm/L_n_stats_exact.txt").read_text(),
    "pending": "",
    "backups": ("@@backup 20240101T120000.5\n/etc/keepalived/keepalived.conf /etc/nginx/sites-enabled/lbtk\n\n"
                "@@backup 20231231T090000.25\n/etc/keepalived/keepalived.conf\n\n"),
    "files": file_listing({"/etc/keepalived/keepalived.conf": LiveFile(0o644, b"hello\n"),
                           "/etc/nginx/sites-enabled/lbtk": None}),
    "ipvs_rate": (FX / "ipvsadm/L_n_rate.txt").read_text(),
    "vrrp": (FX / "keepalived_json/healthy_node1.json").read_text(),
    "changes": (FX / "keepalived_json/journal_split_node2.txt").read_text(),
    "runtime": (FX / "lbtk_state/runtime.json").read_text(),
    "lock": (FX / "lbtk_state/lock").read_text(),
    "history": (FX / "lbtk_state/history").read_text(),
    "nginx_defaults": (FX / "nginx_t/defaults_duplicate_default.txt").read_text(),
    "digests": (FX / "genhash/healthz_all.txt").read_text(),
}
ROUND_TRIP = [*F.ALL, FILES, GENHASH]


def good_output(fs=ROUND_TRIP) -> str:
    return "".join(frame(f.name, GOOD[f.name]) for f in fs)


def expect_fact_error(text: str, why: str, fs=ROUND_TRIP) -> FactError:
    try:
        state = parse_state(NODE, fs, text, TOKEN)
    except FactError as e:
        msg, code = one_line(e)
        assert msg.startswith("error: ") and NODE in msg and "\n" not in msg and code == EXIT_ERROR, msg
        return e
    except BaseException as e:  # noqa: BLE001
        raise AssertionError(f"{why}: parse_state raised {e.__class__.__name__}: {e!r}") from e
    raise AssertionError(f"{why}: parsed as {repr(state)[:300]}")


def test_good_round_trip_parses():
    """The baseline: without it, every 'must raise' below could pass for the wrong reason."""
    s = parse_state(NODE, ROUND_TRIP, good_output(), TOKEN)
    assert s.kernel == "6.1.0-18-amd64" and s.has_ipvs is True and "keepalived" in s.packages
    assert s.interfaces and s.ipvs is not None and s.sync_daemons and s.ipvs_stats is not None
    assert s.enabled == {u: "enabled" for u in F.UNITS} and s.active["nginx"] == "active"
    assert s.files["/etc/keepalived/keepalived.conf"].content == b"hello\n"
    assert s.files["/etc/nginx/sites-enabled/lbtk"] is None
    assert s.last_backup[0] == "20240101T120000.5" and s.pending == []


@pytest.mark.parametrize("text,why", [
    ("", "empty output"),
    ("\n", "a newline"),
    ("hello\nworld\n", "no frames at all"),
    (good_output().replace(TOKEN, "ba9876543210"), "frames of another run (another token)"),
    (good_output().replace(f"@@{TOKEN} ", f"@@{TOKEN[:-1]} "), "every marker's token cut"),
    (good_output().rsplit(f"\n@@{TOKEN} rc", 1)[0], "last rc line missing"),
    (good_output().rsplit(f"\n@@{TOKEN} rc", 1)[0] + f"\n@@{TOKEN} r", "last marker cut"),
    (good_output().rsplit(f"\n@@{TOKEN} rc", 1)[0] + f"\n@@{TOKEN[:5]}", "last marker's token cut"),
    (good_output().rsplit(f"\n@@{TOKEN} stderr", 1)[0], "ends in the last stdout"),
    (good_output().replace(f"@@{TOKEN} rc 0", f"@@{TOKEN} rc x", 1), "rc not a number"),
    (good_output().replace(f"@@{TOKEN} rc 0", f"@@{TOKEN} rc -1", 1), "rc negative"),
    (good_output().replace(f"@@{TOKEN} rc 0", f"@@{TOKEN} rc", 1), "rc without a number"),
    (good_output().replace(f"\n@@{TOKEN} stderr\n", "\n", 1), "stderr marker missing"),
    (good_output().replace(f"@@{TOKEN} fact kernel", f"@@{TOKEN} fakt kernel", 1), "unknown marker word"),
    (good_output().replace(f"\n@@{TOKEN} fact kernel\n", "\n", 1), "a fact marker missing"),
    (good_output().replace(frame("has_ipvs", GOOD["has_ipvs"]), ""), "one fact's frame missing"),
    (frame("kernel", GOOD["kernel"]), "only the first frame"),
    (good_output() + f"\n@@{TOKEN} fact extra\nx", "an extra frame cut"),
    (good_output()[: len(good_output()) // 2], "cut in the middle"),
    ("\x00" * 64, "NUL bytes"),
])
def test_broken_framing_is_a_fact_error(text, why):
    expect_fact_error(text, why)


def test_every_cut_of_a_round_trip():
    """A connection dropped anywhere: every prefix short of the last rc digit is a FactError."""
    text = good_output()
    last_digit = text.rindex(f"@@{TOKEN} rc ") + len(f"@@{TOKEN} rc ")
    cuts = sorted({*range(0, len(text), max(1, len(text) // 400)),
                   *(i + d for i in range(len(text)) if text.startswith(f"\n@@{TOKEN}", i) for d in range(-1, 22))})
    for p in cuts:
        if 0 <= p <= last_digit:
            expect_fact_error(text[:p], f"cut at {p}/{len(text)}")
    assert isinstance(parse_state(NODE, ROUND_TRIP, text, TOKEN), NodeState)


TOOL_OF = {"addrs": "ip_addr", "sysctl": "sysctl", "units": "systemctl", "ipvs": "ipvsadm",
           "sync_daemons": "ipvsadm", "ipvs_stats": "ipvsadm", "ipvs_rate": "ipvsadm",
           "vrrp": "keepalived_json", "changes": "keepalived_json", "digests": "genhash",
           "nginx_defaults": "nginx_t"}
MUTANTS = ["", "-1", "9" * 30, "nan", "1e5", "0x10", "٣", "\t", " ", ":", "[", "]", "(", ")", "=", ",",
           "@@file", "->", "{", "}", '"', "null", "true", "0", "ii", "\x00", "\ufffd", "é", "\r"]


@pytest.mark.parametrize("fact", FACTS, ids=FACT_IDS)
def test_mutated_real_output(fact):
    """A plausible output with a token or two replaced or spliced: the parsers' edge cases."""
    tool = TOOL_OF.get(fact.name)
    bases = [GOOD[fact.name]] + [t for n, t, _, _ in FIXTURES if tool and n.startswith(tool + "/")]
    rnd = random.Random(fact.name)
    for b, base in enumerate(bases):
        toks = base.replace("\n", " \n ").split(" ")
        for k in range(40):
            t = list(toks)
            for _ in range(rnd.randint(1, 3)):
                i, w = rnd.randrange(len(t)), rnd.choice(MUTANTS)
                j = rnd.randint(0, len(t[i]))
                t[i] = w if rnd.random() < 0.5 else t[i][:j] + w + t[i][j:]
            text = " ".join(t).replace(" \n ", "\n")
            expect_state_or_fact_error(NODE, fact, frame(fact.name, text), f"{fact.name} base {b} mutant {k}: {text[:200]!r}")


UNICODE_DIGITS = ["²", "¹", "³", "①"]   # str.isdigit() says yes, int() says no


@pytest.mark.parametrize("digit", UNICODE_DIGITS)
def test_garbled_rc_with_a_unicode_digit(digit):
    expect_fact_error(good_output().replace(f"@@{TOKEN} rc 0", f"@@{TOKEN} rc {digit}", 1), f"rc {digit}")


@pytest.mark.parametrize("where", ["weight", "port"])
def test_ipvsadm_with_a_unicode_digit(where):
    lines = GOOD["ipvs"].splitlines(keepends=True)
    i = next(i for i, ln in enumerate(lines) if ln.strip().startswith("->") and ln.split()[1][0].isdigit())
    toks = lines[i].split()
    if where == "weight":
        toks[3] = "²"
    else:
        toks[1] = toks[1].rsplit(":", 1)[0] + ":²"
    lines[i] = "  " + " ".join(toks) + "\n"
    expect_state_or_fact_error(NODE, F.IPVS_TABLE, frame("ipvs", "".join(lines)), f"ipvsadm {where} ²")


# ---------------------------------------------------------------- the task-layer funnel
@pytest.fixture(autouse=True)
def _restore_third_party_logging():
    """one_line_errors() reconfigures the paramiko/invoke/fabric loggers: leave them as found."""
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate)
             for n in ("paramiko", "invoke", "fabric")}
    yield
    for n, (handlers, propagate) in saved.items():
        logging.getLogger(n).handlers[:] = handlers
        logging.getLogger(n).propagate = propagate


def _raising(exc: BaseException):
    @one_line_errors
    def task_body(c, env="lab", format=None):
        """A task."""
        raise exc
    return task_body


CASES = [
    (LbtkError("node1: something broke"), "error: node1: something broke", EXIT_ERROR),
    (UsageError("--format bogus: choose from auto, rich, plain, markdown"), "error: --format bogus", EXIT_ERROR),
    (InventoryError("inventories/x.yaml: nodes[0].host: 'x' has the wrong form — fix it"),
     "error: inventories/x.yaml: nodes[0].host", EXIT_ERROR),
    (RemoteError("node2 (10.0.0.2:22): connection refused — is sshd running on the node?"),
     "error: node2 (10.0.0.2:22): connection refused", EXIT_ERROR),
    (FactError("node3", "addrs (`ip -j addr`)", "ip -j addr: not JSON\n(at char 0)"), "error: node3: cannot read addrs",
     EXIT_ERROR),
    (ParseError("ipvsadm: weird\nline"), "error: unexpected tool output: ipvsadm: weird line", EXIT_ERROR),
    (ValueError("boom\nsecond line\r\nthird"), "internal error: ValueError: boom second line third", EXIT_INTERNAL),
    (KeyError("node9"), "internal error: KeyError: 'node9'", EXIT_INTERNAL),
    (KeyError(), "internal error: KeyError —", EXIT_INTERNAL),
    (RuntimeError("x\u2028y\x0bz\x85w"), "internal error: RuntimeError: x y z w", EXIT_INTERNAL),
    (KeyboardInterrupt(), "interrupted", EXIT_INTERRUPTED),
]


@pytest.mark.parametrize("exc,start,code", CASES, ids=[f"{i}-{c[0].__class__.__name__}" for i, c in enumerate(CASES)])
def test_one_line_errors(exc, start, code, monkeypatch):
    monkeypatch.delenv("LBTK_DEBUG", raising=False)
    with pytest.raises(Exit) as ei:
        _raising(exc)(None)
    e = ei.value
    assert e.code == code
    assert isinstance(e.message, str) and len(e.message.splitlines()) == 1 and "\n" not in e.message, e.message
    assert e.message.startswith(start), e.message
    assert e.__suppress_context__ and e.__cause__ is None       # `from None`: no chained traceback
    if code == EXIT_INTERNAL:
        assert "inv --debug" in e.message


def test_funnel_passes_results_and_exits_through():
    @one_line_errors
    def ok(c, env="lab", format=None):
        """Doc."""
        return 42

    @one_line_errors
    def exits(c):
        raise Exit("found 2 problems", code=1)

    assert ok(None) == 42
    assert ok.__name__ == "ok" and ok.__doc__ == "Doc."
    assert list(inspect.signature(ok).parameters) == ["c", "env", "format"]   # invoke reads the flags from it
    with pytest.raises(Exit) as ei:
        exits(None)
    assert ei.value.code == 1 and ei.value.message == "found 2 problems"


def test_debug_prints_the_traceback_too(monkeypatch, capsys):
    monkeypatch.setenv("LBTK_DEBUG", "1")
    with pytest.raises(Exit) as ei:
        _raising(ValueError("boom"))(None)
    assert ei.value.code == EXIT_INTERNAL and "\n" not in ei.value.message
    assert "Traceback" in capsys.readouterr().err


def test_broken_pipe_exits_quietly():
    """`inv render | head`: the reader left; exit 0, no traceback (in a child: it redirects fd 1)."""
    code = textwrap.dedent("""
        from invoke import Exit
        from fabfile.tasks.common import one_line_errors
        @one_line_errors
        def t(c):
            raise BrokenPipeError()
        try:
            t(None)
        except Exit as e:
            import sys
            sys.stderr.write(f"code={e.code}")
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "code=0", r.stderr


SECRET = "Zq7Kp2Xw"


@pytest.fixture
def registered_secret(monkeypatch):
    """A secret resolved the way the toolkit resolves them, inside a run (so the run's Masker knows
    it and the funnel, which joins the run, masks it); forgotten when the run ends."""
    monkeypatch.setenv("LBTK_TEST_FUNNEL_SECRET", SECRET)
    from fabfile.model.schema import Authentication
    with secrets.masking() as masker:
        masker.add(secrets.resolve(Authentication(auth_pass_env="LBTK_TEST_FUNNEL_SECRET"), "test"))
        yield SECRET
    assert SECRET in secrets.mask(SECRET)       # the run is over: nothing kept


@pytest.mark.parametrize("exc", [
    RemoteError(f"node1: `echo {SECRET} | keepalived` exited 1: bad pass {SECRET}"),
    InventoryError(f"inventories/x.yaml: auth_pass {SECRET} is wrong"),
    ValueError(f"internal: {SECRET}\nmore {SECRET}"),
    ParseError(f"unexpected '{SECRET}'"),
    FactError("node1", "files", f"content {SECRET}"),
], ids=["remote", "inventory", "internal", "parse", "fact"])
def test_secrets_are_masked(registered_secret, exc):
    with pytest.raises(Exit) as ei:
        _raising(exc)(None)
    msg = ei.value.message
    assert SECRET not in msg and secrets.MASK in msg and "\n" not in msg, msg


def test_auth_pass_values_are_masked_even_if_never_resolved():
    with pytest.raises(Exit) as ei:
        _raising(LbtkError("node1: keepalived.conf line 9: auth_pass hunter22 rejected"))(None)
    assert "hunter22" not in ei.value.message and "auth_pass ********" in ei.value.message


# ---------------------------------------------------------------- through the real CLI
@pytest.mark.parametrize("task", ["check", "verify"])
def test_bad_format_is_one_line(task):
    r = inv(task, "--env", "lab", "--format", "bogus", timeout=60)
    assert r.returncode == EXIT_ERROR, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and "--format" in lines[0], lines[0]
    assert "Traceback" not in r.stderr + r.stdout


def test_render_says_which_facts_it_assumed():
    r = inv("render", "--env", "lab", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    said = [ln for ln in (r.stdout + r.stderr).splitlines() if "node facts" in ln]
    assert said, f"no 'node facts' line in:\n{r.stdout[:2000]}"
    assert all("assumed" in ln for ln in said), said
    for node in ("node1", "node2", "node3"):
        assert any(node in ln for ln in said), (node, said)
    secret_file = inventory_dir() / "secrets/lab.auth_pass"
    if secret_file.exists() and secret_file.read_text().strip():
        assert secret_file.read_text().strip() not in r.stdout   # rendered, but masked


# ---------------------------------------------------------------- paramiko through remote.run
CHILD = textwrap.dedent("""
    import json, sys
    from fabfile.model import loading as inventory; from fabfile.infra import remote
    from fabfile.errors import one_line

    def attempt(port, key, known):
        inv = inventory.parse({
            "cluster": "loop",
            "defaults": {"interface": "lo", "ssh": {"user": "root", "port": port, "key_filename": key,
                                                    "known_hosts": known, "connect_timeout": 5, "retries": 0}},
            "nodes": [{"name": "loop1", "host": "127.0.0.1", "priority": 100, "state": "MASTER"}],
            "vrrp_instances": [{"name": "VI_1", "virtual_router_id": 51, "virtual_ipaddress": ["127.0.0.100"]}],
        })
        node = inv.nodes[0]
        assert node.host == "127.0.0.1" and inv.ssh_of(node).port == port   # loopback only
        from fabfile.model.context import Env
        with remote.nodes(Env(inv=inv, path=None, secrets={}, name="loop"), [node]) as group:
            try:
                remote.run(group[node.name], "true", timeout=10)
                return {"port": port, "error": None}
            except remote.RemoteError as e:
                return {"port": port, "error": str(e), "line": one_line(e)[0], "code": one_line(e)[1]}

    key, known = sys.argv[1], sys.argv[2]
    for port in sys.argv[3:]:                   # every case in this one interpreter: a JSON line each
        print(json.dumps(attempt(int(port), key, known)), flush=True)
""")


def _run_child(ports: list[int], tmp_path: Path) -> tuple[dict[int, dict], subprocess.CompletedProcess]:
    r = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "no_such_key"), str(tmp_path / "known_hosts"),
                        *map(str, ports)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    outs = [json.loads(ln) for ln in r.stdout.strip().splitlines()[-len(ports):]]
    return {o["port"]: o for o in outs}, r


class GarbageServer:
    """127.0.0.1, a random port: accept, say 'garbage', hang up — not an SSH server."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            try:
                conn.sendall(b"garbage\r\n")
            finally:
                conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def _check_one_line(out: dict, port: int):
    assert out["error"], out
    assert "\n" not in out["error"] and len(out["line"].splitlines()) == 1, out
    assert out["line"].startswith("error: loop1 (127.0.0.1:") and str(port) in out["line"], out
    assert out["code"] == EXIT_ERROR


@pytest.fixture(scope="module")
def loopback_failures(tmp_path_factory):
    """One child, two SSH failures on 127.0.0.1: a server that is not SSH, and a closed port
    (bound, never listening: a connect is refused, and no one can take the port)."""
    srv = GarbageServer()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    try:
        outs, r = _run_child([srv.port, closed_port], tmp_path_factory.mktemp("ssh"))
    finally:
        srv.close()
        closed.close()
    return {"garbage": (outs[srv.port], srv), "closed": (outs[closed_port], closed_port), "run": r}


def test_non_ssh_server_prints_no_traceback(loopback_failures):
    out, srv = loopback_failures["garbage"]
    r = loopback_failures["run"]
    assert srv.accepted >= 1, "the client never reached the test server"
    assert "Traceback" not in r.stderr and "Error reading SSH protocol banner" not in r.stderr, r.stderr
    assert r.stderr.strip() == "", r.stderr
    _check_one_line(out, srv.port)
    assert "banner" in out["error"].lower() or "ssh" in out["error"].lower(), out


def test_closed_port_prints_no_traceback(loopback_failures):
    out, port = loopback_failures["closed"]
    r = loopback_failures["run"]
    assert "Traceback" not in r.stderr and r.stderr.strip() == "", r.stderr
    _check_one_line(out, port)
    assert "connection refused" in out["error"], out
