"""OpenLineage events to an HTTP endpoint (Marquez, DataHub, any OpenLineage API), one POST per event.

The endpoint is `OPENLINEAGE_URL` (the base URL: events go to `<url>/api/v1/lineage`,
OpenLineage's HTTP transport path); empty or unset means no endpoint. An API key,
when the endpoint wants one, is the `api_key` of the JSON secret named by
`OPENLINEAGE_API_KEY_SECRET_ARN`, sent as `Authorization: Bearer <key>` and never
logged.

Sending is best effort and never undoes the graph write that came before it: a
429, a 5xx, a refused connection or a timeout is tried again with backoff while
the function has time (at most RETRIES times); once the endpoint is unreachable
the rest of the events are not tried. What was not sent is returned, for the
function to log. The events can be sent again at any time with `threadline
lineage export RUN --openlineage`: their run ids are derived, so a consumer sees
the same runs, not new ones.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

LINEAGE_PATH = "/api/v1/lineage"
TIMEOUT_SECONDS = 5.0
RETRIES = 2
BACKOFF_SECONDS = 0.5
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SECRET_CACHE_SECONDS = 300


@dataclass
class SendResult:
    sent: int = 0
    failed: list[str] = field(default_factory=list)  # "<run id> <event type>: why", for the log


@dataclass(frozen=True)
class HttpTransport:
    url: str  # the base URL
    api_key: str = ""
    timeout: float = TIMEOUT_SECONDS

    @classmethod
    def from_environment(cls) -> HttpTransport | None:
        """The endpoint the function's environment names, or None when it names none."""
        url = (os.environ.get("OPENLINEAGE_URL") or "").strip().rstrip("/")
        if not url:
            return None
        return cls(url=url, api_key=api_key(os.environ.get("OPENLINEAGE_API_KEY_SECRET_ARN")))

    @property
    def endpoint(self) -> str:
        return self.url if self.url.endswith(LINEAGE_PATH) else self.url + LINEAGE_PATH

    def send(self, events: Sequence[dict[str, Any]], time_left: Callable[[], float] | None = None) -> SendResult:
        """POST each event in order; `time_left()` (seconds) stops retries and sends before the function's end."""
        result = SendResult()
        unavailable = ""
        for event in events:
            error, retryable = (f"not tried: {unavailable}", True) if unavailable else self._send_one(event, time_left)
            if error is None:
                result.sent += 1
                continue
            result.failed.append(f"{event.get('run', {}).get('runId')} {event.get('eventType')}: {error}")
            if retryable:  # unavailable or out of time: the rest would wait on it too
                unavailable = unavailable or error
        return result

    def _send_one(self, event: dict[str, Any], time_left: Callable[[], float] | None) -> tuple[str | None, bool]:
        """(None, _) when the endpoint took the event, else (why not, whether trying again might help)."""
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        error = "not sent"
        for attempt in range(RETRIES + 1):
            if time_left is not None and time_left() < self.timeout + BACKOFF_SECONDS * 2 ** attempt:
                return f"{error}; no time left to try", True
            if attempt:
                time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            request = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    answer.read()
                return None, False
            except urllib.error.HTTPError as exc:
                error = f"answered HTTP {exc.code}"
                if exc.code not in RETRY_STATUSES:
                    return error, False
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                error = f"could not be reached: {type(getattr(exc, 'reason', exc)).__name__}"
        return error, True


def api_key(secret_arn: str | None) -> str:
    """The `api_key` of the JSON secret ("" when no secret is named or it holds none); cached for 5 minutes."""
    if not secret_arn:
        return ""
    from aws_lambda_powertools.utilities import parameters  # boto3 underneath: only when a secret is named

    value = parameters.get_secret(secret_arn, transform="json", max_age=SECRET_CACHE_SECONDS)
    key = value.get("api_key") if isinstance(value, dict) else None
    return key.strip() if isinstance(key, str) else ""
