"""The template's lineage plumbing: queue, dead letters, event source, alarm, and exactly the permissions used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    template, problems = decode(str(REPO / "template.yaml"))
    assert not problems and template is not None
    return json.loads(json.dumps(template))["Resources"]


def _statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement, those of a conditional policy (`Fn::If` [condition, policy, AWS::NoValue]) included."""
    policies = [p["Fn::If"][1] if "Fn::If" in p else p for p in resource["Properties"]["Policies"]]
    return [s for policy in policies for s in policy["Statement"]]


def _grants(resource: dict[str, Any]) -> dict[str, list[Any]]:
    grants: dict[str, list[Any]] = {}
    for statement in _statements(resource):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            grants.setdefault(action, []).extend(targets)
    return grants


def test_lineage_queue_is_encrypted_and_dead_letters_after_five_receives(resources) -> None:
    queue = resources["LineageQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["LineageDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": 5}
    # Lambda's advice for SQS sources: visibility at least six times the function's timeout.
    assert int(queue["VisibilityTimeout"]) >= 6 * 30
    assert resources["LineageDeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    assert int(resources["LineageDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"]) == 14 * 24 * 3600


def test_the_function_consumes_the_queue_with_partial_batch_failures(resources) -> None:
    mapping = resources["RecordLineageEvents"]
    assert mapping["Type"] == "AWS::Lambda::EventSourceMapping"
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["LineageQueue", "Arn"]}
    assert props["FunctionName"] == {"Ref": "RecordLineageFunction"}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= int(props["BatchSize"]) <= 10
    assert "Events" not in resources["RecordLineageFunction"]["Properties"]  # no SAM-managed poller policy


def test_the_dead_letter_alarm_goes_to_the_alarm_topic(resources) -> None:
    alarm = resources["LineageDeadLettersAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    queue_name = {"Fn::GetAtt": ["LineageDeadLetterQueue", "QueueName"]}
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": queue_name}]
    assert float(alarm["Threshold"]) == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_lineage_function_is_granted_exactly_what_it_uses(resources) -> None:
    grants = _grants(resources["RecordLineageFunction"])
    assert set(grants) == {
        "neptune-db:connect", "neptune-db:ReadDataViaQuery", "neptune-db:WriteDataViaQuery",
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
        "s3:ListBucket", "s3:GetObject", "kms:Decrypt", "secretsmanager:GetSecretValue",
        "dynamodb:UpdateItem", "s3:PutObject", "kms:GenerateDataKey", "ec2:DescribeSpotPriceHistory",
    }
    # A finished run's cost goes into its run record: that table only.
    assert grants["dynamodb:UpdateItem"] == [{"Fn::GetAtt": ["RunTable", "Arn"]}]
    # The OpenLineage endpoint's API key: its own secret only, and only when an endpoint is set.
    assert grants["secretsmanager:GetSecretValue"] == [{"Ref": "OpenLineageApiKeySecret"}]
    assert resources["OpenLineageApiKeySecret"]["Condition"] == "SendOpenLineage"
    assert resources["RecordLineageFunction"]["Properties"]["Policies"][0]["Fn::If"][0] == "SendOpenLineage"
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        assert grants[action] == [{"Fn::GetAtt": ["LineageQueue", "Arn"]}]
    report = {"Fn::Sub": "${ResultsBucket.Arn}/*/report.html"}
    assert sorted(str(r) for r in grants["s3:GetObject"]) == sorted(str(r) for r in (
        {"Fn::Sub": "${IntermediateBucket.Arn}/runs/*/preprocess/validation.json"},
        {"Fn::Sub": "${IntermediateBucket.Arn}/runs/*/usage/*"}, report))
    # The cost goes into a succeeded run's report: the results bucket's report.html objects only.
    assert grants["s3:PutObject"] == [report]
    assert grants["kms:GenerateDataKey"] == [{"Fn::GetAtt": ["DataKey", "Arn"]}]
    assert sorted(str(r) for r in grants["s3:ListBucket"]) == sorted(
        str({"Fn::GetAtt": [b, "Arn"]}) for b in ("IntermediateBucket", "ResultsBucket"))


def test_the_state_machine_sends_lineage_to_the_queue_only(resources) -> None:
    grants = _grants(resources["PipelineStateMachine"])
    assert grants["sqs:SendMessage"] == [{"Fn::GetAtt": ["LineageQueue", "Arn"]}]
    assert not any("RecordLineageFunction" in str(r) for r in grants["lambda:InvokeFunction"])
    asl = json.loads((REPO / "statemachines" / "pipeline.asl.json").read_text())
    lineage_states = [name for name, state in asl["States"].items() if name.startswith("Record")]
    assert sorted(lineage_states) == ["RecordRunFailed", "RecordRunStart", "RecordRunSucceeded"]
    for name in lineage_states:
        state = asl["States"][name]
        assert state["Resource"] == "arn:aws:states:::sqs:sendMessage"
        assert state["Parameters"]["QueueUrl"] == "${LineageQueueUrl}"
        assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"]  # lineage never fails a run


def test_batch_jobs_that_ended_on_the_pipeline_queues_go_to_the_lineage_queue(resources) -> None:
    rule = resources["BatchJobEventsToLineage"]
    assert rule["Type"] == "AWS::Events::Rule"
    props = rule["Properties"]
    assert props.get("State", "ENABLED") == "ENABLED"
    pattern = props["EventPattern"]
    assert pattern["source"] == ["aws.batch"] and pattern["detail-type"] == ["Batch Job State Change"]
    assert pattern["detail"]["status"] == ["SUCCEEDED", "FAILED"]
    queues = ["SpotJobQueue", "OnDemandJobQueue", "GpuJobQueue", "GpuFallbackJobQueue"]
    assert pattern["detail"]["jobQueue"] == [{"Ref": queue} for queue in queues]
    assert all(resources[queue]["Type"] == "AWS::Batch::JobQueue" for queue in queues)  # Ref: the queue ARN
    # The whole event is the message body: no Input, InputPath or InputTransformer.
    assert props["Targets"] == [{"Id": "LineageQueue", "Arn": {"Fn::GetAtt": ["LineageQueue", "Arn"]}}]


def test_the_queue_policy_lets_only_that_rule_send_to_the_lineage_queue(resources) -> None:
    policy = resources["LineageQueuePolicy"]
    assert policy["Type"] == "AWS::SQS::QueuePolicy"
    props = policy["Properties"]
    assert props["Queues"] == [{"Ref": "LineageQueue"}]
    [statement] = props["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": ["LineageQueue", "Arn"]}
    rule_arn = {"Fn::GetAtt": ["BatchJobEventsToLineage", "Arn"]}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
