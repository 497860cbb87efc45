"""`dpkg-query -W -f='${Package}\\t${Version}\\t${db:Status-Abbrev}\\n' PKG...` -> {package: version}.

Only installed packages (status `ii`) are kept. A package dpkg has never heard of prints
`dpkg-query: no packages found matching X` on stderr and makes the exit code 1; the others are
still printed, so neither is an error here.
"""
from __future__ import annotations

from fabfile.parsers import ParseError, excerpt


def parse_installed(stdout: str) -> dict[str, str]:
    out = {}
    for ln in stdout.splitlines():
        if not ln.strip():
            continue
        parts = ln.split("\t")
        if len(parts) != 3 or not parts[0]:
            raise ParseError(f"dpkg-query: not PACKAGE<TAB>VERSION<TAB>STATUS: {excerpt(ln)}")
        name, version, status = parts
        if status.startswith("ii"):
            out[name] = version
    return out


__all__ = ["parse_installed"]
