"""`nginx -t -q` (the deploy's nginx-test action) and the NGINX_DEFAULTS fact (grep of every
`listen ... default_server` nginx includes) -> which file claims the default server too.

Real behaviour, nginx 1.22.1 (Debian 12), captured from the lab by
scripts/capture-fixtures/nginx_t.sh into tests/fixtures/nginx_t/:
- A clean config: nothing on stdout or stderr, exit 0 (-q keeps the "syntax is ok" lines back).
- Two servers claiming `default_server` on one address:port: exit 1, stderr
  `2026/12/01 18:28:20 [emerg] 630#630: a duplicate default server for 0.0.0.0:80 in FILE:LINE`
  then `nginx: configuration file /etc/nginx/nginx.conf test failed`. FILE:LINE is the SECOND
  claim in include order (sites-enabled/* sorted by name): Debian's `default` sorts before
  lbtk.conf, so nginx names lbtk.conf; a site named `zz-shop` would be named itself.
- NGINX_DEFAULTS prints grep -Hn lines: `FILE:LINE:<the listen line as written>`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from fabfile.parsers import ParseError, excerpt

EMERG = re.compile(r"^(?:nginx: |\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )\[emerg\] (?:\d+#\d+: )?(.+)$")
DUPLICATE = re.compile(r"^a duplicate default server for (\S+) in (.+):([0-9]+)$")
GREP = re.compile(r"^(/.+?):([0-9]+):(.*)$")
LISTEN = re.compile(r"^\s*listen\s+(\S+)")


@dataclass(frozen=True)
class DuplicateDefault:
    listen: str          # as nginx names it: 0.0.0.0:80, [::]:80
    file: str            # where nginx found the second claim
    line: int


@dataclass(frozen=True)
class DefaultListen:
    file: str
    line: int
    listen: str          # the listen directive's address word: 80, [::]:80, 10.0.0.1:8080 ...

    @property
    def endpoint(self) -> tuple[str, int] | None:
        return endpoint(self.listen)


def endpoint(listen: str) -> tuple[str, int] | None:
    """A listen address as nginx binds it: '80' -> ('0.0.0.0', 80), '[::]:80' -> ('[::]', 80),
    '10.0.0.1' -> ('10.0.0.1', 80); a unix socket -> None."""
    if listen.startswith("unix:"):
        return None
    if listen.isascii() and listen.isdigit():
        return "0.0.0.0", int(listen)
    host, sep, port = listen.rpartition(":") if not listen.endswith("]") else (listen, "", "")
    if not sep:
        return (listen if listen != "*" else "0.0.0.0"), 80
    if not (port.isascii() and port.isdigit()):
        return None
    return ("0.0.0.0" if host == "*" else host), int(port)


def parse_duplicate_default(stderr: str) -> DuplicateDefault | None:
    """nginx -t's refusal of a second default server, or None when it refused for another reason."""
    for line in stderr.splitlines():
        m = EMERG.match(line.strip())
        if m and (d := DUPLICATE.match(m.group(1))):
            return DuplicateDefault(d.group(1), d.group(2), int(d.group(3)))
    return None


def parse_default_listens(text: str) -> list[DefaultListen]:
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = GREP.match(line)
        listen = LISTEN.match(m.group(3)) if m else None
        if not m or not listen:
            raise ParseError(f"nginx default servers: not a `FILE:LINE:listen ...` line: {excerpt(line)}")
        out.append(DefaultListen(m.group(1), int(m.group(2)), listen.group(1).rstrip(";")))
    return out
