"""OpenSSH known_hosts files -> what they say about one host: the keys trusted for it, the keys
revoked for it (`@revoked`), and the `@cert-authority` lines that would vouch for it, which lbtk
cannot honour (paramiko does not check host certificates).

The format is sshd(8)'s "SSH_KNOWN_HOSTS FILE FORMAT": `[marker] patterns keytype base64 [comment]`.
Patterns are comma-separated, with `*` and `?` wildcards and `!` negation (a negated match rules the
line out), `[host]:port` for a port other than 22, or one hashed `|1|salt|hmac-sha1` name; they match
case-insensitively. A line that cannot be read is skipped, as ssh skips it. Pure: files are read by
the caller (fabfile/infra/remote.py).
"""
from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
from dataclasses import dataclass, field

MARKERS = ("@revoked", "@cert-authority")


@dataclass(frozen=True)
class Line:
    """One usable line of a known_hosts file."""
    marker: str                 # "", "@revoked" or "@cert-authority"
    patterns: str
    keytype: str
    blob: bytes                 # the public key as the server sends it (base64-decoded)
    where: str                  # FILE:LINE, for messages


@dataclass
class HostKeys:
    """What the files say about one host name (host_key_name)."""
    trusted: list[Line] = field(default_factory=list)
    revoked: list[Line] = field(default_factory=list)
    authorities: list[Line] = field(default_factory=list)

    def revocation(self, blob: bytes) -> Line | None:
        """The @revoked line that names this key, if any."""
        return next((ln for ln in self.revoked if ln.blob == blob), None)


def host_key_name(host: str, port: int | None) -> str:
    """The name ssh looks a host up by: `host`, or `[host]:port` for a port other than 22."""
    return host if port in (None, 22) else f"[{host}]:{port}"


def parse(text: str, source: str) -> list[Line]:
    """Every line of one file that names a host and a decodable key."""
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        marker = words.pop(0) if words[0].startswith("@") else ""
        if marker and marker not in MARKERS:
            continue                    # ssh skips a line with a marker it does not know
        if len(words) < 3:
            continue
        try:
            blob = base64.b64decode(words[2], validate=True)
        except (binascii.Error, ValueError):
            continue
        out.append(Line(marker, words[0], words[1], blob, f"{source}:{n}"))
    return out


def matches(patterns: str, name: str) -> bool:
    """Does a line's host field name `name` (host_key_name's form)?"""
    name = name.lower()
    if patterns.startswith("|1|"):
        try:
            _, _, salt, digest = patterns.split("|", 3)
            want = base64.b64decode(digest, validate=True)
            mac = hmac.new(base64.b64decode(salt, validate=True), name.encode(), hashlib.sha1).digest()
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(mac, want)
    hit = False
    for p in patterns.lower().split(","):
        negated = p.startswith("!")
        p = p.removeprefix("!")
        # fnmatch's [...] classes are not ssh's: only * and ? are wildcards ([host]:port is literal)
        if fnmatch.fnmatchcase(name, p.replace("[", "[[]")):
            if negated:
                return False
            hit = True
    return hit


def for_host(lines: list[Line], name: str) -> HostKeys:
    """What `lines` (every file's, in order) say about the host `name`."""
    out = HostKeys()
    for ln in lines:
        if matches(ln.patterns, name):
            {"": out.trusted, "@revoked": out.revoked, "@cert-authority": out.authorities}[ln.marker].append(ln)
    # ssh refuses a revoked key even where another line trusts it
    out.trusted = [ln for ln in out.trusted if out.revocation(ln.blob) is None]
    return out


__all__ = ["Line", "HostKeys", "host_key_name", "parse", "matches", "for_host", "MARKERS"]
