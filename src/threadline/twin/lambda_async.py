"""Lambda's asynchronous invocation, as EventBridge, SNS and `InvocationType: Event` get it.

AWS queues an async event, runs it, retries a failed run twice (after about one
and then two minutes; `MaximumRetryAttempts` in the function's EventInvokeConfig
changes the count), and then hands the event to the function's on-failure
destination or its dead-letter queue. Nothing is dropped without a trace: an
event that exhausted its retries with neither configured is logged as lost,
exactly as Lambda would lose it. The twin keeps these rules, with the waits
scaled (`retry_delays_s`, set from TwinConfig.async_retry_delays_s).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

logger = logging.getLogger("threadline.twin")

DEFAULT_RETRIES = 2  # Lambda's default MaximumRetryAttempts for async invocations
RETRY_DELAYS_S = (1.0, 2.0)  # AWS waits ~1 min, then ~2 min; the twin 1/60 of that by default
THROTTLE_AGE_S = 6.0  # how long a throttled event keeps coming back (AWS: up to 6 h)


class LambdaThrottled(RuntimeError):
    """Lambda refused the invocation (HTTP 429 TooManyRequestsException); the function did not run."""


@dataclass(frozen=True)
class AsyncConfig:
    """The async part of a function's configuration (DeadLetterConfig, EventInvokeConfig)."""

    maximum_retry_attempts: int = DEFAULT_RETRIES
    on_failure_arn: str | None = None  # EventInvokeConfig DestinationConfig.OnFailure
    dead_letter_arn: str | None = None  # DeadLetterConfig.TargetArn


@dataclass(frozen=True)
class AsyncOutcome:
    function: str
    request_id: str
    attempts: int
    succeeded: bool
    dead_lettered_to: str | None


class SyncInvoker(Protocol):
    def __call__(self, function_name: str, event: Any) -> tuple[str, bool, str]:
        """Run one invocation; (payload JSON, errored, log tail)."""


class AsyncInvoker:
    """Runs async invocations in the background with Lambda's retries and failure targets."""

    def __init__(self, invoke: SyncInvoker, config_of: Callable[[str], AsyncConfig],
                 arn_of: Callable[[str], str], send_message: Callable[[str, str, dict[str, Any]], None],
                 retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S) -> None:
        self._invoke = invoke
        self._config_of = config_of
        self._arn_of = arn_of
        self._send_message = send_message
        self.retry_delays_s = retry_delays_s
        self.throttle_age_s = THROTTLE_AGE_S
        self.outcomes: list[AsyncOutcome] = []
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def submit(self, function_name: str, event: Any) -> str:
        """Queue the event (the caller gets 202 at once, as from Lambda) and return its request id."""
        request_id = str(uuid.uuid4())
        with self._lock:
            self._pending += 1
        threading.Thread(target=self._run, args=(function_name, event, request_id),
                         name=f"lambda-async-{function_name}", daemon=True).start()
        return request_id

    def wait_idle(self, timeout: float) -> bool:
        """True once no async invocation is pending or retrying (tests, a clean stop)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def _run(self, function_name: str, event: Any, request_id: str) -> None:
        try:
            config = self._config_of(function_name)
            attempts, payload, errored = 0, "", True
            for attempt in range(1 + max(0, config.maximum_retry_attempts)):
                if attempt:
                    time.sleep(self.retry_delays_s[min(attempt - 1, len(self.retry_delays_s) - 1)])
                attempts += 1
                payload, errored = self._invoke_past_throttling(function_name, event)
                if not errored:
                    break
            target = None
            if errored:
                target = self._dead_letter(function_name, config, event, request_id, attempts, payload)
            with self._lock:
                self.outcomes.append(AsyncOutcome(function_name, request_id, attempts, not errored, target))
        except Exception:  # a twin bug must not kill the thread silently
            logger.exception("async invocation of %s failed in the twin", function_name)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _invoke_past_throttling(self, function_name: str, event: Any) -> tuple[str, bool]:
        """One attempt. Lambda puts a throttled event back in its queue without spending a retry,
        for up to the event's maximum age (6 h on AWS, `throttle_age_s` here); then it is an error."""
        deadline = time.monotonic() + self.throttle_age_s
        delay = 0.05
        while True:
            try:
                payload, errored, _ = self._invoke(function_name, event)
                return payload, errored
            except LambdaThrottled as exc:
                if time.monotonic() + delay > deadline:
                    return json.dumps({"errorType": "TooManyRequestsException", "errorMessage": str(exc)}), True
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _deliver(self, queue_arn: str, body: str, attributes: dict[str, Any]) -> None:
        """Send to the failure target, trying again while the queue's endpoint is busy: a dead letter is not dropped."""
        for wait in (0.5, 1.0, 2.0, 4.0):
            try:
                self._send_message(queue_arn, body, attributes)
                return
            except Exception:  # the endpoint timed out or refused; the last try raises below
                time.sleep(wait)
        self._send_message(queue_arn, body, attributes)

    def _dead_letter(self, function_name: str, config: AsyncConfig, event: Any, request_id: str,
                     attempts: int, payload: str) -> str | None:
        error = _error_of(payload)
        if config.on_failure_arn:
            record = {
                "version": "1.0",
                "timestamp": _aws_time(),
                "requestContext": {"requestId": request_id, "functionArn": f"{self._arn_of(function_name)}:$LATEST",
                                   "condition": "RetriesExhausted", "approximateInvokeCount": attempts},
                "requestPayload": event,
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                    "functionError": "Unhandled"},
                "responsePayload": error,
            }
            self._deliver(config.on_failure_arn, json.dumps(record), {})
            return config.on_failure_arn
        if config.dead_letter_arn:
            attributes = {
                "RequestID": {"DataType": "String", "StringValue": request_id},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String",
                                 "StringValue": str(error.get("errorMessage") or error.get("errorType"))[:1000]},
            }
            self._deliver(config.dead_letter_arn, json.dumps(event), attributes)
            return config.dead_letter_arn
        logger.error("async event to %s lost after %d attempts: no dead-letter queue or on-failure destination",
                     function_name, attempts)
        return None


def _aws_time() -> str:
    """Now as AWS writes it: UTC, milliseconds, `Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error_of(payload: str) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except (TypeError, ValueError):
        return {"errorMessage": str(payload)[:1000]}
    return value if isinstance(value, dict) else {"errorMessage": str(value)[:1000]}
