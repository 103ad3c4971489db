"""A stand-in's HTTP server on 127.0.0.1, served from a daemon thread (Neptune's and Slack's)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def serve(address: tuple[str, int], handler: type[BaseHTTPRequestHandler], standin: Any,
          name: str) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start serving `handler`, bound to `standin` (its `self.standin`); the server and its thread."""
    bound = type("BoundHandler", (handler,), {"standin": standin})
    server = ThreadingHTTPServer(address, bound)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()
    return server, thread


def shut(server: ThreadingHTTPServer, thread: threading.Thread | None) -> None:
    """Stop serving and release the port."""
    server.shutdown()
    server.server_close()
    if thread is not None:
        thread.join(timeout=5)
