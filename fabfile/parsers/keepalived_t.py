"""`keepalived -t -f FILE` (config test) -> KeepalivedCheck(exit_code, verdict, messages).

Real behaviour, keepalived 2.2.7 (Debian 12), each case captured by
scripts/capture-fixtures/keepalived_t.sh into tests/fixtures/keepalived_t/ (run in a network
namespace holding eth0):
- Findings go to STDERR, one a line, no timestamp, no pid; stdout stays empty. Lines read
  "(FILE: Line N) text" (FILE as given on the command line), "(Line N) text", or bare text.
  The same line can repeat ("There are 1 missing '}'s or extra '{'s" 4 times): messages keep
  the first of each.
- Exit code = the WORST finding (keepalived keeps the highest config_err_t), so one warning
  turns an otherwise fatal config into 5:
    0  clean -- and also when the config file itself is missing ("Config files missing
       'x.conf'.", exit 0!) or an include is missing ("(Line 1) Config files missing ...")
    4  fatal, keepalived would not start: e.g. "unknown interface eth9 specified for linkbeat
       interface" (CONFIG_FATAL/CONFIG_BAD_IF/CONFIG_FILE_NOT_FOUND alone)
    5  errors it would still run with: "Unknown keyword 'nat_mask'", "Unknown keyword
       'nb_get_retry'" (in TCP_CHECK), "Truncating auth_pass to 8 characters", "(VI_1) Warning -
       nopreempt will not work with initial state MASTER - clearing", "(VI_1) 10.190.0.4 is
       missing a value" (two unicast_peer addresses on one line), "There are 1 missing '}'s or
       extra '{'s" + every keyword after it "Unknown keyword" (missing brace), "number '300'
       outside range [1, 255]", "vrrp instance VI_1 already defined", "virtual server ... and
       real server ... ports don't match - resetting" (DR port remap), "Unable to set default
       user keepalived_script for script" (enable_script_security without that user)
    6  "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
- A missing interface is exit 5, not 4: "(FILE: Line 6) WARNING - interface eth9 for
  vrrp_instance VI_1 doesn't exist" (or "... for ip address 10.190.0.100/24 doesn't exist" for a
  VIP's dev) followed by "Non-existent interface specified in configuration".
Verdicts: 0 -> ok (but: messages present -> warnings; the main file missing -> fatal),
4 -> fatal, 5 -> warnings, 6 -> script-security, anything else -> unknown.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from fabfile.parsers import ParseError

VERDICTS = {0: "ok", 4: "fatal", 5: "warnings", 6: "script-security"}
LOCATION_RE = re.compile(r"^\((?:(.+?): )?Line (\d+)\) (.*)$")
MAIN_FILE_MISSING_RE = re.compile(r"^Config files missing '.*'\.$")


@dataclass(frozen=True)
class KeepalivedCheck:
    exit_code: int
    verdict: str                         # ok | warnings | fatal | script-security | unknown
    messages: list[str] = field(default_factory=list)   # keepalived's own lines, as printed

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    @property
    def would_run(self) -> bool:
        """keepalived would start with this config (possibly ignoring parts of it)."""
        return self.verdict in ("ok", "warnings")


def split_location(message: str) -> tuple[str | None, int | None, str]:
    """'(keepalived.conf: Line 28) Unknown keyword ...' -> ('keepalived.conf', 28, 'Unknown keyword ...');
    '(Line 1) ...' -> (None, 1, '...'); no location -> (None, None, message)."""
    m = LOCATION_RE.match(message)
    if not m:
        return None, None, message
    return m.group(1), int(m.group(2)), m.group(3)


def parse_keepalived_check(stdout: str, stderr: str, exit_code: int) -> KeepalivedCheck:
    """stdout, stderr and exit code of `keepalived -t -f FILE` -> KeepalivedCheck."""
    messages: list[str] = []
    for line in (stderr + "\n" + stdout).splitlines():
        line = line.strip()
        if line and line not in messages:
            messages.append(line)
    verdict = VERDICTS.get(exit_code, "unknown")
    if exit_code == 0 and messages:
        verdict = "fatal" if any(MAIN_FILE_MISSING_RE.match(m) for m in messages) else "warnings"
    return KeepalivedCheck(exit_code, verdict, messages)


HELD = "@@keepalived-t"   # the node held a swap back: keepalived -t was not clean (fabfile/ops/apply.py)


def held_back(stdout: str) -> tuple[int, str] | None:
    """The output of a check-then-swap round trip -> (keepalived -t's exit code, what it printed,
    stdout and stderr together) when the node held the swap back; None when it swapped."""
    head, _, rest = stdout.partition("\n")
    f = head.split()
    if len(f) != 2 or f[0] != HELD:
        return None
    if not (f[1].isascii() and f[1].isdigit()):
        raise ParseError(f"keepalived -t: unrecognised exit code {f[1]!r}")
    return int(f[1]), rest


__all__ = ["KeepalivedCheck", "parse_keepalived_check", "split_location", "VERDICTS", "HELD", "held_back"]
