"""A real server's checker blocks as keepalived.conf lines (the template indents and wraps them:
keepalived_checkers.j2). Pure; for the template only."""
from __future__ import annotations

from fabfile.model.checkers import Connection
from fabfile.model.schema import RealServer

# options written after a checker's own lines, in this order (the first four in the order lbtk
# always wrote them for TCP_CHECK and HTTP_GET)
COMMON = ("connect_timeout", "retry", "delay_before_retry", "connect_port", "connect_ip", "bindto", "bind_port",
          "fwmark", "warmup", "delay_loop")
QUOTED = ("misc_path", "helo_name")
OWN = {   # each kind's own options, written first
    "HTTP_GET": (), "SSL_GET": (), "TCP_CHECK": (), "PING_CHECK": (),
    "MISC_CHECK": ("misc_path", "misc_timeout", "misc_dynamic", "user"),
    "DNS_CHECK": ("type", "name"),
    "SMTP_CHECK": ("helo_name",),
    "UDP_CHECK": ("payload", "require_reply", "min_reply_length", "max_reply_length"),
    "FILE_CHECK": ("track_file",),
}
HTTP_TAIL = ("virtualhost", "http_protocol", "enable_sni")


def checker_blocks(rs: RealServer, fwmark_port: int | None) -> list[dict]:
    """[{kind, lines}] for every checker of `rs`; `fwmark_port`: the port a checker must name
    itself (a fwmark service's real servers carry none), else None."""
    out = []
    for kind, c in ((k, one) for k, c in rs.checkers for one in (c.per_host() if k == "SMTP_CHECK" else [c])):
        lines = _urls(c) if kind in ("HTTP_GET", "SSL_GET") else []
        lines += _options(c, OWN[kind])
        if kind == "FILE_CHECK" and c.weight is not None:
            lines.append(f"weight {c.weight}" + (" reverse" if c.reverse else ""))
        values = c.model_dump()
        if isinstance(c, Connection) and fwmark_port and c.connect_port is None:
            values["connect_port"] = fwmark_port
        lines += _options(c, COMMON, values)
        if kind in ("HTTP_GET", "SSL_GET"):
            lines += _options(c, HTTP_TAIL)
        out.append(dict(kind=kind, lines=lines))
    return out


def _urls(c) -> list[str]:
    out = []
    for u in c.urls:
        out += ["url {", *("    " + x for x in _options(u, ("path", "digest", "status_code", "virtualhost"))), "}"]
    return out


def _options(model, keys: tuple[str, ...], values: dict | None = None) -> list[str]:
    values = values if values is not None else model.model_dump()
    out = []
    for k in keys:
        v = values.get(k)
        if v is None or v is False or k not in values:
            continue
        if v is True:
            out.append(k)
        elif k in QUOTED:
            out.append(f'{k} "{v}"')
        else:
            out.append(f"{k} {v}")
    return out
