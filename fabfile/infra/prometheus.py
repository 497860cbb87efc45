"""The one connection lbtk makes to Prometheus: an HTTP GET of its API from this machine, with a
short timeout. As verify's GET through a VIP (fabfile/ops/verify.py): http.client, so no proxy the
environment names answers in Prometheus's place, and no redirect is followed (a 3xx says where it
pointed). What Prometheus answered is read by fabfile/parsers/prometheus.py.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from fabfile.errors import LbtkError

TIMEOUT_S = 3.0
MAX_BYTES = 32 << 20          # an alerts answer of a Prometheus with thousands of them fits


class Unreachable(LbtkError):
    """No answer that is Prometheus's API from the address (str(): why, without the address)."""


def get(base_url: str, path: str, timeout: float = TIMEOUT_S) -> str:
    """GET base_url + path (`/api/v1/alerts`): the body of a 2xx answer, and of an error answer
    whose body is the API's JSON (Prometheus's own error, for the parser to say); else Unreachable."""
    import http.client   # here, not at the top: part of every task's start-up otherwise
    u = urlsplit(base_url)
    cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = cls(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", u.path.rstrip("/") + path, headers={"Accept": "application/json", "Connection": "close"})
        r = conn.getresponse()
        body = r.read(MAX_BYTES).decode(errors="replace")
    except Exception as e:  # noqa: BLE001 - every failure to get an answer is this one line
        raise Unreachable(_reason(e, timeout)) from None
    finally:
        conn.close()
    if 200 <= r.status < 300 or (r.getheader("Content-Type") or "").startswith("application/json"):
        return body
    where = r.getheader("Location") if 300 <= r.status < 400 else None
    raise Unreachable(f"HTTP {r.status} {r.reason}" + (f" (a redirect to {where[:100]!r}, not followed)" if where
                                                       else f": {' '.join(body.split())[:80]!r}"))


def _reason(e: Exception, timeout: float) -> str:
    import socket
    if isinstance(e, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or e.__class__.__name__
