"""One readiness signal: the twin answers no AWS call until everything the template declares is wired.

moto serves its APIs from the first moment, while the twin is still creating
buckets, rules, S3 -> EventBridge notifications and pollers through them; an
upload that lands before the notification exists is stored and never starts
a run. The gate sits in front of moto's WSGI app: until `open()` it answers
every call with 503 and a "starting" message (botocore retries a 503, so a
client that starts too early mostly just waits), except the twin's own calls,
which carry a per-twin token header, and moto's `/moto-api/`.

`GET /_threadline/health` answers 200 `{"status": "ready"}` once open, else
503 `{"status": "starting"}`: what scripts poll (`curl --retry`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from typing import Any

HEALTH_PATH = "/_threadline/health"
TOKEN_HEADER = "X-Threadline-Twin"
STARTING = "the threadline twin is starting (wiring the template's resources); try again in a moment"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class ReadinessGate:
    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.token = secrets.token_hex(16)
        self.ready = False

    def open(self) -> None:
        self.ready = True

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or ""
        if path == HEALTH_PATH:
            status = "ready" if self.ready else "starting"
            return _answer(start_response, 200 if self.ready else 503, "application/json",
                           json.dumps({"status": status}).encode())
        if self.ready or path.startswith("/moto-api/") or environ.get(_environ_key(TOKEN_HEADER)) == self.token:
            return self.app(environ, start_response)
        return _refuse(environ, start_response)

    def admits(self, headers: Any) -> bool:
        """Whether a request with these headers would pass the gate now (the in-process transport asks)."""
        token = headers.get(TOKEN_HEADER)
        return self.ready or (token.decode() if isinstance(token, bytes) else token) == self.token

    def sign(self, request: Any, **kwargs: Any) -> None:
        """botocore `request-created` handler: marks the twin's own calls so they pass while it starts."""
        request.headers[TOKEN_HEADER] = self.token


def _refuse(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """503 in the protocol the caller speaks, so that its SDK shows the message."""
    if "json" in (environ.get("CONTENT_TYPE") or ""):
        body = json.dumps({"__type": "ServiceUnavailable", "message": STARTING}).encode()
        return _answer(start_response, 503, "application/x-amz-json-1.0", body)
    body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ServiceUnavailable</Code>"
            f"<Message>{STARTING}</Message></Error>").encode()
    return _answer(start_response, 503, "application/xml", body)


def _answer(start_response: StartResponse, code: int, content_type: str, body: bytes) -> Iterable[bytes]:
    reason = "OK" if code == 200 else "Service Unavailable"
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    if code == 503:
        headers.append(("Retry-After", "1"))
    start_response(f"{code} {reason}", headers)
    return [body]


def _environ_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")
