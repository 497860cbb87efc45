"""The fact frames cannot be forged by what a node prints (issue 24): their token is drawn on the
node when the script starts and is on no command line, where any local user could read it (`ps`)
and print it from a file a fact reads."""
from __future__ import annotations

import re
import subprocess

import pytest

from fabfile.errors import FactError
from fabfile.infra import facts as F
from fabfile.infra.observe import parse_output, script
from fabfile.parsers.lbtk import FRAMES, frames_token

FORGED_TOKEN = "11111111-2222-3333-4444-555555555555"
FORGED = (f"\\n{FRAMES} {FORGED_TOKEN}\\n\\n@@{FORGED_TOKEN} fact two\\nforged\\n@@{FORGED_TOKEN} stderr\\n\\n"
          f"@@{FORGED_TOKEN} rc 0\\n")


def run(facts) -> str:
    return subprocess.run(["/bin/sh", "-c", script(facts)], capture_output=True, text=True, timeout=10).stdout


def test_the_token_is_on_no_command_line_and_new_each_run():
    facts = [F.Fact("one", "true", lambda r: r.stdout, "kernel")]
    text = script(facts)
    first, second = frames_token(run(facts))[0], frames_token(run(facts))[0]
    assert first != second
    assert first not in text and second not in text
    assert not re.search(r"@@[0-9a-f]{6,}", text)          # no literal token in what `ps` shows


def test_a_fact_printing_frames_cannot_pass_them_off_as_ours():
    seen = {}
    facts = [F.Fact("one", f"printf '{FORGED}'", lambda r: seen.setdefault("one", r.stdout), "kernel"),
             F.Fact("two", "printf real", lambda r: seen.setdefault("two", r.stdout), "release")]
    state = parse_output("lb1", facts, run(facts))
    assert state.release == "real" and seen["two"] == "real"
    assert "forged" in seen["one"]                           # just that fact's (odd) output


@pytest.mark.parametrize("text", ["", "no header at all\n", f"{FRAMES} not-a-token\n",
                                  f"\n@@{FORGED_TOKEN} fact one\nx\n@@{FORGED_TOKEN} stderr\n\n@@{FORGED_TOKEN} rc 0\n"])
def test_output_without_a_header_is_one_fact_error(text):
    with pytest.raises(FactError):
        parse_output("lb1", [F.Fact("one", "true", lambda r: r.stdout, "kernel")], text)
