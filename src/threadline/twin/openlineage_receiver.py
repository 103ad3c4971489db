"""A local OpenLineage endpoint standing in for Marquez: it keeps every RunEvent it is sent.

The twin points the lineage function's `OPENLINEAGE_URL` here, so the function
sends exactly as it would to Marquez: one POST per event to `/api/v1/lineage`.
Marquez's answers are kept: `201` for an event taken, `400` for a body that is not
a JSON object, `404` for another path. Each event taken is appended as one line
to `events.jsonl` in the receiver's folder (under the twin's workdir), so the
events outlive the twin and `events()` reads them back in arrival order.

`fail_next(status, count)` answers errors instead (e.g. 503), for tests of the
function's retries and of the graph write surviving a failed send.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .local_http import serve, shut

LINEAGE_PATH = "/api/v1/lineage"
EVENTS_FILE = "events.jsonl"


class OpenLineageReceiver:
    """A threaded HTTP server on 127.0.0.1 (port 0 picks a free port) appending events to `folder/events.jsonl`."""

    def __init__(self, folder: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.folder = Path(folder)
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failures: list[list[int]] = []  # [status, answers left]

    @property
    def path(self) -> Path:
        return self.folder / EVENTS_FILE

    @property
    def url(self) -> str:
        """The base URL for OPENLINEAGE_URL (events go to `<url>/api/v1/lineage`)."""
        if self._server is None:
            raise RuntimeError("the OpenLineage receiver is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OpenLineageReceiver:
        if self._server is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._server, self._thread = serve(self._address, _Handler, self, "openlineage-receiver")
        return self

    def stop(self) -> None:
        if self._server is not None:
            shut(self._server, self._thread)
            self._server = None
            self._thread = None

    def __enter__(self) -> OpenLineageReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next(self, status: int = 503, count: int = 1) -> None:
        """Answer the next `count` events with HTTP `status` instead of taking them."""
        if not 400 <= status <= 599 or count < 1:
            raise ValueError("status must be an HTTP error status (400-599) and count at least 1")
        with self._lock:
            self._failures.append([status, count])

    def events(self) -> list[dict[str, Any]]:
        """Every event taken so far, in order of arrival."""
        with self._lock:
            if not self.path.exists():
                return []
            return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]

    def _take(self, event: dict[str, Any]) -> int:
        """Store the event, or use up a failure rule; the HTTP status to answer."""
        with self._lock:
            if self._failures:
                status = self._failures[0][0]
                self._failures[0][1] -= 1
                if self._failures[0][1] == 0:
                    self._failures.pop(0)
                return status
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n")
            return 201


class _Handler(BaseHTTPRequestHandler):
    standin: OpenLineageReceiver
    server_version = "threadline-openlineage-receiver"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if urlsplit(self.path).path.rstrip("/") != LINEAGE_PATH:
            self._answer(404, {"error": "not found"})
            return
        try:
            event = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            event = None
        if not isinstance(event, dict):
            self._answer(400, {"error": "the body must be a JSON object (an OpenLineage event)"})
            return
        status = self.standin._take(event)
        self._answer(status, {} if status == 201 else {"error": "failing on purpose"})

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        """Quiet: one line per event would drown the twin's output."""
