"""`systemctl show -p Id,LoadState,ActiveState,SubState,UnitFileState UNIT...` -> per unit, the word
`systemctl is-active` and the word `systemctl is-enabled` would print: one systemctl call instead
of six (each cost a lab node ~9 ms of CPU, and a deploy read them twice).

Real behaviour (systemd 252 on Debian 12, 257 on Debian 13; tests/fixtures/systemctl/show_*.txt and
tests/fixtures/systemctl/trixie/show_*.txt, captured from lab nodes by
scripts/capture-fixtures/systemctl_show.sh):
- one block of `Key=Value` lines per unit asked, in the order asked, blocks apart by an empty
  line; the keys in systemd's own order (Id, LoadState, ActiveState, SubState, UnitFileState),
  not the order of -p. Id is the unit's full name (`keepalived.service`).
- a unit that does not exist: LoadState=not-found, ActiveState=inactive, UnitFileState empty;
  exit 0 (unlike is-enabled, which stops there): reported as is-enabled does, "not-found".
- ActiveState is is-active's word; UnitFileState is is-enabled's word, and follows
  `enable --no-reload` / `disable --no-reload` at once, and a wants/ symlink removed by hand
  too (show_hand_removed: "disabled", as is-enabled said): not a value cached until a reload.
- where systemd is not PID 1: no stdout, the same stderr as is-active (NoSystemd).
"""
from __future__ import annotations

from fabfile.parsers import ParseError, excerpt
from fabfile.parsers.systemctl import ACTIVE_WORDS, ENABLED_WORDS, _check_systemd, unit_name

PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState")
LOAD_WORDS = frozenset({"stub", "loaded", "not-found", "bad-setting", "error", "merged", "masked"})


def command(units: list[str] | tuple[str, ...]) -> str:
    """The shell that asks systemd for these units (names as in fabfile.infra.facts.UNITS)."""
    return f"systemctl show -p {','.join(PROPERTIES)} " + " ".join(units)


def _blocks(stdout: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    cur: dict[str, str] | None = None
    for line in stdout.split("\n"):
        if not line.strip():
            cur = None
            continue
        key, eq, value = line.partition("=")
        if not eq or key not in PROPERTIES:
            raise ParseError(f"systemctl show: unexpected line {excerpt(line)}")
        if cur is None:
            cur = {}
            blocks.append(cur)
        if key in cur:
            raise ParseError(f"systemctl show: {key} twice in one unit's block (a missing empty line?)")
        cur[key] = value
    return blocks


def parse_show(units: list[str], stdout: str, stderr: str = "") -> dict[str, tuple[str, str]]:
    """{unit: (is-active word, is-enabled word)} for the units asked (keys as given, in order)."""
    _check_systemd(stdout, stderr)
    blocks = _blocks(stdout)
    if len(blocks) != len(units):
        raise ParseError(f"systemctl show: {len(blocks)} unit block(s) for {len(units)} unit(s)")
    out = {}
    for u, b in zip(units, blocks):
        missing = [k for k in PROPERTIES if k not in b]
        if missing:
            raise ParseError(f"systemctl show: no {', '.join(missing)} for {u}")
        if b["Id"] != unit_name(u):
            raise ParseError(f"systemctl show: block for {excerpt(b['Id'])} where {unit_name(u)} was asked")
        if b["LoadState"] not in LOAD_WORDS:
            raise ParseError(f"systemctl show: {u}: unknown LoadState {excerpt(b['LoadState'])}")
        active = b["ActiveState"]
        if active not in ACTIVE_WORDS:
            raise ParseError(f"systemctl show: {u}: unknown ActiveState {excerpt(active)}")
        enabled = "not-found" if b["LoadState"] == "not-found" else b["UnitFileState"]
        if enabled not in ENABLED_WORDS:
            raise ParseError(f"systemctl show: {u}: unknown UnitFileState {excerpt(enabled)}")
        out[u] = (active, enabled)
    return out


def split(states: dict[str, tuple[str, str]]) -> tuple[dict[str, str], dict[str, str]]:
    """{unit: (active, enabled)} -> ({unit: active}, {unit: enabled}): NodeState's two fields."""
    return {u: a for u, (a, _) in states.items()}, {u: e for u, (_, e) in states.items()}
