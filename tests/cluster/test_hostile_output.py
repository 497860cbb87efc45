"""Issue 24 acceptance: strings from a node never reach the operator's terminal raw.

On the lab: node3 gets a dummy interface whose name holds escape sequences (Linux allows any byte
in a name but '/', ':' and white space, at most 15 bytes), and a runtime.json record and a history
line whose fields hold escape sequences, a bidi override and rich markup. `inv verify`, `status`,
`history` and `watch` (one snapshot: no terminal) show them escaped and exit as they would
without them; everything is put back afterwards.
"""
from __future__ import annotations

import json
import shlex
import unicodedata

import pytest

from .conftest import inv, sh

NODE = "node3"                       # a backup: nothing here can move the VIP
IFNAME = "d\x1b[2J\x1b[H"            # 8 bytes: clear the screen, cursor home
IFNAME_SHOWN = "d\\x1b[2J\\x1b[H"
BY = "\x1b]0;owned\x07eve\u202e[red]"
BY_SHOWN = "\\x1b]0;owned\\x07eve\\u202e[red]"
OPERATOR = "\x1b[32mall green\x1b[0m[/]"
OPERATOR_SHOWN = "\\x1b[32mall green\\x1b[0m[/]"
RUNTIME = "/var/lib/lbtk/runtime.json"
HISTORY = "/var/lib/lbtk/history"


def raw_controls(text: str) -> list[str]:
    return sorted({repr(c) for c in text if c != "\n" and unicodedata.category(c) in {"Cc", "Cf", "Cs", "Zl", "Zp"}})


def bytes_word(s: str) -> str:
    """`s` as one shell word: printf writes its UTF-8 bytes from octal escapes (none raw in argv)."""
    return "\"$(printf '" + "".join(f"\\{b:03o}" for b in s.encode()) + "')\""


@pytest.fixture
def hostile_node3(deployed, nodes):
    c = nodes[NODE]
    saved = {p: sh(c, f"cat {p} 2>/dev/null; echo @@rc $?").stdout for p in (RUNTIME, HISTORY)}
    newest = max([0] + [json.loads(ln).get("serial", 0) for ln in
                        [sh(nodes[n], f"cat {RUNTIME} 2>/dev/null").stdout.strip() for n in nodes] if ln])
    # a drain of node3's real server, so `status` shows who drained it (the lab's kernel has no IPVS:
    # nothing else follows from it, and the record is put back afterwards)
    record = json.dumps({"serial": newest + 1, "drained": ["10.189.0.13"], "by": BY, "at": OPERATOR})
    entry = json.dumps({"id": "29991231T235959.000", "at": "2999-12-31T23:59:59+00:00", "operator": OPERATOR,
                        "commit": "", "dirty": False, "task": BY, "env": "lab", "files": [], "actions": [],
                        "result": "ok"})
    try:
        r = sh(c, f"ip link add name {bytes_word(IFNAME)} type veth peer name lbtk-hpeer")   # no dummy module in the lab
        assert r.exited == 0, r.stderr
        # JSON as the toolkit writes these files (json.dumps: ESC as \u001b, read back as ESC itself)
        assert sh(c, f"printf '%s\\n' {shlex.quote(record)} > {RUNTIME} && "
                     f"printf '%s\\n' {shlex.quote(entry)} >> {HISTORY}").exited == 0
        yield
    finally:
        sh(c, f"ip link del {bytes_word(IFNAME)}")
        for path, text in saved.items():
            body, _, rc = text.rpartition("@@rc ")
            if rc.strip() == "0":
                sh(c, f"printf '%s' {shlex.quote(body)} > {path}")
            else:
                sh(c, f"rm -f {path}")
        assert IFNAME not in sh(c, "ip -o link show").stdout


def test_node_strings_are_shown_escaped_by_verify_status_history_and_watch(hostile_node3):
    runs = {"verify": inv("verify", "--env", "lab", "--no-http"),
            "status": inv("status", "--env", "lab"),
            "history": inv("history", "--env", "lab"),
            "watch": inv("watch", "--env", "lab", "--count", "1"),
            "addrs": inv("addrs", "--env", "lab")}
    for name, r in runs.items():
        assert r.returncode in (0, 1), f"{name}: exit {r.returncode}: {r.stderr}"
        assert not raw_controls(r.stdout + r.stderr), f"{name} printed {raw_controls(r.stdout + r.stderr)}"
        assert "cannot read" not in r.stdout, f"{name}: {NODE} was unreadable:\n{r.stdout}"
    assert IFNAME_SHOWN in runs["verify"].stdout and IFNAME_SHOWN in runs["addrs"].stdout
    assert BY_SHOWN in runs["history"].stdout                          # the entry's task
    assert OPERATOR_SHOWN in runs["history"].stdout
    assert f"(by {BY_SHOWN} at {OPERATOR_SHOWN};" in runs["status"].stdout
    assert runs["watch"].returncode == 0 and "VIP holders" in runs["watch"].stdout
