"""The toolkit's formats about the scripts an inventory names (fabfile/model/scripts.py):

- /var/lib/lbtk/shipped-scripts: the scripts lbtk shipped to this node, one absolute path a line,
  sorted; a path listed there and no longer in the inventory is removed by the next deploy.
- the `script_files` fact: per declared-present script, one line `STATE PATH`, STATE one of
  `ok` (a regular file, executable), `noexec` (there, not executable) or `missing`.
"""
from __future__ import annotations

from fabfile.parsers import ParseError, excerpt

STATES = ("ok", "noexec", "missing")


def render_manifest(paths: list[str]) -> str:
    return "".join(f"{p}\n" for p in paths)


def parse_manifest(data: bytes | None) -> tuple[str, ...]:
    """The record's bytes (None: no record) -> the paths lbtk shipped; anything that is not an absolute
    path is ignored (a hand-edited record never makes a deploy remove a file lbtk did not write)."""
    if not data:
        return ()
    lines = data.decode(errors="replace").splitlines()
    return tuple(ln for ln in lines if ln.startswith("/") and " " not in ln and "\t" not in ln)


def parse_script_states(text: str, paths: list[str]) -> dict[str, str]:
    """The script_files fact's output -> {path: ok | noexec | missing} for every path asked about."""
    out: dict[str, str] = {}
    for ln in text.splitlines():
        if not ln.strip():
            continue
        state, _, path = ln.partition(" ")
        if state not in STATES or path not in paths:
            raise ParseError(f"script check: unexpected line {excerpt(ln)}")
        out[path] = state
    missing = [p for p in paths if p not in out]
    if missing:
        raise ParseError(f"script check: no answer for {excerpt(missing[0])}")
    return out
