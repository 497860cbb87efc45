"""`sysctl KEY...` -> SysctlValues(values, missing, errors).

Run the `sysctl KEY KEY ...` form (not -n: it prints bare values, and a missing key would shift
them). Real behaviour (procps-ng 4.0.2, tests/fixtures/sysctl/):
- stdout: one `key = value` line per readable key, in the order asked. A value may hold a tab
  (`net.ipv4.ip_local_port_range = 32768<TAB>60999`, `net.ipv4.vs.sync_threshold = 3<TAB>50`):
  kept as printed.
- a key that does not exist (an interface that is not there, net.ipv4.vs.* before ip_vs is
  loaded) gives on stderr `sysctl: cannot stat /proc/sys/net/ipv4/conf/eth9/arp_ignore: No such
  file or directory`, the other keys are still printed; the exit code is not 0 (1 with one
  missing key, 2 with two: do not read meaning into it). With stderr merged into
  stdout (pty, 2>&1) the error lines sit between the values: both forms are accepted.
- keys containing a dot in an interface name (VLAN eth0.100) print with '/' (eth0/100), and
  the proc path is turned back into that same spelling.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from fabfile.parsers import ParseError, excerpt

# a key holds interface names, and Linux allows any byte in one but '/', ':' and white space (an ESC
# too, shown escaped by fabfile/output.py): a key is any run of non-space characters
LINE_RE = re.compile(r"^(\S+) = (.*)$")
MISSING_RE = re.compile(r"^sysctl: cannot stat /proc/sys/(\S+): No such file or directory$")


@dataclass(frozen=True)
class SysctlValues:
    values: dict[str, str] = field(default_factory=dict)   # key -> value as printed
    missing: list[str] = field(default_factory=list)       # keys sysctl could not find
    errors: list[str] = field(default_factory=list)        # other "sysctl: ..." lines, verbatim

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)


def _key_from_proc(path: str) -> str:
    # /proc/sys path -> sysctl key: '/' and '.' swap (sysctl's own convention)
    return path.translate(str.maketrans("/.", "./"))


def parse_sysctl(stdout: str, stderr: str = "") -> SysctlValues:
    """`sysctl KEY...` stdout (and stderr, or both merged in stdout) -> SysctlValues."""
    values: dict[str, str] = {}
    missing: list[str] = []
    errors: list[str] = []
    for line in (stdout + "\n" + stderr).splitlines():
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if m := MISSING_RE.match(line.strip()):
            missing.append(_key_from_proc(m.group(1)))
        elif line.startswith("sysctl: "):
            errors.append(line.strip())
        elif m := LINE_RE.match(line):
            values[m.group(1)] = m.group(2)
        else:
            raise ParseError(f"not sysctl KEY output: {excerpt(line)}")
    return SysctlValues(values, missing, errors)


__all__ = ["SysctlValues", "parse_sysctl"]
