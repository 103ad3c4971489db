"""The readiness gate in front of moto: "starting" 503s until open, the twin's own calls and health always answered."""

from __future__ import annotations

import json
from typing import Any

from threadline.twin.readiness import HEALTH_PATH, STARTING, TOKEN_HEADER, ReadinessGate


def _call(gate: ReadinessGate, path: str, headers: dict[str, str] | None = None,
          content_type: str = "") -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {"PATH_INFO": path, "CONTENT_TYPE": content_type}
    environ.update({"HTTP_" + name.upper().replace("-", "_"): value for name, value in (headers or {}).items()})
    body = b"".join(gate(environ, start_response))
    return seen["status"], seen["headers"], body


def _moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"moto answered"]


def test_until_open_callers_get_a_starting_503_in_their_protocol_and_health_says_starting():
    gate = ReadinessGate(_moto)

    status, headers, body = _call(gate, "/threadline-incomingbucket/incoming/a.csv")
    assert status.startswith("503") and headers["Retry-After"] == "1"
    assert b"<Code>ServiceUnavailable</Code>" in body and STARTING.encode() in body

    status, _, body = _call(gate, "/", content_type="application/x-amz-json-1.0")
    assert status.startswith("503") and json.loads(body) == {"__type": "ServiceUnavailable", "message": STARTING}

    status, _, body = _call(gate, HEALTH_PATH)
    assert status.startswith("503") and json.loads(body) == {"status": "starting"}


def test_the_twins_own_calls_and_moto_api_pass_while_starting_and_everything_once_open():
    gate = ReadinessGate(_moto)
    assert _call(gate, "/", {TOKEN_HEADER: gate.token})[2] == b"moto answered"
    assert _call(gate, "/moto-api/config")[2] == b"moto answered"
    assert _call(gate, "/", {TOKEN_HEADER: "a-guess"})[0].startswith("503")

    gate.open()

    assert _call(gate, "/threadline-incomingbucket/incoming/a.csv")[2] == b"moto answered"
    status, _, body = _call(gate, HEALTH_PATH)
    assert status.startswith("200") and json.loads(body) == {"status": "ready"}
