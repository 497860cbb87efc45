"""A real server's health checkers, under keepalived's own names (TCP_CHECK, HTTP_GET, SSL_GET,
MISC_CHECK, DNS_CHECK, SMTP_CHECK, UDP_CHECK, PING_CHECK, FILE_CHECK) and the track files
FILE_CHECK reads.

keepalived takes any number of checker blocks per real server, of any kinds; the real server is
in the pool while every one of them passes. Each checker key takes one object (the inventory's
long-standing form) or a list. Syntax and ranges are keepalived 2.2.7's (check/check_*.c).
BFD_CHECK is left out: 2.2.7 refuses it without a bfd_instance ("BFD ... not configured").
"""
from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field, PositiveInt, WrapValidator, field_validator, model_validator

from fabfile.model.fields import FieldProblem, Strict, _check_any_ip, family_of, keepalived_word, quoted_string

HTTP_PATH = r"^/[^\s#!{}\"'\\]*$"   # an HTTP_GET path: keepalived reads it as one word
STATUS_MIN, STATUS_MAX = 100, 599   # keepalived's HTTP_STATUS_CODE_MIN/MAX
IPVS_WEIGHT_LIMIT = 65535           # keepalived's bound on a FILE_CHECK weight
DNS_TYPES = ("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY")   # check_dns.c DNS_TYPE[]


def one_or_many(model: type[BaseModel]):
    """A checker key's type: one object (validated as itself, so its errors name the key without
    an index), a list of them or null; always a list once read."""
    def read(v, handler):
        if v is None:                 # `TCP_CHECK: null`, as before: no checker
            return []
        if isinstance(v, dict):
            return [model.model_validate(v)]
        return handler(v)

    def schema(s: dict) -> None:   # editors: the JSON Schema says both forms
        items = s.pop("items")
        s.pop("type", None)
        s["anyOf"] = [items, {"type": "array", "items": items}, {"type": "null"}]
    return Annotated[list[model], WrapValidator(read)], schema


def _status_words(v: int | str) -> list[tuple[int, int]]:
    """`status_code` as keepalived reads it: 200, or '200-299 301 400-499' -> [(lo, hi), ...]."""
    out = []
    for word in (str(v).split() or [""]):
        lo, _, hi = word.partition("-")
        if not (lo.isascii() and lo.isdigit() and (not hi or (hi.isascii() and hi.isdigit()))):
            raise ValueError(f"status_code {v!r}: {word!r} is not a code or a range such as 200-299")
        a, b = int(lo), int(hi or lo)
        if not (STATUS_MIN <= a <= b <= STATUS_MAX):
            raise ValueError(f"status_code {v!r}: {word!r} is outside {STATUS_MIN}-{STATUS_MAX} or runs backwards "
                             "(keepalived ignores it)")
        out.append((a, b))
    return out


def _check_status(v: int | str | None) -> int | str | None:
    if v is not None:
        _status_words(v)
    return v


def status_accepts(spec: int | str | None, status: int) -> bool:
    """Does a url's status_code take `status`? Unset: keepalived's 200-299."""
    return any(a <= status <= b for a, b in (_status_words(spec) if spec is not None else [(200, 299)]))


def _one_word(what: str):
    return lambda v: v if v is None else keepalived_word(v, what)


def _hex(v: str, what: str, wildcard: bool) -> str:
    """keepalived's hex string (read_hex_str): hex digits in groups, spaces between; X a wildcard
    nibble in a reply. 2.2.7 takes a final octet of 0xff for its own 'invalid' marker."""
    digits = "0-9a-fA-F" + ("xX" if wildcard else "")
    if not re.fullmatch(rf"[{digits}]+( [{digits}]+)*", v):
        raise ValueError(f"{what} {v!r} is not a hex string (hex digits{', X for any' if wildcard else ''}, "
                         "single spaces between groups)")
    last = v.split()[-1]
    if last[-2:].lower() == "ff" and len(last) % 2 == 0:
        raise ValueError(f"{what} {v!r} ends in the octet ff, which keepalived 2.2.7 reads as an invalid "
                         "string (fixed in 2.3)")
    return v


# ---------------------------------------------------------------- options every checker shares

class Timers(Strict):
    """How often a checker runs and how many failures take the real server out."""
    retry: int | None = Field(None, ge=0, description="Checks retried after a failure before the real server is "
                              "taken out; unset: keepalived's (1; 3 for DNS_CHECK, 0 for MISC_CHECK).")
    delay_before_retry: int | None = Field(None, ge=0, description="Seconds between those retries; unset: "
                                           "keepalived's (1; 3 for HTTP_GET/SSL_GET, delay_loop for DNS_CHECK).")
    warmup: int | None = Field(None, ge=0, description="At most this many seconds of random delay before the first "
                               "check (0: none); unset: up to delay_loop.")
    delay_loop: PositiveInt | None = Field(None, description="Seconds between two checks by this checker; unset: "
                                           "the virtual server's delay_loop.")


class Source(Strict):
    """Where a checker's packets go and from where (the options PING_CHECK shares: no ports)."""
    connect_ip: str | None = Field(None, description="Address to check; unset: the real server's.")
    bindto: str | None = Field(None, description="Source address of the check, of connect_ip's family; unset: "
                               "the kernel's choice.")
    connect_timeout: PositiveInt | None = Field(None, description="Seconds to wait for the connection (and the "
                                                "answer); unset: keepalived's 5.")
    fwmark: int | None = Field(None, ge=0, le=2**32 - 1, description="Firewall mark on the check's packets "
                               "(policy routing); unset: none.")

    @field_validator("connect_ip", "bindto")
    @classmethod
    def _addr(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = _check_any_ip(v)
        if family_of(v) == 6 and ipaddress.ip_address(v).is_link_local:
            raise ValueError(f"{v} is link-local: keepalived needs bind_if for it, which lbtk does not support")
        return v

    @model_validator(mode="after")
    def _families(self):
        if self.connect_ip and self.bindto and family_of(self.connect_ip) != family_of(self.bindto):
            raise FieldProblem(("bindto",), f"bindto {self.bindto} and connect_ip {self.connect_ip} are of "
                               "different families: the check could never be sent",
                               "give bindto an address of connect_ip's family")
        return self


class Connection(Source):
    """Where a network checker connects and from where."""
    connect_port: int | None = Field(None, ge=1, le=65535, description="Port to check; unset: the real server's "
                                     "port.")
    bind_port: int | None = Field(None, ge=1, le=65535, description="Source port of the check's connection; "
                                  "unset: any.")


class NetworkCheck(Connection, Timers):
    """The options of every checker that opens a connection."""


# ---------------------------------------------------------------- the checkers

class LbtkTimed(NetworkCheck):
    """lbtk's own defaults of TCP_CHECK and HTTP_GET (always written), quicker than keepalived's."""
    connect_timeout: PositiveInt = Field(3, description="Seconds to wait for the connection (and an HTTP answer; "
                                         "keepalived's own default: 5).")
    retry: int = Field(3, ge=0, description="Checks retried after a failure before the real server is taken out "
                       "(keepalived's own default: 1).")


class TcpCheck(LbtkTimed):
    """keepalived's TCP_CHECK: the real server is up while a TCP connection to it succeeds."""
    delay_before_retry: PositiveInt = Field(3, description="Seconds between those retries (keepalived's own "
                                            "default: 1).")


class Url(Strict):
    """One URL an HTTP_GET or SSL_GET fetches; every url must answer as expected."""
    path: str = Field(pattern=HTTP_PATH, description="The URL path requested.")
    digest: str | None = Field(None, pattern=r"^[0-9a-f]{32}$", description="MD5 of the expected body, 32 hex "
                               "digits (keepalived's genhash prints it).")
    status_code: int | str | None = Field(None, description="The HTTP status expected: a code (200), a range "
                                          "(200-299) or several ('200-299 301'); unset: keepalived's 200-299.")
    virtualhost: str | None = Field(None, description="Host header for this url; unset: the checker's.")

    _vhost = field_validator("virtualhost")(_one_word("virtualhost"))

    _status = field_validator("status_code")(_check_status)


class HttpGet(LbtkTimed):
    """keepalived's HTTP_GET: the real server is up while every url answers as expected. One url
    is written inline (path, digest, status_code), several as `url:`."""
    path: str | None = Field(None, pattern=HTTP_PATH, description="The URL path requested (one url inline); "
                             "unset without url: /.")
    digest: str | None = Field(None, pattern=r"^[0-9a-f]{32}$", description="MD5 of the expected body, 32 hex "
                               "digits (keepalived's genhash prints it).")
    status_code: int | str | None = Field(None, description="The HTTP status expected: a code, a range (200-299) or "
                                          "several ('200-299 301'); unset: 200 (with digest: keepalived's own "
                                          "200-299).")
    url: list[Url] | None = Field(None, min_length=1, description="Several urls, each with its path and expected "
                                  "answer (instead of path, digest and status_code inline).")
    virtualhost: str | None = Field(None, description="Host header of the requests; unset: the real server's "
                                    "address.")
    http_protocol: Literal["1.0", "1.0C", "1.1"] | None = Field(None, description="The request's HTTP version "
                                                                "(1.0C: 1.0 with Connection: close); unset: "
                                                                "keepalived's 1.0.")
    delay_before_retry: PositiveInt = Field(3, description="Seconds between those retries (keepalived's default "
                                            "for HTTP_GET: 3).")

    _vhost = field_validator("virtualhost")(_one_word("virtualhost"))

    @field_validator("http_protocol", mode="before")
    @classmethod
    def _version(cls, v):
        # YAML reads 1.0 and 1.1 as numbers
        return {1.0: "1.0", 1.1: "1.1"}.get(v, v) if isinstance(v, float) else v

    _status = field_validator("status_code")(_check_status)

    @model_validator(mode="after")
    def _expect(self):
        inline = [k for k in ("path", "digest", "status_code") if getattr(self, k) is not None]
        if self.url is not None:
            if inline:
                raise FieldProblem((inline[0],), f"{inline[0]} inline and url: both name the urls to check",
                                   "move it into a url: entry (or drop url: and keep one url inline)")
            return self
        fill = {"path": "/"} if self.path is None else {}
        if self.digest is None and self.status_code is None:
            fill["status_code"] = 200
        return self.model_copy(update=fill) if fill else self

    @property
    def urls(self) -> list[Url]:
        """Every url checked: the url list, else the one written inline."""
        if self.url is not None:
            return self.url
        return [Url(path=self.path, digest=self.digest, status_code=self.status_code)]


class SslGet(HttpGet):
    """keepalived's SSL_GET: HTTP_GET over TLS (global SSL context: keepalived's own)."""
    enable_sni: bool = Field(False, description="Send the server name (virtualhost) in the TLS handshake.")


class MiscCheck(Timers):
    """keepalived's MISC_CHECK: the real server is up while a command exits 0 (no connection
    options: keepalived refuses them here)."""
    misc_path: str = Field(description="The command, with its arguments (keepalived reads it in double quotes: no "
                           "\", # or !); runs as `user`, else global_defs.script_user.")
    misc_timeout: PositiveInt | None = Field(None, description="Seconds after which a run counts as failed; unset: "
                                             "delay_loop.")
    misc_dynamic: bool = Field(False, description="The exit code sets the weight: 0 up, 1 down, 2-255 up with weight "
                               "exit code - 2 (IPVS then holds that weight, not the inventory's).")
    user: str | None = Field(None, description="`USER [GROUP]` the command runs as; unset: global_defs.script_user.")

    _path = field_validator("misc_path")(lambda v: quoted_string(v, "misc_path"))

    @field_validator("user")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        if v is None:
            return v
        words = v.split()
        if not 1 <= len(words) <= 2 or " ".join(words) != v:
            raise ValueError(f"user {v!r}: write USER or USER GROUP, one space between")
        for w in words:
            keepalived_word(w, "user")
        return v


class DnsCheck(NetworkCheck):
    """keepalived's DNS_CHECK: the real server is up while it answers a DNS query (UDP)."""
    type: Literal[DNS_TYPES] = Field("SOA", description="The query's type (keepalived's own default: SOA).")
    name: str = Field(".", description="The name queried (keepalived's own default: the root, .).")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        keepalived_word(v, "name")
        if v != "." and (v.startswith(".") or ".." in v):
            raise ValueError(f"name {v!r} has an empty label (keepalived ignores it)")
        return v


# keepalived's connection options (conn_opts_t): what a checker's host entry brings of its own
CONNECTION_OPTIONS = ("connect_ip", "connect_port", "bindto", "bind_port", "fwmark", "connect_timeout")


class SmtpHost(Connection):
    """A server an SMTP_CHECK checks (keepalived's deprecated host block: each is a checker of its
    own, written as an SMTP_CHECK each)."""


class SmtpCheck(NetworkCheck):
    """keepalived's SMTP_CHECK: the real server is up while it answers HELO."""
    helo_name: str | None = Field(None, description="The name sent in HELO; unset: the director's host name.")
    host: list[SmtpHost] = Field([], description="Servers checked instead of the real server, each with its "
                                 "own connection options (keepalived's deprecated host blocks: written as one "
                                 "SMTP_CHECK each).")

    _helo = field_validator("helo_name")(lambda v: v if v is None else quoted_string(v, "helo_name"))

    def per_host(self) -> list["SmtpCheck"]:
        """The checkers keepalived makes of this one (check_smtp.c, smtp_check_end_handler): the
        checker itself when it sets a connection option of its own (or has no host), then one per
        host entry, each with this checker's helo_name and timers but only the host's connection
        options. keepalived 2.3.3's `keepalived -t` hangs on host blocks, so lbtk writes them this
        way, as keepalived's docs advise ("define additional checkers")."""
        if not self.host:
            return [self]
        co = [k for k in CONNECTION_OPTIONS if k in type(self).model_fields]
        own = any(getattr(self, k) is not None for k in co)
        bare = self.model_copy(update={**{k: None for k in co}, "host": []})
        hosts = [bare.model_copy(update={**h.model_dump(exclude_none=True), "host": []}) for h in self.host]
        return ([self.model_copy(update={"host": []})] if own else []) + hosts


class UdpCheck(NetworkCheck):
    """keepalived's UDP_CHECK: the real server is up while a UDP datagram draws no ICMP error (and,
    with require_reply, an answer)."""
    payload: str | None = Field(None, description="The datagram, in hex ('0a 1b2c'); unset: random bytes.")
    require_reply: bool | str = Field(False, description="true: an answer must come; a hex string: the answer must "
                                      "start like it (X: any nibble).")
    min_reply_length: int | None = Field(None, ge=0, le=65535, description="Shortest answer taken; unset: 0.")
    max_reply_length: int | None = Field(None, ge=0, le=65535, description="Longest answer taken; unset: 255.")

    _payload = field_validator("payload")(lambda v: v if v is None else _hex(v, "payload", False))

    @field_validator("require_reply")
    @classmethod
    def _reply(cls, v):
        return _hex(v, "require_reply", True) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _lengths(self):
        lo = self.min_reply_length or 0
        hi = 255 if self.max_reply_length is None else self.max_reply_length
        if lo > hi:
            raise FieldProblem(("min_reply_length",), f"min_reply_length {lo} is above max_reply_length {hi}: "
                               "the check would always fail", "lower min_reply_length or raise max_reply_length")
        if (self.min_reply_length is not None or self.max_reply_length is not None) and not self.require_reply:
            raise FieldProblem(("min_reply_length" if self.min_reply_length is not None else "max_reply_length",),
                               "reply lengths are checked only with require_reply (keepalived ignores them)",
                               "set require_reply: true, or drop the lengths")
        return self


class PingCheck(Source, Timers):
    """keepalived's PING_CHECK: the real server is up while it answers ICMP echo (no ports)."""


class FileCheck(Strict):
    """keepalived's FILE_CHECK: the real server follows a number in a file (a track_files
    entry): 0 up, anything else down; with a weight, the number times the weight is added to the
    real server's weight."""
    track_file: str = Field(description="The track_files entry read.")
    weight: int | None = Field(None, ge=-IPVS_WEIGHT_LIMIT, le=IPVS_WEIGHT_LIMIT, description="Multiplies the file's "
                               "number, added to the real server's weight (0: the number is up/down only); unset: "
                               "the track file's weight.")
    reverse: bool = Field(False, description="Subtract the product instead of adding it.")

    _name = field_validator("track_file")(_one_word("track_file"))

    @model_validator(mode="after")
    def _reverse(self):
        if self.reverse and self.weight is None:
            raise FieldProblem(("reverse",), "reverse qualifies this checker's weight, and it has none",
                               "add weight: N, or drop reverse")
        return self


# the checker keys of a real server, in the order they are written into keepalived.conf
CHECKERS: dict[str, type[Strict]] = {
    "TCP_CHECK": TcpCheck, "HTTP_GET": HttpGet, "SSL_GET": SslGet, "MISC_CHECK": MiscCheck,
    "DNS_CHECK": DnsCheck, "SMTP_CHECK": SmtpCheck, "UDP_CHECK": UdpCheck, "PING_CHECK": PingCheck,
    "FILE_CHECK": FileCheck,
}


# each checker key's type: one object or a list (see one_or_many), and its JSON Schema
_TYPES = {kind: one_or_many(model) for kind, model in CHECKERS.items()}
Checkers = {kind: tp for kind, (tp, _) in _TYPES.items()}


def checker_field(kind: str, description: str):
    """A real server's checker key: one object or a list, [] when absent."""
    return Field([], description=description, json_schema_extra=_TYPES[kind][1])


def checker_problems(inv):
    """The checkers' rules that need the whole inventory: FILE_CHECK names a known track file;
    an address a checker connects to or from is of the virtual server's family (a check of
    the real server by another family could never be sent from bindto)."""
    known = inv.track_files
    script_user = inv.global_defs.script_user or "root"
    for i, vs in enumerate(inv.virtual_servers):
        for j, rs in enumerate(vs.real_servers):
            loc = ("virtual_servers", i, "real_servers", j)
            for kind in CHECKERS:
                many = len(getattr(rs, kind)) > 1
                for k, c in enumerate(getattr(rs, kind)):
                    at = loc + ((kind, k) if many else (kind,))
                    if kind == "FILE_CHECK" and c.track_file not in known:
                        yield FieldProblem(at + ("track_file",), f"unknown track file {c.track_file!r}",
                                           f"define it under track_files (known: {sorted(known) or 'none'})")
                    if kind == "MISC_CHECK" and (c.user or script_user).split()[0] != "root":
                        yield FieldProblem(at + ("user",), f"MISC_CHECK runs as {(c.user or script_user).split()[0]}: "
                                           "keepalived 2.2.7's config check (keepalived -t) is killed when a "
                                           "MISC_CHECK runs as another user than root (2.3 fixes it)",
                                           "drop user (and keep global_defs.script_user root), or use user: root")
                    bindto = getattr(c, "bindto", None)
                    if bindto and not getattr(c, "connect_ip", None) and family_of(bindto) != vs.family:
                        yield FieldProblem(at + ("bindto",), f"bindto {bindto} is IPv{family_of(bindto)}, the real "
                                           f"server IPv{vs.family}: the check could never be sent",
                                           "give bindto an address of the real server's family, or set connect_ip")
