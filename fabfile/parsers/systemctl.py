"""`systemctl is-active UNIT...` / `systemctl is-enabled UNIT...` -> {unit: word}.

Both print one word a line, in the order of the units asked; the parsers need that list.
Real behaviour (systemd 252, Debian 12; captured from a booted systemd-nspawn container,
tests/fixtures/systemctl/):
- is-active: active, inactive, failed, activating (a oneshot still running), ...; a unit that
  does not exist is just "inactive" (no error). Exit code 0 if at least ONE unit is active,
  3 otherwise: never use the exit code for "all active".
- is-enabled: enabled, disabled, static, masked, ...; a unit that does not exist prints
  `Failed to get unit file state for lbtk-nope.service: No such file or directory` on stderr
  (exit 1) and systemctl STOPS there: units after it get no line. Those are reported as
  "unknown", the missing one as "not-found".
- Where systemd is not PID 1: no stdout; stderr "System has not been booted with systemd as
  init system (PID 1). Can't operate." + "Failed to connect to bus: Host is down", exit 1:
  raises NoSystemd (a ParseError).
"""
from __future__ import annotations

import re

from fabfile.parsers import ParseError, excerpt

ACTIVE_WORDS = frozenset({"active", "reloading", "inactive", "failed", "activating", "deactivating",
                          "maintenance", "refreshing", "unknown"})
ENABLED_WORDS = frozenset({"enabled", "enabled-runtime", "linked", "linked-runtime", "alias", "masked",
                           "masked-runtime", "static", "indirect", "disabled", "generated", "transient",
                           "bad", "not-found"})
UNIT_TYPES = ("service", "socket", "timer", "target", "mount", "automount", "path", "slice", "scope",
              "device", "swap")
NOT_FOUND_RE = re.compile(r"^Failed to get unit file state for (\S+): No such file or directory$")
NO_SYSTEMD = ("System has not been booted with systemd", "Failed to connect to bus")


class NoSystemd(ParseError):
    """systemctl could not talk to systemd (not PID 1, or no bus)."""


def unit_name(unit: str) -> str:
    """'nginx' -> 'nginx.service'; names with a unit type suffix are kept."""
    return unit if unit.rsplit(".", 1)[-1] in UNIT_TYPES else unit + ".service"


def _words(stdout: str) -> list[str]:
    return [ln.strip() for ln in stdout.splitlines() if ln.strip()]


def _check_systemd(stdout: str, stderr: str) -> None:
    if not stdout.strip():
        for line in stderr.splitlines():
            if any(line.startswith(p) for p in NO_SYSTEMD):
                raise NoSystemd(f"systemd not reachable: {line.strip()}")


def parse_is_active(units: list[str], stdout: str, stderr: str = "") -> dict[str, str]:
    """`systemctl is-active U1 U2 ...` -> {U1: word, ...} (keys as given)."""
    _check_systemd(stdout, stderr)
    words = _words(stdout)
    if len(words) != len(units):
        raise ParseError(f"systemctl is-active: {len(words)} line(s) for {len(units)} unit(s)")
    for w in words:
        if w not in ACTIVE_WORDS:
            raise ParseError(f"systemctl is-active: unknown state {excerpt(w)}")
    return dict(zip(units, words))


def parse_is_enabled(units: list[str], stdout: str, stderr: str = "") -> dict[str, str]:
    """`systemctl is-enabled U1 U2 ...` -> {U1: word, ...}; see the module doc for missing units."""
    _check_systemd(stdout, stderr)
    not_found = set()
    for line in stderr.splitlines():
        if m := NOT_FOUND_RE.match(line.strip()):
            not_found.add(m.group(1))
        elif line.strip():
            raise ParseError(f"systemctl is-enabled: unexpected stderr {excerpt(line)}")
    words = _words(stdout)
    for w in words:
        if w not in ENABLED_WORDS:
            raise ParseError(f"systemctl is-enabled: unknown state {excerpt(w)}")
    out, it, stopped = {}, iter(words), False
    for u in units:
        if unit_name(u) in not_found:
            out[u], stopped = "not-found", True
        elif stopped:
            out[u] = "unknown"              # systemctl stopped at the missing unit
        else:
            w = next(it, None)
            if w is None:
                raise ParseError(f"systemctl is-enabled: {len(words)} line(s) for {len(units)} unit(s)")
            out[u] = w
    if next(it, None) is not None:
        raise ParseError(f"systemctl is-enabled: {len(words)} line(s) for {len(units)} unit(s)")
    return out


__all__ = ["NoSystemd", "parse_is_active", "parse_is_enabled", "unit_name", "ACTIVE_WORDS", "ENABLED_WORDS"]


def parse_failed_units(stdout: str) -> list[str]:
    """`systemctl --failed --no-legend --plain` -> the failed units' names (first word a line)."""
    return [ln.split()[0] for ln in stdout.splitlines() if ln.split()]


def parse_system_state(stdout: str) -> str:
    """`systemctl is-system-running` -> running | degraded | starting | ... ('unknown' if silent)."""
    words = stdout.split()
    return words[0] if words else "unknown"
