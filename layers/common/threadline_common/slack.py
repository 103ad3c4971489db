"""Delivers Slack messages through the incoming webhook named by a Secrets Manager secret.

The secret is JSON `{"webhook_url": "https://hooks.slack.com/..."}`, read with
Powertools parameters and cached for five minutes. An empty URL means "no
Slack": the message is only logged, with a warning. The URL is a credential: it
is never logged, and never part of an error message.

A webhook POST that meets a rate limit, a 5xx gateway or server error, a
refused or reset connection or a timeout is tried again, within the time the
function has left (send_webhook); every message is checked against Block Kit's
limits before it is sent. `THREADLINE_SLACK_BACKOFF_SCALE` (a positive factor,
1 when unset) scales the backoff between attempts: the offline twin sets it so
that a Slack outage costs its tests fractions of a second, not minutes.

Powertools parameters (boto3 underneath) and slack_sdk are imported when first
used, not with this module: together they take longer to import than the rest
of the function's init (bench/README.md), and an invocation with no webhook, or
a skipped notice, never needs them.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import math
import os
import random
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger

from .slack_backoff import BACKOFF_SCALE_ENV
from .slack_format import MessageLimitError, SlackMessage, check_limits

logger = Logger(child=True)

# slack_sdk logs request URLs at DEBUG; the webhook URL must not reach the logs.
logging.getLogger("slack_sdk").setLevel(logging.INFO)
# The client's own logger says the URL at INFO and ERROR too (retries, failed requests):
# it gets one that drops everything, and send_webhook logs what happened itself.
_CLIENT_LOGGER = logging.getLogger(f"{__name__}.client")
_CLIENT_LOGGER.setLevel(logging.CRITICAL + 1)

SECRET_CACHE_SECONDS = 300
WEBHOOK_TIMEOUT_SECONDS = 10
WEBHOOK_RETRIES = 5

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

SENT, NOT_CONFIGURED = "sent", "not_configured"


class SlackDeliveryError(RuntimeError):
    """Slack refused or could not take a message (the state machine sees this name as the error)."""


class SlackConfigError(SlackDeliveryError):
    """The webhook secret cannot be read or is not `{"webhook_url": ...}`."""


@dataclass(frozen=True)
class Delivery:
    status: str  # sent or not_configured
    attempts: int = 0  # webhook POSTs made


@dataclass(frozen=True)
class RetryPolicy:
    """How hard send_webhook tries, in seconds; with a deadline, the deadline bounds it too."""

    retries: int = WEBHOOK_RETRIES  # after the first attempt
    base_delay: float = 0.5  # the backoff ceiling before the first retry, doubled for each one after
    max_delay: float = 8.0  # the backoff ceiling never grows past this
    retry_after_max: float = 20.0  # a longer Retry-After is waited for this long only
    timeout: float = WEBHOOK_TIMEOUT_SECONDS  # one attempt, from connecting to the last byte of the answer
    margin: float = 2.0  # kept back from the deadline, for the function to fail cleanly
    min_attempt: float = 1.0  # an attempt with less time than this is not started


@dataclass(frozen=True)
class _Failure:
    """One attempt that did not deliver."""

    reason: str  # "answered HTTP 502: ..." or "could not be reached: TimeoutError"
    retryable: bool
    retry_after: float | None = None  # seconds, from a 429's Retry-After


def webhook_url(secret_arn: str | None) -> str:
    """The webhook URL in the secret ("" when no secret is named or its URL is empty); cached for 5 minutes.

    Powertools keeps the secret (`parameters.clear_caches()` forgets it). A
    secret that cannot be read fails with the AWS error, as a boto3 call would.
    """
    if not secret_arn:
        return ""
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

    try:
        value = parameters.get_secret(secret_arn, transform="json", max_age=SECRET_CACHE_SECONDS)
    except TransformParameterError as exc:
        raise SlackConfigError('the Slack webhook secret is not JSON {"webhook_url": ...}') from exc
    except GetParameterError as exc:
        # Powertools wraps every failed read; the AWS error it met is the one worth raising.
        if isinstance(exc.__context__, Exception):
            raise exc.__context__ from None
        raise
    url = value.get("webhook_url") if isinstance(value, dict) else None
    if url is not None and not isinstance(url, str):
        raise SlackConfigError("the Slack webhook secret's webhook_url is not a string")
    return (url or "").strip()


def deadline_in(remaining_ms: float | None) -> float | None:
    """The time.monotonic() value at which a function with `remaining_ms` left is stopped."""
    return None if remaining_ms is None else time.monotonic() + remaining_ms / 1000


def deliver(message: SlackMessage, url: str, *, deadline: float | None = None,
            policy: RetryPolicy | None = None) -> Delivery:
    """Send to the webhook; with no URL, log that Slack is not configured.

    A message that breaks a Block Kit limit is refused here, before Slack sees it.
    """
    if not url:
        logger.warning("Slack webhook not configured: message not sent",
                       extra={"kind": message.kind, "text": message.text})
        return Delivery(NOT_CONFIGURED)
    try:
        check_limits(message)
    except MessageLimitError as exc:
        raise SlackDeliveryError(f"the {message.kind} message breaks a Block Kit limit: {exc}") from None
    return Delivery(SENT, attempts=send_webhook(url, message, deadline=deadline, policy=policy))


def send_webhook(url: str, message: SlackMessage, *, deadline: float | None = None,
                 policy: RetryPolicy | None = None) -> int:
    """POST the message and return the number of attempts it took; raise SlackDeliveryError if it fails.

    429 (after its Retry-After), 500, 502, 503, 504, connection errors and
    timeouts are retried with exponential backoff and full jitter. With a
    `deadline` (a time.monotonic() value), no attempt or wait runs into the last
    `policy.margin` seconds before it: delivery gives up early instead, so the
    function fails with SlackDeliveryError rather than being stopped mid-request.
    """
    policy = policy or default_policy()
    if urlsplit(url).scheme not in ("https", "http"):
        raise SlackConfigError("the Slack webhook URL is not an http(s) URL")
    payload = message.payload()
    failure: _Failure | None = None
    attempt = 0
    while True:
        timeout = _attempt_timeout(policy, deadline)
        if timeout is None:
            raise SlackDeliveryError(_out_of_time(failure, attempt, policy))
        attempt += 1
        failure = _post(url, payload, timeout)
        if failure is None:
            return attempt
        if not failure.retryable or attempt > policy.retries:
            raise SlackDeliveryError(f"Slack {failure.reason} (after {_attempts(attempt)})")
        delay = backoff_delay(policy, attempt, failure.retry_after)
        if deadline is not None and time.monotonic() + delay + policy.min_attempt > deadline - policy.margin:
            raise SlackDeliveryError(_out_of_time(failure, attempt, policy))
        logger.warning("Slack delivery failed, retrying", extra={"attempt": attempt, "failure": failure.reason,
                                                                  "retry_in_s": round(delay, 3)})
        time.sleep(delay)


def default_policy() -> RetryPolicy:
    """The production policy, its backoff scaled by BACKOFF_SCALE_ENV when that is set."""
    policy = RetryPolicy(retries=WEBHOOK_RETRIES, timeout=WEBHOOK_TIMEOUT_SECONDS)
    raw = os.environ.get(BACKOFF_SCALE_ENV, "").strip()
    if not raw:
        return policy
    try:
        scale = float(raw)
    except ValueError:
        scale = math.nan
    if not (math.isfinite(scale) and scale > 0):
        raise SlackConfigError(f"{BACKOFF_SCALE_ENV} must be a positive number, not {raw!r}")
    return replace(policy, base_delay=policy.base_delay * scale, max_delay=policy.max_delay * scale)


def backoff_delay(policy: RetryPolicy, attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt`: Retry-After (capped), else full jitter."""
    if retry_after is not None:
        return min(retry_after, policy.retry_after_max)
    ceiling = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
    return random.uniform(0, ceiling)


def retry_after_seconds(headers: Mapping[str, Any]) -> float | None:
    """The Retry-After header as seconds from now (seconds or an HTTP date); None if absent or unreadable."""
    value = next((str(v) for k, v in headers.items() if k.lower() == "retry-after"), "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer


def _attempt_timeout(policy: RetryPolicy, deadline: float | None) -> float | None:
    """The time the next attempt may take, or None when too little is left to make one."""
    if deadline is None:
        return policy.timeout
    left = deadline - policy.margin - time.monotonic()
    return min(policy.timeout, left) if left >= policy.min_attempt else None


def _out_of_time(failure: _Failure | None, attempt: int, policy: RetryPolicy) -> str:
    if failure is None:
        return f"Slack was not tried: less than {policy.margin + policy.min_attempt:g} s was left to run"
    return f"Slack {failure.reason} (after {_attempts(attempt)}; no time left to retry)"


def _attempts(count: int) -> str:
    return f"{count} attempt{'' if count == 1 else 's'}"


def _post(url: str, payload: dict[str, Any], timeout: float) -> _Failure | None:
    """One POST that takes `timeout` seconds at most; None when Slack took the message.

    The client's timeout bounds each socket wait, not the whole request (a slow
    TLS handshake or a trickled answer is many waits), so the POST runs in a
    thread that is waited for `timeout` seconds; one still running then is left
    to its socket timeout and counted as a timeout.
    """
    outcome: list[_Failure | None] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(_post_once(url, payload, timeout))
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=run, name="slack-webhook", daemon=True)
    worker.start()
    worker.join(timeout)
    if errors:
        raise errors[0]
    if outcome:
        return outcome[0]
    return _Failure(f"could not be reached: no answer within {timeout:.1f} s", retryable=True)


def _post_once(url: str, payload: dict[str, Any], timeout: float) -> _Failure | None:
    from slack_sdk.errors import SlackRequestError
    from slack_sdk.webhook import WebhookClient

    # slack_sdk annotates `timeout` as int; it hands it to urllib, which takes seconds as a float.
    client = WebhookClient(url=url, timeout=timeout, retry_handlers=[], logger=_CLIENT_LOGGER)  # type: ignore[arg-type]
    try:
        response = client.send_dict(payload)
    except SlackRequestError:  # its message holds the URL
        return _Failure("refused the request before sending it", retryable=False)
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, cut-off answers
        return _Failure(f"could not be reached: {_error_name(exc)}", retryable=not _is_certificate_error(exc))
    if response.status_code == 200:
        return None
    body = _redact((response.body or "").strip()[:200], url)
    status = response.status_code
    retry_after = retry_after_seconds(response.headers or {}) if status == 429 else None
    return _Failure(f"answered HTTP {status}: {body or 'no body'}", status in RETRY_STATUSES, retry_after)


def _error_name(exc: BaseException) -> str:
    """The error's type, with the cause urllib wraps (`URLError (ConnectionRefusedError)`); never its text."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return f"{type(exc).__name__} ({type(reason).__name__})"
    return type(exc).__name__


def _is_certificate_error(exc: BaseException) -> bool:
    """A certificate Slack's endpoint cannot show will not be fixed by asking again."""
    return isinstance(exc, ssl.SSLCertVerificationError) or isinstance(
        getattr(exc, "reason", None), ssl.SSLCertVerificationError)


def _redact(text: str, url: str) -> str:
    """`text` without the webhook URL or its path (the path is the secret part)."""
    path = urlsplit(url).path
    text = text.replace(url, "<webhook>")
    return text.replace(path, "<webhook path>") if len(path) > 1 else text
