"""A local stand-in for a Slack incoming webhook, writing each message it takes to the twin's outbox.

The twin's Slack secret names this endpoint, so the Slack function runs exactly
as in the cloud: it POSTs the Block Kit payload `{"text", "blocks"}` and reads
the answer. Slack's answers are kept: `200 ok` for a message it takes, `400
invalid_payload` for a body that is not a JSON object, `400 no_text` for one
with neither text nor blocks, `404 no_service` for another path.

Each message taken becomes one JSON file in the outbox, named
`<time_ns, 20 digits>-<kind>-<8 hex>.json` (names sort by arrival) and holding
`{"kind", "run_id", "text", "blocks"}`, written to a temp file and renamed. A
Slack payload carries no kind or run id; the stand-in reads them off the
message, as a person reading the channel would: the kind from the header's
title, the run id from the `Run` field (see `message_kind`, `message_run_id`).

`fail_next(status, count)` makes it answer errors instead (429 with a
Retry-After, 5xx) or `fail_next(STALL, count)` hold the request unanswered, for
tests of the function's retries, time budget and dead letters; `run_id` limits
a failure to the messages of runs whose id starts with it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .local_http import serve, shut
from .state_files import write_bytes

WEBHOOK_PATH = "/services/T0TWIN0000/B0TWIN0000/twin-webhook-token"
STALL = "stall"  # fail_next(STALL): read the request, answer nothing

# The notices' header titles (threadline_common.slack_format) -> the message kind.
NOTICE_TITLES = (
    (":arrow_forward: Run started: ", "run_started"),
    (":white_check_mark: Run succeeded: ", "run_succeeded"),
    (":x: Run failed: ", "run_failed"),
    (":no_entry: Input failed validation: ", "validation_failed"),
)
SNS_MESSAGE_TITLE = ":loudspeaker: "
RUN_FIELD = "*Run*\n"

_ERROR_BODIES = {429: "rate_limited", 500: "internal_error", 502: "bad gateway", 503: "service unavailable",
                 504: "gateway timeout"}


@dataclass
class _Failure:
    answer: int | str  # an HTTP status, or STALL
    left: int | None  # answers still to give; None: every message
    run_id: str | None
    retry_after: float | None
    stall_s: float

    def matches(self, run_id: str | None) -> bool:
        return self.run_id is None or (run_id or "").startswith(self.run_id)


@dataclass(frozen=True)
class Received:
    """One POST to the webhook, with what the stand-in did with it."""

    kind: str | None
    run_id: str | None
    answer: int | str  # the HTTP status sent back, or STALL
    path: Path | None  # the outbox file, for a message taken


class SlackStandin:
    """A threaded HTTP server on 127.0.0.1 (port 0 picks a free port) that writes to `outbox`."""

    def __init__(self, outbox: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.outbox = Path(outbox)
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._received: list[Received] = []
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        """The webhook URL to store in the Slack secret."""
        if self._server is None:
            raise RuntimeError("the Slack stand-in is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{WEBHOOK_PATH}"

    def start(self) -> SlackStandin:
        if self._server is not None:
            return self
        self.outbox.mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        self._server, self._thread = serve(self._address, _Handler, self, "slack-standin")
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # stalled requests give up
        shut(self._server, self._thread)
        self._server = None
        self._thread = None

    def __enter__(self) -> SlackStandin:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- faults --------------------------------------------------------------------

    def fail_next(self, status: int | str = 500, count: int | None = 1, *, run_id: str | None = None,
                  retry_after: float | None = None, stall_s: float = 30.0) -> None:
        """Answer the next `count` messages (None: all, until clear_failures) with `status` instead of taking them.

        `status` is an HTTP error status (429 and 5xx are what Slack's gateway
        answers under load) or STALL: read the request and answer nothing for
        `stall_s` seconds, then drop the connection. A 429 carries `retry_after`
        (seconds) as its Retry-After header when given. With `run_id`, only
        messages of runs whose id starts with it are failed. Rules given earlier
        are used up first.
        """
        if status != STALL and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError(f"status must be an HTTP error status (400-599) or {STALL!r}, not {status!r}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1, or None for every message")
        with self._lock:
            self._failures.append(_Failure(status, count, run_id, retry_after, stall_s))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    @property
    def received(self) -> list[Received]:
        """Every POST so far, in order of arrival."""
        with self._lock:
            return list(self._received)

    def _failure_for(self, run_id: str | None) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.matches(run_id):
                    if failure.left is not None:
                        failure.left -= 1
                        if failure.left == 0:
                            self._failures.remove(failure)
                    return failure
        return None

    def _record(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)

    def _take(self, payload: dict[str, Any]) -> tuple[Received, _Failure | None]:
        """Fail the message if a rule says so, else write it to the outbox; what was done, and the rule used."""
        kind, run_id = message_kind(payload), message_run_id(payload)
        failure = self._failure_for(run_id)
        if failure is not None:
            received = Received(kind, run_id, failure.answer, None)
        else:
            received = Received(kind, run_id, 200, write_message(self.outbox, kind, run_id, payload))
        self._record(received)
        return received, failure


def message_kind(payload: dict[str, Any]) -> str:
    """The kind of a threadline message, from its header: a notice's title, an SNS message's, else an alarm."""
    header = _header_text(payload)
    if header is None:
        return "message"
    for title, kind in NOTICE_TITLES:
        if header.startswith(title):
            return kind
    if header.startswith(SNS_MESSAGE_TITLE):
        return "sns_message"
    return "alarm"


def message_run_id(payload: dict[str, Any]) -> str | None:
    """The run a notice is about, from its `Run` field (inline code, escaped); None for other messages."""
    if message_kind(payload) not in {kind for _, kind in NOTICE_TITLES}:
        return None
    for block in payload.get("blocks") or []:
        for field in (block.get("fields") or []) if isinstance(block, dict) else []:
            text = field.get("text") if isinstance(field, dict) else None
            if isinstance(text, str) and text.startswith(RUN_FIELD):
                value = text.removeprefix(RUN_FIELD).strip().strip("`")
                return value.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") or None
    return None


def write_message(outbox: Path, kind: str, run_id: str | None, payload: dict[str, Any]) -> Path:
    """One JSON file per message, named so that names sort by time; written whole or not at all."""
    name = f"{time.time_ns():020d}-{kind}-{uuid.uuid4().hex[:8]}.json"
    document = {"kind": kind, "run_id": run_id,
                **{key: value for key, value in payload.items() if key not in ("kind", "run_id")}}
    final = outbox / name
    write_bytes(final, json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8"))
    return final


def _header_text(payload: dict[str, Any]) -> str | None:
    blocks = payload.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return None
    first = blocks[0]
    if not isinstance(first, dict) or first.get("type") != "header" or not isinstance(first.get("text"), dict):
        return None
    text = first["text"].get("text")
    return text if isinstance(text, str) else None


class _Handler(BaseHTTPRequestHandler):
    standin: SlackStandin
    server_version = "threadline-slack-standin"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if urlsplit(self.path).path != WEBHOOK_PATH:
            self._answer(404, "no_service")
            return
        try:
            payload = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict):
            self._answer(400, "invalid_payload")
            return
        if not payload.get("text") and not payload.get("blocks"):
            self._answer(400, "no_text")
            return
        _, failure = self.standin._take(payload)
        if failure is None:
            self._answer(200, "ok")
        elif failure.answer == STALL:
            self.standin._stopping.wait(failure.stall_s)  # stop() ends the wait
            self.close_connection = True
        else:
            status = int(failure.answer)
            headers = {"Retry-After": f"{failure.retry_after:g}"} if status == 429 and failure.retry_after is not None \
                else {}
            self._answer(status, _ERROR_BODIES.get(status, "error"), headers)

    def _answer(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        """Quiet: one line per message would drown the twin's output."""
