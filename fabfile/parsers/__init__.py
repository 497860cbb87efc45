"""Parsers of real tool output into typed, frozen observations. Pure: text in, objects out.

One module per tool: `ipvsadm`, `ip_addr`, `sysctl`, `systemctl`, `keepalived_t`. Every parser
was written against, and is tested on, output captured from the real tools
(tests/fixtures/<tool>/, re-captured by scripts/capture-fixtures/). Unrecognised input raises
`ParseError` with a one-line message; parsers never guess.
"""
from __future__ import annotations

import ipaddress
import json


class ParseError(ValueError):
    """Tool output the parser does not recognise. str(err) is one line."""

    def __init__(self, msg: str):
        super().__init__(" ".join(str(msg).split()))


def excerpt(line: str, width: int = 80) -> str:
    """A quoted, shortened copy of an offending line, for one-line error messages."""
    line = line.strip()
    return repr(line if len(line) <= width else line[: width - 3] + "...")


def _no_constant(word: str):
    raise ValueError(f"{word} is not a JSON number")


def load_json(text: str, what: str):
    """JSON a node printed -> its value. What the json module refuses (bad syntax, nesting too deep
    for the parser, a number too long to read) and what it would accept but JSON does not (NaN,
    Infinity) is one ParseError: node output never gets further as another exception. Control
    characters inside strings are taken (strict=False): iproute2's and keepalived's JSON writers
    escape only \\t \\n \\r \\f \\b, so an interface named with an ESC in it comes out raw, and
    that node must still be read (fabfile/output.py shows such names escaped)."""
    try:
        return json.loads(text, parse_constant=_no_constant, strict=False)
    except (ValueError, RecursionError) as e:
        why = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deep" if isinstance(e, RecursionError) \
            else str(e)
        raise ParseError(f"{what}: not JSON ({why}): {excerpt(text)}") from None


_REQUIRED = object()
_JSON_TYPES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false", list: "a list",
               dict: "an object", type(None): "null"}


def json_field(obj, key: str, kinds: type | tuple[type, ...], what: str, default=_REQUIRED):
    """obj[key] when obj is a JSON object and the value has one of the JSON types `kinds` (true and
    false are not numbers; null only where `kinds` has type(None)); `default` when the key is absent
    (absent and no default: a ParseError too). Parsers of JSON from a node read every field through
    this, so a list where an object belongs or a number where a name belongs is a ParseError."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(obj, dict):
        raise ParseError(f"{what}: expected an object, got {_JSON_TYPES.get(type(obj), type(obj).__name__)}")
    if key not in obj:
        if default is _REQUIRED:
            raise ParseError(f"{what}: no {key!r}")
        return default
    v = obj[key]
    if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
        want = " or ".join(_JSON_TYPES.get(k, k.__name__) for k in kinds if not (k is int and float in kinds))
        raise ParseError(f"{what}: {key!r} is {_JSON_TYPES.get(type(v), type(v).__name__)}, not {want}")
    return v


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


__all__ = ["ParseError", "excerpt", "load_json", "json_field", "split_host_port", "join_host_port", "same_ip"]
