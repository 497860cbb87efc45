"""verify's GET through a VIP (issue 24): never through a proxy the environment names, never
following a redirect. Local HTTP servers on 127.0.0.1 only."""
from __future__ import annotations

import http.server
import threading

import pytest

from fabfile.ops.verify import http_get


class Server:
    """A one-page HTTP server on 127.0.0.1: `status` with `location`, else 200 `body`; counts hits."""

    def __init__(self, body: str = "", status: int = 200, location: str | None = None):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers(monkeypatch):
    made = []

    def make(**kw):
        made.append(Server(**kw))
        return made[-1]
    proxy = make(body="answered by the proxy, lb9")
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{proxy.port}")
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    yield make, proxy
    for s in made:
        s.close()


def test_the_vip_answers_itself_whatever_proxy_the_environment_names(servers):
    make, proxy = servers
    vip = make(body="lb1")
    assert http_get("127.0.0.1", vip.port) == ("lb1", None)
    assert vip.hits == ["/"] and proxy.hits == []


def test_a_redirect_is_a_failure_and_is_not_followed(servers):
    make, proxy = servers
    elsewhere = make(body="lb2")
    vip = make(status=302, location=f"http://127.0.0.1:{elsewhere.port}/")
    body, err = http_get("127.0.0.1", vip.port)
    assert body is None and "HTTP 302" in err and f"127.0.0.1:{elsewhere.port}" in err and "not followed" in err
    assert elsewhere.hits == [] and proxy.hits == []


def test_an_error_status_is_a_failure(servers):
    make, _ = servers
    vip = make(status=503, body="lb1")
    body, err = http_get("127.0.0.1", vip.port)
    assert body is None and err == f"GET http://127.0.0.1:{vip.port}/ failed: HTTP 503 Service Unavailable"


def test_the_gateway_curl_uses_no_proxy_and_follows_no_redirect(monkeypatch):
    from fabfile.infra import remote
    from fabfile.ops.verify import http_get_via
    seen = []
    monkeypatch.setattr(remote, "run", lambda c, cmd, **kw: seen.append(cmd) or remote.Result("lb1", "", 0))
    assert http_get_via(object(), "10.0.0.1", 80) == ("lb1", None)
    words = seen[0].split()
    assert "--noproxy" in words and "'*'" in words and "-fsS" in words
    assert not any(w in ("-L", "--location") for w in words)
