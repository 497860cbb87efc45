"""keepalived's `genhash` (the digest its HTTP_GET checker compares with `digest`) -> GenHash.

The GENHASH fact (fabfile/infra/facts.py) runs, per real server, on a director:
    printf '@@genhash ADDRESS PORT PATH\\n'; genhash -v -t T -s ADDRESS -p PORT -u PATH 2>&1 | awk DROP_BODY
Real behaviour, genhash of keepalived 2.2.7 (Debian 12), captured from the lab by
scripts/capture-fixtures/genhash.sh into tests/fixtures/genhash/:
- Plain (no -v) it prints the digest alone on a line (older releases printed `MD5SUM = <hex>`),
  and the same for a 404 page: only -v shows the status line.
- -v prints sections headed `-----[ TITLE ]-----`: `HTTP Header Buffer` (hex dump), `HTTP Header
  Ascii Buffer` (the response's status line and headers), `HTML Buffer` (the body as a hex dump,
  dropped on the node by DROP_BODY), `HTML hash resulting` (hex dump), `HTML hash final resulting`
  (the digest), then `Global response time for [PATH] = N usecs`.
- It cannot connect: one line, `Connection failed` (refused) or `Timeout connecting` (after -t
  seconds), and still exit code 0; a bad argument: `server should be an IP, not X` + its usage.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from fabfile.parsers import ParseError, excerpt

MARK = "@@genhash"
# awk on the node: drop the body's hex dump (from its title to the next title), keep the rest
DROP_BODY = r"/\[ *HTML Buffer *\]/{s=1;next} /^-+\[/{s=0} !s"
TITLE = re.compile(r"^-+\[\s*(.+?)\s*\]-+\s*$")
DIGEST = re.compile(r"^(?:MD5SUM = )?([0-9a-f]{32})$")
STATUS = re.compile(r"^HTTP/[0-9](?:\.[0-9])? ([0-9]{3})(?: (.*))?$")
TIME = re.compile(r"^Global response time for \[.*\] = ([0-9]+) usecs$")


@dataclass(frozen=True)
class GenHash:
    address: str
    port: int
    path: str
    digest: str | None = None        # 32 hex digits; None: no answer (see error)
    status: int | None = None        # the HTTP status line's code (None: genhash without -v)
    reason: str = ""                 # ... and its words ("OK", "Not Found")
    usecs: int | None = None         # genhash's own response time
    error: str = ""                  # why there is no digest, in genhash's words

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}{self.path}"

    @property
    def ok(self) -> bool:
        return self.digest is not None


def parse_genhash(text: str) -> dict[tuple[str, int, str], GenHash]:
    """The framed output of the GENHASH fact -> {(address, port, path): GenHash}."""
    out: dict[tuple[str, int, str], GenHash] = {}
    head, body = None, []
    for line in text.splitlines() + [MARK + " end"]:
        if line.startswith(MARK + " "):
            if head is not None:
                r = parse_one(*head, "\n".join(body))
                out[(r.address, r.port, r.path)] = r
            head, body = _head(line), []
        elif head is None:
            if line.strip():
                raise ParseError(f"genhash: text before the first {MARK} frame: {excerpt(line)}")
        else:
            body.append(line)
    return out


def _head(line: str) -> tuple[str, int, str] | None:
    words = line.split()
    if words == [MARK, "end"]:
        return None
    if len(words) != 4 or not (words[2].isascii() and words[2].isdigit()) or not words[3].startswith("/"):
        raise ParseError(f"genhash: not a frame header ({MARK} ADDRESS PORT PATH): {excerpt(line)}")
    return words[1], int(words[2]), words[3]


def parse_one(address: str, port: int, path: str, text: str) -> GenHash:
    """One genhash run's output (verbose or plain) for http://address:port/path."""
    lines = [ln.rstrip() for ln in text.splitlines()]
    words = [ln.strip() for ln in lines if ln.strip()]
    if not words:
        raise ParseError(f"genhash {address}:{port}{path}: printed nothing")
    titles = {m.group(1): i for i, ln in enumerate(lines) if (m := TITLE.match(ln))}
    if not titles:      # plain output: the digest alone, or genhash's one-line failure
        if len(words) == 1 and (m := DIGEST.match(words[0])):
            return GenHash(address, port, path, digest=m.group(1))
        if any(DIGEST.match(w) or STATUS.match(w) for w in words):
            raise ParseError(f"genhash {address}:{port}{path}: a digest among other text: {excerpt(' '.join(words))}")
        return GenHash(address, port, path, error=words[0])
    final = titles.get("HTML hash final resulting")
    header = titles.get("HTTP Header Ascii Buffer")
    if final is None or header is None:
        missing = "HTML hash final resulting" if final is None else "HTTP Header Ascii Buffer"
        raise ParseError(f"genhash {address}:{port}{path}: verbose output without its {missing!r} section "
                         "(truncated?)")
    after = [ln.strip() for ln in lines[final + 1:] if ln.strip()]
    m = DIGEST.match(after[0]) if after else None
    if m is None:
        raise ParseError(f"genhash {address}:{port}{path}: no digest after 'HTML hash final resulting': "
                         f"{excerpt(after[0] if after else '')}")
    first = next((ln.strip() for ln in lines[header + 1:] if ln.strip()), "")
    s = STATUS.match(first)
    if s is None:
        raise ParseError(f"genhash {address}:{port}{path}: no HTTP status line in the header: {excerpt(first)}")
    usecs = next((int(t.group(1)) for w in after[1:] if (t := TIME.match(w))), None)
    return GenHash(address, port, path, digest=m.group(1), status=int(s.group(1)), reason=s.group(2) or "",
                   usecs=usecs)
