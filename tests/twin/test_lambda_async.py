"""AsyncInvoker: Lambda's async retries, throttling and failure targets, against a scripted `invoke`."""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

import pytest

from threadline.twin.lambda_async import AsyncConfig, AsyncInvoker, LambdaThrottled

ARN = "arn:aws:lambda:us-east-1:123456789012:function:notify"
DLQ = "arn:aws:sqs:us-east-1:123456789012:notify-dead"
ON_FAILURE = "arn:aws:sqs:us-east-1:123456789012:notify-failures"
AWS_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
OK = ("ok",)
ERROR = ("error",)
THROTTLE = ("throttle",)


class Function:
    """A fake synchronous invoke that plays `script` (its last step repeats) and records each call."""

    def __init__(self, *script: tuple[str, ...], gate: threading.Event | None = None) -> None:
        self.script = list(script)
        self.gate = gate
        self.calls: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, function_name: str, event: Any) -> tuple[str, bool, str]:
        with self._lock:
            step = self.script[min(len(self.calls), len(self.script) - 1)]
            self.calls.append((function_name, event))
        if self.gate is not None:
            self.gate.wait(10)
        if step == THROTTLE:
            raise LambdaThrottled("Rate exceeded")
        if step == ERROR:
            return json.dumps({"errorType": "ValueError", "errorMessage": "boom"}), True, "log"
        return json.dumps({"ok": True}), False, "log"


def make_invoker(function: Function, config: AsyncConfig = AsyncConfig()) -> tuple[AsyncInvoker, list]:
    sent: list[tuple[str, str, dict[str, Any]]] = []
    invoker = AsyncInvoker(function, lambda name: config, lambda name: ARN,
                           lambda arn, body, attributes: sent.append((arn, body, attributes)),
                           retry_delays_s=(0.01, 0.01))
    invoker.throttle_age_s = 2.0
    return invoker, sent


def run(invoker: AsyncInvoker, event: Any = None) -> str:
    request_id = invoker.submit("notify", {"run_id": "r1"} if event is None else event)
    assert invoker.wait_idle(10)
    return request_id


def test_success_on_first_try_runs_once():
    function = Function(OK)
    invoker, sent = make_invoker(function, AsyncConfig(dead_letter_arn=DLQ))
    request_id = run(invoker)
    assert function.calls == [("notify", {"run_id": "r1"})]
    assert sent == []
    [outcome] = invoker.outcomes
    assert (outcome.request_id, outcome.attempts, outcome.succeeded, outcome.dead_lettered_to) == (
        request_id, 1, True, None)


def test_two_errors_then_success_uses_both_retries():
    function = Function(ERROR, ERROR, OK)
    invoker, sent = make_invoker(function, AsyncConfig(dead_letter_arn=DLQ))
    run(invoker)
    assert len(function.calls) == 3 and sent == []
    [outcome] = invoker.outcomes
    assert outcome.succeeded and outcome.attempts == 3 and outcome.dead_lettered_to is None


def test_always_failing_event_goes_to_the_dead_letter_queue():
    function = Function(ERROR)
    invoker, sent = make_invoker(function, AsyncConfig(dead_letter_arn=DLQ))
    request_id = run(invoker, {"run_id": "r1", "n": 7})
    assert len(function.calls) == 3
    [(arn, body, attributes)] = sent
    assert arn == DLQ and json.loads(body) == {"run_id": "r1", "n": 7}
    assert attributes["RequestID"] == {"DataType": "String", "StringValue": request_id}
    assert attributes["ErrorMessage"] == {"DataType": "String", "StringValue": "boom"}
    assert attributes["ErrorCode"]["StringValue"] == "200"
    [outcome] = invoker.outcomes
    assert not outcome.succeeded and outcome.attempts == 3 and outcome.dead_lettered_to == DLQ


def test_on_failure_destination_gets_an_invocation_record():
    function = Function(ERROR)
    invoker, sent = make_invoker(function, AsyncConfig(on_failure_arn=ON_FAILURE))
    request_id = run(invoker, {"run_id": "r1"})
    [(arn, body, attributes)] = sent
    assert arn == ON_FAILURE and attributes == {}
    record = json.loads(body)
    assert record["requestContext"] == {"requestId": request_id, "functionArn": f"{ARN}:$LATEST",
                                        "condition": "RetriesExhausted", "approximateInvokeCount": 3}
    assert record["requestPayload"] == {"run_id": "r1"}
    assert record["responsePayload"] == {"errorType": "ValueError", "errorMessage": "boom"}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert AWS_TIMESTAMP.fullmatch(record["timestamp"]), record["timestamp"]
    assert invoker.outcomes[0].dead_lettered_to == ON_FAILURE


def test_no_retries_when_maximum_retry_attempts_is_zero():
    function = Function(ERROR)
    invoker, sent = make_invoker(function, AsyncConfig(maximum_retry_attempts=0, dead_letter_arn=DLQ))
    run(invoker)
    assert len(function.calls) == 1 and len(sent) == 1
    assert invoker.outcomes[0].attempts == 1


def test_throttling_does_not_spend_a_retry():
    function = Function(THROTTLE, THROTTLE, OK)
    invoker, sent = make_invoker(function, AsyncConfig(dead_letter_arn=DLQ))
    run(invoker)
    assert len(function.calls) == 3 and sent == []
    [outcome] = invoker.outcomes
    assert outcome.succeeded and outcome.attempts == 1  # three calls, one attempt


def test_throttled_past_the_event_age_is_an_error():
    function = Function(THROTTLE)
    invoker, sent = make_invoker(function, AsyncConfig(maximum_retry_attempts=0, dead_letter_arn=DLQ))
    invoker.throttle_age_s = 0.2
    run(invoker)
    assert len(function.calls) >= 2  # put back in the queue a few times first
    [outcome] = invoker.outcomes
    assert not outcome.succeeded and outcome.attempts == 1 and outcome.dead_lettered_to == DLQ
    [(_, _, attributes)] = sent
    assert attributes["ErrorMessage"]["StringValue"] == "Rate exceeded"


def test_failure_without_dead_letter_queue_or_destination_is_logged_as_lost(caplog: pytest.LogCaptureFixture):
    function = Function(ERROR)
    invoker, sent = make_invoker(function)
    with caplog.at_level(logging.ERROR, logger="threadline.twin"):
        run(invoker)
    assert len(function.calls) == 3 and sent == []
    [outcome] = invoker.outcomes
    assert not outcome.succeeded and outcome.dead_lettered_to is None
    assert any("lost after 3 attempts" in record.getMessage() for record in caplog.records)


def test_wait_idle_waits_for_every_invocation():
    gate = threading.Event()
    function = Function(OK, gate=gate)
    invoker, _ = make_invoker(function)
    invoker.submit("notify", {"n": 1})
    invoker.submit("notify", {"n": 2})
    try:
        assert invoker.wait_idle(0.2) is False  # both calls are blocked in the function
        assert invoker.outcomes == []
    finally:
        gate.set()
    assert invoker.wait_idle(10) is True
    assert len(invoker.outcomes) == 2 and all(outcome.succeeded for outcome in invoker.outcomes)


def test_wait_idle_with_nothing_submitted():
    invoker, _ = make_invoker(Function(OK))
    assert invoker.wait_idle(0) is True
