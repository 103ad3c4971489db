"""The lineage function as an SQS consumer: batches, partial failures, the graph going away."""

from __future__ import annotations

import json
from typing import Any

import pytest
from threadline_common import aws
from threadline_common.lineage import run_summary
from threadline_common.lineage.consumer import consume, is_sqs_batch
from threadline_common.lineage.neptune import LineageGraphError


def sqs_event(*bodies: Any) -> dict[str, Any]:
    """Lambda's SQS event for these message bodies."""
    return {"Records": [
        {"messageId": f"m{index}", "receiptHandle": f"h{index}",
         "body": body if isinstance(body, str) else json.dumps(body),
         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs",
         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:threadline-LineageQueue", "awsRegion": "us-east-1"}
        for index, body in enumerate(bodies)]}


def test_a_batch_is_written_as_one_combined_plan(neptune_env, runner, record_lineage, sample_event,
                                                 lambda_context) -> None:
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    before = neptune_env.queries_served

    answer = record_lineage.handler(sqs_event(finished, started), lambda_context)

    assert answer == {"batchItemFailures": []}
    summary = run_summary(runner, started["run_id"])
    assert summary.run.status == "SUCCEEDED" and summary.run.started_at == started["at"]
    assert len(summary.attempts) == 6
    # One request for both events' writes (chained) and one for the run's cost, plus the reads above.
    written = neptune_env.queries_served - before - 2
    assert written == 2


def test_malformed_messages_are_dropped_and_the_rest_written(neptune_env, runner, record_lineage,
                                                              sample_event, lambda_context) -> None:
    started = sample_event("lineage_run_started.json")
    messages = sqs_event("not json", {"event": "run_paused", "run_id": "r"}, started)

    answer = record_lineage.handler(messages, lambda_context)

    assert answer == {"batchItemFailures": []}  # a malformed event would fail the same way forever
    assert run_summary(runner, started["run_id"]).run.status == "RUNNING"


def test_graph_down_fails_every_message_of_the_batch_for_a_later_delivery(
        neptune_env, runner, record_lineage, sample_event, lambda_context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    aws.client.cache_clear()
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    neptune_env.set_down(True)

    answer = record_lineage.handler(sqs_event(started, finished), lambda_context)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    neptune_env.set_down(False)
    assert record_lineage.handler(sqs_event(started, finished), lambda_context) == {"batchItemFailures": []}
    assert run_summary(runner, started["run_id"]).run.status == "SUCCEEDED"


class RefusesOneRun:
    """A graph that refuses every write carrying one run id (a poison event), as Neptune refuses a bad query."""

    def __init__(self, inner: Any, poisoned: str) -> None:
        self.inner, self.poisoned = inner, poisoned
        self.calls = 0

    def run(self, query: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.calls += 1
        if self.poisoned in json.dumps(parameters or {}):
            raise LineageGraphError("MalformedQueryException: refused", code="MalformedQueryException")
        return self.inner.run(query, parameters)


def test_an_event_the_graph_refuses_is_isolated_and_only_it_is_retried(runner, sample_event) -> None:
    good = sample_event("lineage_run_started.json")
    bad = {**good, "run_id": "poisoned-run"}
    graph = RefusesOneRun(runner, "poisoned-run")

    outcome = consume(sqs_event(good, bad)["Records"], graph, "threadline")

    assert outcome.failed == ["m1"] and outcome.recorded == ["m0"]
    assert run_summary(runner, good["run_id"]) is not None


class Unreachable:
    def __init__(self) -> None:
        self.calls = 0

    def run(self, query: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.calls += 1
        raise LineageGraphError("EndpointConnectionError", code="EndpointConnectionError", unavailable=True)


def test_an_unreachable_graph_is_tried_once_per_batch_not_once_per_event(sample_event) -> None:
    events = [sample_event("lineage_run_started.json") | {"run_id": f"r{i}"} for i in range(5)]
    graph = Unreachable()

    outcome = consume(sqs_event(*events)["Records"], graph, "threadline")

    assert outcome.failed == [f"m{i}" for i in range(5)] and graph.calls == 1


def test_only_sqs_batches_take_the_batch_path(sample_event) -> None:
    assert is_sqs_batch(sqs_event(sample_event("lineage_run_started.json")))
    assert not is_sqs_batch(sample_event("lineage_run_started.json"))
    assert not is_sqs_batch({"Records": [{"EventSource": "aws:sns"}]})
