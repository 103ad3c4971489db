"""Delivers Slack messages: the incoming webhook from Secrets Manager, or the local outbox.

The secret is JSON `{"webhook_url": "https://hooks.slack.com/..."}`. An empty
URL means "no Slack": with SLACK_OUTBOX_DIR set (the twin) each message is
written there as one JSON file, otherwise a warning is logged. The URL is a
credential: it is never logged, and never part of an error message.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aws_lambda_powertools import Logger
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from . import aws
from .slack_format import SlackMessage

logger = Logger(child=True)

# slack_sdk logs request URLs at DEBUG; the webhook URL must not reach the logs.
logging.getLogger("slack_sdk").setLevel(logging.INFO)

SECRET_CACHE_SECONDS = 300.0
WEBHOOK_TIMEOUT_SECONDS = 10
WEBHOOK_RETRIES = 2

SENT, OUTBOX, NOT_CONFIGURED = "sent", "outbox", "not_configured"


class SlackDeliveryError(RuntimeError):
    """Slack refused or could not take a message (the state machine sees this name as the error)."""


class SlackConfigError(SlackDeliveryError):
    """The webhook secret cannot be read or is not `{"webhook_url": ...}`."""


@dataclass(frozen=True)
class Delivery:
    status: str  # sent, outbox or not_configured
    path: str | None = None  # the outbox file


_secret_cache: dict[str, tuple[float, str]] = {}


def webhook_url(secret_arn: str | None) -> str:
    """The webhook URL in the secret ("" when no secret is named or its URL is empty); cached for 5 minutes."""
    if not secret_arn:
        return ""
    cached = _secret_cache.get(secret_arn)
    if cached and time.monotonic() - cached[0] < SECRET_CACHE_SECONDS:
        return cached[1]
    secret = aws.client("secretsmanager").get_secret_value(SecretId=secret_arn)
    try:
        value = json.loads(secret.get("SecretString") or "{}")
    except json.JSONDecodeError as exc:
        raise SlackConfigError('the Slack webhook secret is not JSON {"webhook_url": ...}') from exc
    url = value.get("webhook_url") if isinstance(value, dict) else None
    if url is not None and not isinstance(url, str):
        raise SlackConfigError("the Slack webhook secret's webhook_url is not a string")
    url = (url or "").strip()
    _secret_cache[secret_arn] = (time.monotonic(), url)
    return url


def clear_cache() -> None:
    _secret_cache.clear()


def deliver(message: SlackMessage, url: str, outbox_dir: str | None = None) -> Delivery:
    """Send to the webhook; with no URL, write to the outbox or log that Slack is not configured."""
    if url:
        send_webhook(url, message)
        return Delivery(SENT)
    if outbox_dir:
        return Delivery(OUTBOX, str(write_outbox(Path(outbox_dir), message)))
    logger.warning("Slack webhook not configured: message not sent", extra={"kind": message.kind, "text": message.text})
    return Delivery(NOT_CONFIGURED)


def send_webhook(url: str, message: SlackMessage) -> None:
    """POST the message, retrying connection errors, 429 and 5xx; raise SlackDeliveryError if Slack refuses it."""
    client = WebhookClient(
        url=url,
        timeout=WEBHOOK_TIMEOUT_SECONDS,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=WEBHOOK_RETRIES),
            RateLimitErrorRetryHandler(max_retry_count=WEBHOOK_RETRIES),
            ServerErrorRetryHandler(max_retry_count=WEBHOOK_RETRIES),
        ],
    )
    try:
        response = client.send_dict(message.payload())
    except OSError as exc:  # urllib's URLError and socket errors, after the retries
        raise SlackDeliveryError(f"Slack could not be reached: {type(exc).__name__}") from None
    if response.status_code != 200:
        body = (response.body or "").strip()[:200]
        raise SlackDeliveryError(f"Slack answered HTTP {response.status_code}: {body or 'no body'}")


def write_outbox(outbox_dir: Path, message: SlackMessage) -> Path:
    """One JSON file per message, named so that names sort by time; written to a temp file, then renamed."""
    outbox_dir.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{message.kind}-{uuid.uuid4().hex[:8]}.json"
    document = {"kind": message.kind, "run_id": message.run_id, **message.payload()}
    fd, temp_path = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=outbox_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1, ensure_ascii=False)
        final = outbox_dir / name
        os.replace(temp_path, final)
    except BaseException:
        Path(temp_path).unlink(missing_ok=True)
        raise
    return final
