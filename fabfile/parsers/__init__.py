"""Parsers of real tool output into typed, frozen observations. Pure: text in, objects out.

One module per tool: `ipvsadm`, `ip_addr`, `sysctl`, `systemctl`, `keepalived_t`. Every parser
was written against, and is tested on, output captured from the real tools
(tests/fixtures/<tool>/, re-captured by scripts/capture-fixtures/). Unrecognised input raises
`ParseError` with a one-line message; parsers never guess.
"""
from __future__ import annotations

import ipaddress


class ParseError(ValueError):
    """Tool output the parser does not recognise. str(err) is one line."""

    def __init__(self, msg: str):
        super().__init__(" ".join(str(msg).split()))


def excerpt(line: str, width: int = 80) -> str:
    """A quoted, shortened copy of an offending line, for one-line error messages."""
    line = line.strip()
    return repr(line if len(line) <= width else line[: width - 3] + "...")


def split_host_port(text: str) -> tuple[str, int]:
    """'10.0.0.1:80' -> ('10.0.0.1', 80); '[fd00::1]:80' -> ('fd00::1', 80)."""
    t = text.strip()
    if t.startswith("["):
        host, sep, port = t[1:].partition("]:")
    else:
        host, sep, port = t.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()):
        raise ParseError(f"not an address:port: {excerpt(text)}")
    return host, int(port)


def join_host_port(host: str, port: int) -> str:
    """The inverse of split_host_port, bracketing IPv6 addresses as ipvsadm does."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def same_ip(a: str, b: str) -> bool:
    """Address equality that ignores spelling (fd00:0::1 == fd00::1); plain compare if invalid."""
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


__all__ = ["ParseError", "excerpt", "split_host_port", "join_host_port", "same_ip"]
