"""journalctl output (`-o cat`, `-o short-iso`) and keepalived's own log file (rsyslog's
RSYSLOG_FileFormat, inventory `logging:`) -> the lines that explain a failure or a transition."""
from __future__ import annotations

import re
from dataclasses import dataclass

TRANSITION = re.compile(r"Entering (MASTER|BACKUP|FAULT) STATE|"
                        r"priority 0|Stopping|Starting|Reloading|removing|Removed|Adding|SECURITY|"
                        r"Unknown keyword|WARNING|ERROR|error", re.I)
BAD = re.compile(r"FAULT|ERROR|SECURITY")


@dataclass(frozen=True)
class Entry:
    time: str
    message: str
    bad: bool           # FAULT, ERROR, SECURITY: shown in red


def worst_line(text: str) -> str:
    """The line that explains a failure (nginx's [emerg], keepalived's error), else the last."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for word in ("[emerg]", "[error]", "error", "Error", "failed"):
        for ln in lines:
            if word in ln:
                return ln
    return lines[-1] if lines else "no output"


def transitions(text: str) -> list[Entry]:
    """State transitions and warnings, in order, from `journalctl -u keepalived -o short-iso`
    (`2026-11-25T08:16:29+0000 node2 Keepalived_vrrp[211]: MSG`) or from the log file rsyslog
    writes (`2026-11-25T08:16:29.123456+00:00 node2 Keepalived_vrrp[211]: MSG`): the same shape,
    the time shown to the second either way."""
    out = []
    for ln in text.splitlines():
        if TRANSITION.search(ln) and not ln.startswith("--"):
            ts, _, msg = ln.partition(" ")
            out.append(Entry(_FRACTION.sub("", ts), msg.split(": ", 1)[-1], bool(BAD.search(ln))))
    return out


_FRACTION = re.compile(r"(?<=T\d\d:\d\d:\d\d)\.\d+")
SOURCE_MARK = "@@source "     # first line of `inv logs`' command: where the lines below come from


def split_source(text: str) -> tuple[str, str]:
    """`@@source /var/log/keepalived.log` (or `@@source journal`) then the lines -> (source, lines).
    No mark: the journal."""
    first, _, rest = text.partition("\n")
    if first.startswith(SOURCE_MARK):
        return first[len(SOURCE_MARK):].strip() or "journal", rest
    return "journal", text


def tail(text: str, n: int) -> list[str]:
    return text.splitlines()[-n:]


__all__ = ["Entry", "worst_line", "transitions", "tail", "split_source", "SOURCE_MARK"]


@dataclass(frozen=True)
class StateChange:
    at: float            # epoch seconds (journalctl -o short-unix)
    instance: str
    state: str           # MASTER | BACKUP | FAULT


_STATE_RE = re.compile(r"^(\d+(?:\.\d+)?) .*\(([^)\s]+)\) Entering (MASTER|BACKUP|FAULT) STATE")


def state_changes(text: str) -> list[StateChange]:
    """`journalctl -u keepalived -o short-unix`: every VRRP state entry, oldest first."""
    out = []
    for ln in text.splitlines():
        m = _STATE_RE.match(ln.strip())
        if m:
            out.append(StateChange(float(m.group(1)), m.group(2), m.group(3)))
    return out
