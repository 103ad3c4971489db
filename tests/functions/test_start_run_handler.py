"""start_run: S3 Object Created (EventBridge) -> one StartExecution per object version."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from threadline_common.naming import run_id_for

ROLE = "arn:aws:iam::123456789012:role/threadline-pipeline"
DEFINITION = json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}})


@pytest.fixture
def sfn(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    with mock_aws():
        client = boto3.client("stepfunctions")
        arn = client.create_state_machine(name="threadline-pipeline", definition=DEFINITION, roleArn=ROLE)[
            "stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", arn)
        monkeypatch.setenv("INCOMING_PREFIX", "incoming/")
        monkeypatch.setenv("MAX_INPUT_BYTES", "1048576")
        client.state_machine_arn = arn
        yield client


def executions(sfn: Any) -> list[dict[str, Any]]:
    return sfn.list_executions(stateMachineArn=sfn.state_machine_arn)["executions"]


def with_object(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["detail"]["object"].update(changes)
    return event


def test_valid_event_starts_one_execution_named_after_the_object_version(
    sfn: Any, start_run: Any, sample_event: Any, lambda_context: Any
) -> None:
    event = sample_event("s3_object_created.json")
    obj = event["detail"]["object"]
    bucket = event["detail"]["bucket"]["name"]
    expected_run_id = run_id_for(bucket, obj["key"], obj["version-id"], obj["etag"])

    result = start_run.handler(event, lambda_context)

    assert result["status"] == "started"
    assert result["run_id"] == expected_run_id
    assert re.fullmatch(r"sample-positions-[0-9a-f]{16}", expected_run_id)
    [execution] = executions(sfn)
    assert execution["name"] == expected_run_id
    assert result["execution_arn"] == execution["executionArn"]
    payload = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert payload["run_id"] == expected_run_id
    assert payload["source"] == {
        "bucket": bucket,
        "key": "incoming/sample-positions.csv",
        "version_id": obj["version-id"],
        "etag": obj["etag"],
        "size": obj["size"],
        "uri": f"s3://{bucket}/incoming/sample-positions.csv",
        "team": "shared",  # the key names no team folder: the default team
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", payload["received_at"])
    assert set(payload) == {"run_id", "source", "received_at"}


def test_duplicate_event_is_reported_and_starts_nothing_more(sfn: Any, start_run: Any, sample_event: Any,
                                                             lambda_context: Any) -> None:
    first = start_run.handler(sample_event("s3_object_created.json"), lambda_context)
    second = start_run.handler(sample_event("s3_object_created_duplicate.json"), lambda_context)

    assert first["status"] == "started"
    assert second == {"status": "duplicate", "run_id": first["run_id"], "uri": first["uri"]}
    assert len(executions(sfn)) == 1


def test_new_version_of_the_same_key_is_a_new_run(sfn: Any, start_run: Any, sample_event: Any,
                                                  lambda_context: Any) -> None:
    event = sample_event("s3_object_created.json")
    first = start_run.handler(event, lambda_context)
    second = start_run.handler(with_object(event, **{"version-id": "a-newer-version"}), lambda_context)

    assert second["status"] == "started"
    assert second["run_id"] != first["run_id"]
    assert len(executions(sfn)) == 2


@pytest.mark.parametrize(
    ("key", "team"),
    [
        ("incoming/risk/positions.csv", "risk"),  # the first folder under the prefix names the team
        ("incoming/research/2026/11/positions.csv", "research"),
        ("incoming/positions.csv", "triage"),  # no folder: the default team
        ("incoming/marketing/positions.csv", "triage"),  # a folder that is no team: the default too
    ],
)
def test_the_run_is_the_team_its_upload_folder_names(sfn: Any, start_run: Any, sample_event: Any,
                                                     lambda_context: Any, monkeypatch: pytest.MonkeyPatch,
                                                     key: str, team: str) -> None:
    monkeypatch.setenv("TEAMS", "risk, research,shared")
    monkeypatch.setenv("DEFAULT_TEAM", "triage")

    result = start_run.handler(with_object(sample_event("s3_object_created.json"), key=key), lambda_context)

    payload = json.loads(sfn.describe_execution(executionArn=result["execution_arn"])["input"])
    assert payload["source"]["team"] == team


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"key": "outgoing/sample-positions.csv"}, "outside the incoming prefix"),
        ({"key": "incoming/sample-positions.txt"}, "does not end with .csv or .csv.gz"),
        ({"key": "incoming/sample-positions.CSV"}, "does not end with .csv or .csv.gz"),
        ({"size": 0}, "is empty"),
        ({"size": 1048577}, "more than the limit of 1048576"),
        ({"version-id": None, "etag": None}, "needs a version id or an ETag"),
    ],
)
def test_objects_that_cannot_start_a_run_are_skipped_with_a_reason(
    sfn: Any, start_run: Any, sample_event: Any, changes: dict[str, Any], reason: str, lambda_context: Any
) -> None:
    result = start_run.handler(with_object(sample_event("s3_object_created.json"), **changes), lambda_context)

    assert result["status"] == "skipped"
    assert reason in result["reason"]
    assert executions(sfn) == []


def test_gzipped_csv_at_the_size_limit_starts_a_run(sfn: Any, start_run: Any, sample_event: Any,
                                                    lambda_context: Any) -> None:
    event = with_object(sample_event("s3_object_created.json"), key="incoming/2026/positions.csv.gz", size=1048576)

    result = start_run.handler(event, lambda_context)

    assert result["status"] == "started"
    assert result["run_id"].startswith("positions-")


@pytest.mark.parametrize(
    "bad_event",
    [
        {},
        "not an event",
        None,
        {"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}},
        {"source": "aws.s3", "detail-type": "Object Created"},
        {"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": "b"}}},
        {"source": "aws.s3", "detail-type": "Object Created",
         "detail": {"bucket": {"name": "b"}, "object": {"key": "incoming/a.csv", "size": "12"}}},
    ],
)
def test_malformed_events_are_skipped_not_raised(sfn: Any, start_run: Any, bad_event: Any, lambda_context: Any) -> None:
    result = start_run.handler(bad_event, lambda_context)

    assert result["status"] == "skipped"
    assert result["reason"]
    assert executions(sfn) == []


def test_url_encoded_key_is_resolved_to_the_stored_object(sfn: Any, start_run: Any, sample_event: Any,
                                                           lambda_context: Any) -> None:
    s3 = boto3.client("s3")
    bucket = "threadline-incoming-123456789012"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put = s3.put_object(Bucket=bucket, Key="incoming/my positions.csv", Body=b"a,b\n1,2\n")
    event = sample_event("s3_object_created.json")
    event["detail"]["bucket"]["name"] = bucket
    event = with_object(event, key="incoming/my+positions.csv", **{"version-id": put["VersionId"]})

    result = start_run.handler(event, lambda_context)

    assert result["status"] == "started"
    [execution] = executions(sfn)
    payload = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert payload["source"]["key"] == "incoming/my positions.csv"
    assert result["run_id"].startswith("my-positions-")


def test_other_aws_errors_raise_so_eventbridge_retries(sfn: Any, start_run: Any, sample_event: Any,
                                                      monkeypatch: pytest.MonkeyPatch, lambda_context: Any) -> None:
    monkeypatch.setenv("STATE_MACHINE_ARN", sfn.state_machine_arn.replace("threadline-pipeline", "missing"))

    with pytest.raises(ClientError) as raised:
        start_run.handler(sample_event("s3_object_created.json"), lambda_context)

    assert raised.value.response["Error"]["Code"] == "StateMachineDoesNotExist"
