"""A run's cost in its run record (lineage function) and in the Slack success message (Slack function)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from threadline_common.lineage import parse_lineage_event
from threadline_common.run_cost_record import write_cost
from threadline_common.slack_format import cost_text, notice_message

EVENTS = Path(__file__).resolve().parents[2] / "events"

SMALL = [{"Type": "VCPU", "Value": "2"}, {"Type": "MEMORY", "Value": "7680"}]


def _finished() -> dict[str, Any]:
    """The sample run_finished event, its CPU jobs with the requests DescribeJobs reports, from team `risk`."""
    event = json.loads((EVENTS / "lineage_run_finished.json").read_text())
    for key in ("preprocess_on_demand", "postprocess"):
        event["jobs"][key]["Container"]["ResourceRequirements"] = SMALL
    failure = json.loads(event["failures"]["preprocess"]["Cause"])
    failure.setdefault("Container", {})["ResourceRequirements"] = SMALL
    event["failures"]["preprocess"] = {"Error": "States.TaskFailed", "Cause": json.dumps(failure)}
    event["source"]["team"] = "risk"
    return event


@pytest.fixture
def dynamodb(aws_env: None) -> Any:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="runs", KeySchema=[{"AttributeName": "run_id", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "run_id", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        yield client


def test_write_cost_sets_the_cost_map_on_the_run_record(dynamodb: Any):
    event = parse_lineage_event(_finished())
    dynamodb.put_item(TableName="runs", Item={"run_id": {"S": event.run_id}, "status": {"S": "SUCCEEDED"}})

    written = write_cost(dynamodb, "runs", event)
    item = boto3.resource("dynamodb", region_name="us-east-1").Table("runs").get_item(
        Key={"run_id": event.run_id})["Item"]

    assert item["status"] == "SUCCEEDED"  # the rest of the record stays
    stored = item["cost"]
    assert stored["team"] == "risk" and stored["status"] == "SUCCEEDED" and stored["currency"] == "USD"
    assert float(stored["total"]) == pytest.approx(written["total"]) and written["total"] > 0
    assert float(stored["by_step"]["analysis"]) == pytest.approx(0.9776 * 132 / 3600 * 2, abs=1e-6)
    assert set(stored["by_capacity"]) == {"SPOT", "ON_DEMAND", "GPU"}
    assert stored["spot_savings"] is None and stored["unpriced"] == []


def test_write_cost_creates_no_record_for_an_unknown_run(dynamodb: Any):
    event = parse_lineage_event(_finished())

    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        write_cost(dynamodb, "runs", event)
    assert dynamodb.scan(TableName="runs")["Items"] == []


def test_success_notice_with_jobs_shows_the_compute_cost(notify_slack: Any):
    finished = _finished()
    notice = {"notice": "run_succeeded", "run_id": finished["run_id"], "source": finished["source"],
              "jobs": finished["jobs"], "failures": finished["failures"]}

    [message] = notify_slack.messages_for(notice, "threadline")

    fields = [f["text"] for block in message.blocks if block["type"] == "section" for f in block.get("fields", [])]
    [cost_field] = [text for text in fields if text.startswith("*Compute cost*")]
    assert "analysis $0.071691" in cost_field  # 2 nodes x 132 s of a g6.2xlarge at $0.9776/h
    assert "Spot savings unknown" in cost_field


def test_cost_text_says_savings_and_unpriced_attempts():
    text = cost_text({"total": 0.5, "by_step": {"preprocess": 0.1, "analysis": 0.4}, "spot_savings": 0.25,
                      "unpriced": ["postprocess#1: no resource request in the job description"]})
    assert text == ("$0.500000 (preprocess $0.100000, analysis $0.400000); Spot saved $0.250000; "
                    "1 attempt(s) unpriced")


def test_a_notice_without_jobs_has_no_cost_field():
    message = notice_message({"notice": "run_succeeded", "run_id": "r-1", "source": {}}, "threadline")
    assert "Compute cost" not in json.dumps(message.blocks)


def test_a_run_that_cannot_be_priced_is_still_announced(notify_slack: Any, monkeypatch: pytest.MonkeyPatch):
    from threadline_common import cost

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("price table unreadable")

    monkeypatch.setattr(cost, "run_cost", broken)
    finished = _finished()
    notice = {"notice": "run_succeeded", "run_id": finished["run_id"], "source": finished["source"],
              "jobs": finished["jobs"], "failures": finished["failures"]}

    [message] = notify_slack.messages_for(notice, "threadline")

    assert message.kind == "run_succeeded" and "Compute cost" not in json.dumps(message.blocks)
