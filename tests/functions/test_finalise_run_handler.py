"""finalise_run: an execution that ended FAILED / TIMED_OUT / ABORTED (EventBridge) -> the run closed once."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

APP = Path(__file__).resolve().parents[2] / "functions" / "finalise_run" / "app.py"
TABLE = "threadline-runs"
SLACK_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:threadline-notify-slack"
STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:threadline-pipeline"
RUN_ID = "positions-0123456789abcdef"
ARN = f"arn:aws:states:us-east-1:123456789012:execution:threadline-pipeline:{RUN_ID}"
SOURCE = {
    "bucket": "threadline-incoming-123456789012",
    "key": "incoming/positions.csv",
    "version_id": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
    "etag": "5d41402abc4b2a76b9719d911017c592",
    "size": 1843,
    "uri": "s3://threadline-incoming-123456789012/incoming/positions.csv",
}
START_MS = 1796025600000  # 2026-11-30T08:00:00Z
STOP_MS = 1796032800123  # 2026-11-30T10:00:00.123Z
ISO_MILLIS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def status_change(status: str, *, error: str | None = None, cause: str | None = None,
                  run_id: str = RUN_ID, stop_ms: int | None = STOP_MS) -> dict[str, Any]:
    """A "Step Functions Execution Status Change" event as EventBridge delivers it."""
    arn = f"arn:aws:states:us-east-1:123456789012:execution:threadline-pipeline:{run_id}"
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-30T10:00:00Z",
        "region": "us-east-1",
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": STATE_MACHINE,
            "name": run_id,
            "status": status,
            "startDate": START_MS,
            "stopDate": stop_ms,
            "input": json.dumps({"run_id": run_id, "source": SOURCE, "received_at": "2026-11-30T08:00:00.000Z"}),
            "inputDetails": {"included": True},
            "output": None,
            "outputDetails": None,
            "error": error,
            "cause": cause,
        },
    }


@dataclass
class FakeLambda:
    """Stands in for the boto3 Lambda client: records each invoke; can fail the next ones."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("Lambda is unavailable")
        self.calls.append(kwargs)
        return {"StatusCode": 202}

    def notices(self) -> list[dict[str, Any]]:
        return [json.loads(call["Payload"]) for call in self.calls]


@dataclass
class Cloud:
    module: ModuleType
    dynamodb: Any
    sqs: Any
    queue_url: str
    slack: FakeLambda

    def record(self, run_id: str = RUN_ID) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=TABLE, Key={"run_id": {"S": run_id}}, ConsistentRead=True)
        return item.get("Item")

    def put_record(self, **attributes: str) -> None:
        item = {"run_id": {"S": RUN_ID}} | {name: {"S": value} for name, value in attributes.items()}
        self.dynamodb.put_item(TableName=TABLE, Item=item)

    def lineage(self) -> list[dict[str, Any]]:
        """Every message on the lineage queue (each left visible again for the next call)."""
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(5):
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                             VisibilityTimeout=0).get("Messages", [])
            for message in batch:
                seen[message["MessageId"]] = json.loads(message["Body"])
            if not batch:
                break
        return list(seen.values())


@pytest.fixture
def finalise_run() -> ModuleType:
    """functions/finalise_run/app.py under its own module name, loaded afresh for each test."""
    name = "threadline_function_finalise_run"
    spec = importlib.util.spec_from_file_location(name, APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cloud(aws_env: None, finalise_run: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """moto DynamoDB and SQS behind the module's client factory; the Slack function's invoke is recorded."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "run_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "run_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName="threadline-lineage")["QueueUrl"]
        slack = FakeLambda()
        clients = {"dynamodb": dynamodb, "sqs": sqs, "lambda": slack}

        def client(service_name: str, endpoint_url: str | None = None) -> Any:
            return clients[service_name]

        monkeypatch.setattr(finalise_run, "aws", SimpleNamespace(client=client))
        monkeypatch.setenv("RUN_TABLE", TABLE)
        monkeypatch.setenv("LINEAGE_QUEUE_URL", queue_url)
        monkeypatch.setenv("NOTIFY_SLACK_FUNCTION", SLACK_FUNCTION)
        yield Cloud(finalise_run, dynamodb, sqs, queue_url, slack)


def test_aborted_running_run_is_closed_with_one_lineage_event_and_one_slack_notice(cloud: Cloud,
                                                                                  lambda_context: Any) -> None:
    cloud.put_record(status="RUNNING", input_uri=SOURCE["uri"], execution_arn=ARN,
                     started_at="2026-11-30T08:00:00.000Z")

    result = cloud.module.handler(status_change("ABORTED"), lambda_context)

    assert result == {"status": "closed", "run_id": RUN_ID, "run_status": "ABORTED", "sent": ["lineage", "slack"]}
    record = cloud.record()
    assert record is not None
    assert record["status"] == {"S": "ABORTED"}
    assert record["error_name"] == {"S": "ExecutionAborted"}
    assert record["error_cause"]["S"] == cloud.module.DEFAULT_ERRORS["ABORTED"][1]
    assert record["closed_by"] == {"S": "finaliser"}
    assert record["ended_at"] == {"S": "2026-11-30T10:00:00.123Z"}
    assert record["execution_arn"] == {"S": ARN}
    assert "pending" not in record
    # What the state machine wrote stays.
    assert record["input_uri"] == {"S": SOURCE["uri"]}
    assert record["started_at"] == {"S": "2026-11-30T08:00:00.000Z"}

    [event] = cloud.lineage()
    assert event["event"] == "run_finished"
    assert event["status"] == "ABORTED"
    assert event["run_id"] == RUN_ID
    assert event["execution_arn"] == ARN
    assert event["at"] == "2026-11-30T10:00:00.123Z"
    assert event["error"] == {"Error": "ExecutionAborted", "Cause": cloud.module.DEFAULT_ERRORS["ABORTED"][1]}
    assert event["source"] == SOURCE

    [call] = cloud.slack.calls
    assert call["FunctionName"] == SLACK_FUNCTION
    assert call["InvocationType"] == "Event"
    assert isinstance(call["Payload"], bytes)
    notice = json.loads(call["Payload"])
    assert notice["notice"] == "run_failed"
    assert notice["run_id"] == RUN_ID
    assert notice["execution_arn"] == ARN
    assert notice["status"] == "ABORTED"
    assert notice["error"] == {"Error": "ExecutionAborted", "Cause": cloud.module.DEFAULT_ERRORS["ABORTED"][1]}
    assert notice["source"] == SOURCE


def test_the_slack_notice_is_one_the_slack_function_formats_as_a_failure(
    cloud: Cloud, notify_slack: ModuleType, lambda_context: Any
) -> None:
    cloud.put_record(status="RUNNING")
    cloud.module.handler(status_change("FAILED", error="States.DataLimitExceeded", cause="too big"), lambda_context)

    [message] = notify_slack.messages_for(cloud.slack.notices()[0], "threadline")

    assert message.kind == "run_failed"
    assert message.run_id == RUN_ID
    assert "States.DataLimitExceeded" in message.text


def test_a_second_delivery_of_the_same_event_sends_nothing_again(cloud: Cloud, lambda_context: Any) -> None:
    cloud.put_record(status="RUNNING")
    event = status_change("ABORTED")

    first = cloud.module.handler(copy.deepcopy(event), lambda_context)
    closed = cloud.record()
    second = cloud.module.handler(copy.deepcopy(event), lambda_context)

    assert first["sent"] == ["lineage", "slack"]
    # The claim is already the finaliser's and nothing is pending: closed, sending nothing.
    assert second == {"status": "closed", "run_id": RUN_ID, "run_status": "ABORTED", "sent": []}
    assert cloud.record() == closed
    assert len(cloud.lineage()) == 1
    assert len(cloud.slack.calls) == 1


def test_a_run_the_state_machine_closed_is_left_alone(cloud: Cloud, lambda_context: Any) -> None:
    cloud.put_record(status="FAILED", error_name="PreprocessFailed", error_cause="the job failed",
                     ended_at="2026-11-30T09:59:59.000Z")
    before = cloud.record()

    result = cloud.module.handler(status_change("FAILED", error="PreprocessFailed", cause="the job failed"),
                                  lambda_context)

    assert result == {"status": "already_closed", "run_id": RUN_ID}
    assert cloud.record() == before
    assert cloud.lineage() == []
    assert cloud.slack.calls == []


def test_a_run_post_processing_marked_succeeded_is_claimed_when_the_execution_failed(cloud: Cloud,
                                                                                    lambda_context: Any) -> None:
    cloud.put_record(status="SUCCEEDED", ended_at="2026-11-30T09:58:00.000Z")
    cause = "An error occurred while executing the state 'RecordRunSucceeded'. The JSONPath '$.plan' could not be found"

    result = cloud.module.handler(status_change("FAILED", error="States.Runtime", cause=cause), lambda_context)

    assert result["status"] == "closed" and result["run_status"] == "FAILED"
    record = cloud.record()
    assert record is not None
    assert record["status"] == {"S": "FAILED"}
    assert record["error_name"] == {"S": "States.Runtime"}
    assert record["error_cause"] == {"S": cause}
    assert record["closed_by"] == {"S": "finaliser"}
    assert record["ended_at"] == {"S": "2026-11-30T10:00:00.123Z"}
    [event] = cloud.lineage()
    assert event["status"] == "FAILED"
    assert event["error"] == {"Error": "States.Runtime", "Cause": cause}
    assert cloud.slack.notices()[0]["error"] == {"Error": "States.Runtime", "Cause": cause}


def test_a_run_without_a_record_gets_one(cloud: Cloud, lambda_context: Any) -> None:
    assert cloud.record() is None

    result = cloud.module.handler(status_change("FAILED", error="States.Runtime", cause="died early"), lambda_context)

    assert result["status"] == "closed"
    record = cloud.record()
    assert record is not None
    assert record["run_id"] == {"S": RUN_ID}
    assert record["status"] == {"S": "FAILED"}
    assert record["error_name"] == {"S": "States.Runtime"}
    assert record["error_cause"] == {"S": "died early"}
    assert record["execution_arn"] == {"S": ARN}
    assert record["closed_by"] == {"S": "finaliser"}
    assert "pending" not in record
    assert len(cloud.lineage()) == 1
    assert len(cloud.slack.calls) == 1


def test_a_failed_slack_invoke_is_retried_alone_on_the_next_delivery(cloud: Cloud, lambda_context: Any) -> None:
    cloud.put_record(status="RUNNING")
    event = status_change("TIMED_OUT")
    cloud.slack.failures = 1

    with pytest.raises(RuntimeError, match="Lambda is unavailable"):
        cloud.module.handler(copy.deepcopy(event), lambda_context)

    record = cloud.record()
    assert record is not None
    assert record["status"] == {"S": "TIMED_OUT"}
    assert record["closed_by"] == {"S": "finaliser"}
    assert set(record["pending"]["SS"]) == {"slack"}
    assert len(cloud.lineage()) == 1
    assert cloud.slack.calls == []

    result = cloud.module.handler(copy.deepcopy(event), lambda_context)

    assert result == {"status": "closed", "run_id": RUN_ID, "run_status": "TIMED_OUT", "sent": ["slack"]}
    assert len(cloud.lineage()) == 1
    [notice] = cloud.slack.notices()
    assert notice["status"] == "TIMED_OUT" and notice["error"]["Error"] == "States.Timeout"
    record = cloud.record()
    assert record is not None and "pending" not in record


def test_timed_out_without_error_or_cause_gets_the_defaults(cloud: Cloud, lambda_context: Any) -> None:
    cloud.put_record(status="RUNNING")

    cloud.module.handler(status_change("TIMED_OUT"), lambda_context)

    record = cloud.record()
    assert record is not None
    assert record["status"] == {"S": "TIMED_OUT"}
    assert record["error_name"] == {"S": "States.Timeout"}
    assert "TimeoutSeconds" in record["error_cause"]["S"]
    [event] = cloud.lineage()
    assert event["error"]["Error"] == "States.Timeout"
    assert event["error"]["Cause"] == record["error_cause"]["S"]


def test_a_long_cause_is_clipped_to_4000_characters(cloud: Cloud, lambda_context: Any) -> None:
    cloud.put_record(status="RUNNING")
    cause = "x" * 10_000

    cloud.module.handler(status_change("FAILED", error="States.DataLimitExceeded", cause=cause), lambda_context)

    record = cloud.record()
    assert record is not None
    kept = record["error_cause"]["S"]
    assert len(kept) == 4000
    assert kept == "x" * 3999 + "…"
    [event] = cloud.lineage()
    assert event["error"]["Cause"] == kept
    assert cloud.slack.notices()[0]["error"]["Cause"] == kept


def test_a_cause_of_exactly_4000_characters_is_kept_whole(cloud: Cloud, lambda_context: Any) -> None:
    cloud.put_record(status="RUNNING")

    cloud.module.handler(status_change("FAILED", error="States.Runtime", cause="y" * 4000), lambda_context)

    record = cloud.record()
    assert record is not None and record["error_cause"] == {"S": "y" * 4000}


def _without(key: str) -> dict[str, Any]:
    event = status_change("FAILED")
    del event["detail"][key]
    return event


def _changed(**detail: Any) -> dict[str, Any]:
    event = status_change("FAILED")
    event["detail"].update(detail)
    return event


def _envelope(**changes: Any) -> dict[str, Any]:
    event = status_change("FAILED")
    event.update(changes)
    return event


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (["not", "an", "object"], "the event is a list, not an object"),
        ("text", "the event is a str, not an object"),
        (_envelope(source="aws.s3"), "'aws.s3'"),
        (_envelope(**{"detail-type": "Object Created"}), "'Object Created'"),
        ({"version": "0", "id": "x"}, "the event has no"),
        (_envelope(detail="not a dict"), "is not aws.states"),
        (_changed(status="RUNNING"), "status 'RUNNING' does not end a run"),
        (_changed(status="SUCCEEDED"), "status 'SUCCEEDED' does not end a run"),
        (_changed(status="PENDING_REDRIVE"), "does not end a run"),
        (_without("executionArn"), "names no executionArn and name"),
        (_changed(name=""), "names no executionArn and name"),
    ],
)
def test_events_that_are_not_an_execution_end_are_skipped(cloud: Cloud, event: Any, reason: str,
                                                          lambda_context: Any) -> None:
    result = cloud.module.handler(event, lambda_context)

    assert result["status"] == "skipped"
    assert reason in result["reason"]
    assert cloud.dynamodb.scan(TableName=TABLE)["Items"] == []
    assert cloud.lineage() == []
    assert cloud.slack.calls == []


def test_stop_date_becomes_ended_at_in_iso_with_milliseconds(cloud: Cloud, lambda_context: Any) -> None:
    cloud.put_record(status="RUNNING")

    cloud.module.handler(status_change("ABORTED", stop_ms=1796032800007), lambda_context)

    record = cloud.record()
    assert record is not None
    ended_at = record["ended_at"]["S"]
    assert re.fullmatch(ISO_MILLIS, ended_at)
    assert ended_at == "2026-11-30T10:00:00.007Z"
    assert cloud.lineage()[0]["at"] == ended_at


def test_a_missing_stop_date_uses_the_current_time(cloud: Cloud, lambda_context: Any) -> None:
    cloud.put_record(status="RUNNING")

    cloud.module.handler(status_change("ABORTED", stop_ms=None), lambda_context)

    record = cloud.record()
    assert record is not None
    assert re.fullmatch(ISO_MILLIS, record["ended_at"]["S"])


def test_without_input_the_run_id_is_the_execution_name(cloud: Cloud, lambda_context: Any) -> None:
    """Past 256 KiB EventBridge leaves the input out (inputDetails.included = false)."""
    event = status_change("ABORTED", run_id="other-fedcba9876543210")
    event["detail"]["input"] = None
    event["detail"]["inputDetails"] = {"included": False}

    result = cloud.module.handler(event, lambda_context)

    assert result["run_id"] == "other-fedcba9876543210"
    record = cloud.record("other-fedcba9876543210")
    assert record is not None and record["status"] == {"S": "ABORTED"}
    [event_sent] = cloud.lineage()
    assert "source" not in event_sent
    assert "source" not in cloud.slack.notices()[0]


def test_the_sample_event_closes_its_run(cloud: Cloud, sample_event: Any, lambda_context: Any) -> None:
    """events/execution_aborted.json, as `sam local invoke -e` would pass it."""
    event = sample_event("execution_aborted.json")
    run_id = event["detail"]["name"]

    result = cloud.module.handler(event, lambda_context)

    assert result == {"status": "closed", "run_id": run_id, "run_status": "ABORTED", "sent": ["lineage", "slack"]}
    [message] = cloud.lineage()
    assert message["source"]["key"] == "incoming/sample-positions.csv"
    assert message["at"] == "2026-11-21T19:52:31.456Z"
