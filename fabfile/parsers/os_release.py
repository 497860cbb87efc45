"""`cat /etc/os-release` (os-release(5): KEY=value lines, values optionally quoted) -> the
release's codename, as Debian writes it (`VERSION_CODENAME=bookworm`, `trixie`).

A file without VERSION_CODENAME (testing/sid before a release is named, another distribution)
is refused: the upgrade task must know which release a node runs, never guess it.
"""
from __future__ import annotations

import shlex

from fabfile.parsers import ParseError, excerpt


def parse_os_release(stdout: str) -> dict[str, str]:
    """Every KEY=value of the file, values unquoted as a shell would (os-release(5))."""
    out = {}
    for ln in stdout.splitlines():
        s = ln.strip()
        if not s or s.startswith("#"):
            continue
        key, sep, value = s.partition("=")
        if not sep or not key.replace("_", "").isalnum() or not key.isupper():
            raise ParseError(f"os-release: not KEY=value: {excerpt(ln)}")
        try:
            words = shlex.split(value)
        except ValueError:
            raise ParseError(f"os-release: bad quoting: {excerpt(ln)}") from None
        out[key] = " ".join(words)
    return out


def parse_codename(stdout: str) -> str:
    """The release codename (VERSION_CODENAME) of an os-release file."""
    fields = parse_os_release(stdout)
    name = fields.get("VERSION_CODENAME", "")
    if not name:
        raise ParseError("os-release: no VERSION_CODENAME (" + (fields.get("PRETTY_NAME") or "empty file") + ")")
    return name


__all__ = ["parse_os_release", "parse_codename"]
