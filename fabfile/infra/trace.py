"""`-v` / LBTK_VERBOSE=1: every command lbtk runs on a node, printed as it starts (on stderr, so
JSON on stdout stays whole), secrets masked, the node's name first. fabfile/infra/remote.py calls
`command()` where a command leaves for a node; sudo's wrapping is left out (`(sudo)` says it is
there), the password never being on the command line anyway."""
from __future__ import annotations

import os
import sys

from fabfile.model.secrets import Masker, current
from fabfile.terminal import visible

VAR = "LBTK_VERBOSE"          # `-v` sets it (fabfile/tasks/program.py)
INDENT = "    "


def enabled() -> bool:
    return os.environ.get(VAR, "") not in ("", "0")


def shown(node: str, command: str, masker: Masker | None = None, become: str | None = None) -> str:
    """The lines `command` is shown as: `node $ first line`, further lines indented."""
    text = visible((masker or current()).mask(command.strip("\n")), lines=True)
    return f"{node}{' (sudo)' if become else ''} $ " + f"\n{INDENT}".join(text.split("\n"))


def command(node: str, command: str, masker: Masker | None = None, become: str | None = None) -> None:
    if enabled():
        sys.stderr.write(shown(node, command, masker, become) + "\n")    # one write: threads do not interleave
        sys.stderr.flush()
