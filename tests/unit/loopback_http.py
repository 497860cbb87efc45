"""A loopback HTTP server (127.0.0.1 only, a port of its own) for the tests that need something to
answer over HTTP: the drill's probes reading a node's page, `inv alerts` reading Prometheus's API."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

Answer = Callable[[str], tuple[int, str, bytes]]      # path -> (status, Content-Type, body)


@contextmanager
def serving(answer: Answer) -> Iterator[ThreadingHTTPServer]:
    """The server, answering every GET with answer(path), until the block ends."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, kind, body = answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=5)
