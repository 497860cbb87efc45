"""The outputs the runbooks quote are a real director's: captured on the kernel tier (real IPVS) by
scripts/capture-runbook-outputs.py, never the plain lab's "kernel has no IPVS" rows."""
from __future__ import annotations

import functools
import importlib.util
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = sorted((ROOT / "runbooks").glob("*.md"))
# commands whose answer has IPVS rows or columns: quoted only as captured on the kernel tier
IPVS_TASKS = ("status", "verify", "sync-status", "sync-start", "sync-stop", "install")


@functools.cache
def _script():
    spec = importlib.util.spec_from_file_location("capture_runbook_outputs",
                                                  ROOT / "scripts" / "capture-runbook-outputs.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod          # its dataclass looks its module up there
    spec.loader.exec_module(mod)
    return mod


def text_blocks(path: Path):
    """(line of the ```text fence, the line before it, the block's lines) of each ```text block."""
    lines = path.read_text().splitlines()
    k = 0
    while k < len(lines):
        if lines[k].strip() == "```text":
            end = next(j for j in range(k + 1, len(lines)) if lines[j].strip() == "```")
            yield k + 1, lines[k - 1].strip() if k else "", [x.strip() for x in lines[k + 1:end]]
            k = end
        k += 1


def test_no_runbook_quotes_the_plain_lab_without_ipvs():
    quoted = [f"{p.name}:{no}" for p in RUNBOOKS for no, _, body in text_blocks(p)
              if any("kernel has no IPVS" in x or re.search(r"\bno IPVS\b", x) for x in body)]
    assert not quoted, ("a runbook quotes the plain lab's \"kernel has no IPVS\" (re-capture it on the kernel tier: "
                        "scripts/capture-runbook-outputs.py):\n" + "\n".join(quoted))


def test_ipvs_outputs_are_marked_for_the_kernel_tier_capture():
    unmarked = []
    for p in RUNBOOKS:
        for no, before, body in text_blocks(p):
            words = body[0].split() if body else []
            if words[:2] and words[:2] == ["$", "inv"] and len(words) > 2 and words[2] in IPVS_TASKS \
                    and not before.startswith("<!-- kernel-output:"):
                unmarked.append(f"{p.name}:{no}: {body[0]}")
    assert not unmarked, ("these quote a command with IPVS rows without `<!-- kernel-output: STATE -->` before "
                          "them (scripts/capture-runbook-outputs.py):\n" + "\n".join(unmarked))


def test_markers_are_well_formed():
    found, problems = _script().blocks()
    assert not problems, "\n".join(problems)
    assert len(found) >= 20
    assert {s for b in found for s in b.state} >= {"nginx-down-node3", "auth-mismatch-node2"}


def test_the_script_sees_a_bad_marker(tmp_path):
    p = tmp_path / "x.md"
    p.write_text("<!-- kernel-output: no-such-fault -->\n```text\n$ inv verify --env prod\n```\n"
                 "<!-- kernel-output: healthy -->\n\n```text\n$ inv status --env prod\n```\n"
                 "<!-- kernel-output: healthy -->\n```text\n$ inv status --env lab\n```\n")
    found, problems = _script().blocks([p])
    assert not found and len(problems) == 3
    assert "unknown state" in problems[0] and "right before" in problems[1] and "--env prod" in problems[2]


def test_verify_rows_of_other_nodes_are_shortened_only_when_ok():
    rows = ["checks",
            "check                 node     result    detail",
            "--------------------  -------  --------  ------",
            "VIP 10.189.0.150      cluster  ok        held by node1",
            "nginx running         node1    ok        active",
            "nginx running         node2    ok        active",
            "nginx running         node3    FAIL      inactive",
            "IPVS table            node3    ok        3 real servers",
            "no re-balancing       node2    ok        0 connections",
            "verify: 1 of 7 checks FAILED"]
    out = _script().shorten_checks(rows, "node1")
    assert "nginx running         node3    FAIL      inactive" in out
    assert "nginx running         node2    ok        active" not in out
    note = [x for x in out if "more row" in x]
    assert "IPVS table            node3    ok        3 real servers" in out       # node1 has no such row
    assert "no re-balancing       node2    ok        0 connections" in out
    assert note == ["…".ljust(22) + "(node2: 1 more row, all ok)"], out
    assert out[-1] == "verify: 1 of 7 checks FAILED"
