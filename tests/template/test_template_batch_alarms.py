"""Batch alarms: the metrics function's events and permissions, one RUNNABLE alarm per queue,
one failure alarm per job definition."""

from __future__ import annotations

from typing import Any

import pytest

QUEUES = ["SpotJobQueue", "OnDemandJobQueue", "GpuJobQueue", "GpuFallbackJobQueue"]
DEFINITIONS = ["PreprocessJobDefinition", "AnalysisJobDefinition", "PostprocessJobDefinition"]
NAMESPACE = "threadline/Batch"


def _alarms(resources: dict[str, Any], metric: str) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources.items()
            if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == NAMESPACE
            and r["Properties"]["MetricName"] == metric}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_job_state_changes_of_exactly_the_four_queues_reach_the_function(resources: dict[str, Any]) -> None:
    events = resources["BatchMetricsFunction"]["Properties"]["Events"]
    rules = [e for e in events.values() if e["Type"] == "EventBridgeRule"]
    assert len(rules) == 1
    pattern = rules[0]["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.batch"]
    assert pattern["detail-type"] == ["Batch Job State Change"]
    queues = pattern["detail"]["jobQueue"]
    assert sorted(q["Ref"] for q in queues) == sorted(QUEUES) and len(queues) == 4
    # The statuses the function reads: STARTING ends a RUNNABLE wait, FAILED is a failure (or a cancelled wait).
    assert set(pattern["detail"]["status"]) == {"STARTING", "FAILED"}


def test_a_one_minute_schedule_lists_the_same_queues(resources: dict[str, Any]) -> None:
    props = resources["BatchMetricsFunction"]["Properties"]
    schedules = [e for e in props["Events"].values() if e["Type"] == "Schedule"]
    assert [s["Properties"]["Schedule"] for s in schedules] == ["rate(1 minute)"]
    joined = props["Environment"]["Variables"]["JOB_QUEUES"]["Fn::Join"]
    assert joined[0] == "," and [q["Ref"] for q in joined[1]] == QUEUES


def test_the_function_may_only_publish_its_namespace_and_list_jobs(resources: dict[str, Any]) -> None:
    statements = [s for policy in resources["BatchMetricsFunction"]["Properties"]["Policies"]
                  for s in policy["Statement"]]
    granted = sorted(a for s in statements for a in _as_list(s["Action"]))
    assert granted == ["batch:ListJobs", "cloudwatch:PutMetricData"]
    by_action = {a: s for s in statements for a in _as_list(s["Action"])}
    put = by_action["cloudwatch:PutMetricData"]
    assert put["Resource"] == "*"  # PutMetricData has no resource-level permissions
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": NAMESPACE}}
    assert by_action["batch:ListJobs"]["Resource"] == "*"  # nor has ListJobs


@pytest.mark.parametrize("queue", QUEUES)
def test_one_runnable_alarm_per_queue(resources: dict[str, Any], queue: str) -> None:
    name = resources[queue]["Properties"]["JobQueueName"]
    alarms = [a for a in _alarms(resources, "OldestRunnableSeconds").values()
              if a["Dimensions"] == [{"Name": "JobQueue", "Value": name}]]
    assert len(alarms) == 1, f"{queue} needs exactly one RUNNABLE alarm"
    alarm = alarms[0]
    assert alarm["Statistic"] == "Maximum"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == {"Ref": "RunnableAlarmSeconds"}
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_runnable_alarms_cover_only_the_stack_queues(resources: dict[str, Any], template: dict[str, Any]) -> None:
    assert len(_alarms(resources, "OldestRunnableSeconds")) == len(QUEUES)
    parameter = template["Parameters"]["RunnableAlarmSeconds"]
    assert parameter["Type"] == "Number" and parameter["Default"] == 1800


@pytest.mark.parametrize("definition", DEFINITIONS)
def test_one_failure_alarm_per_job_definition(resources: dict[str, Any], definition: str) -> None:
    name = resources[definition]["Properties"]["JobDefinitionName"]
    alarms = [a for a in _alarms(resources, "JobsFailed").values()
              if a["Dimensions"] == [{"Name": "JobDefinition", "Value": name}]]
    assert len(alarms) == 1, f"{definition} needs exactly one failure alarm"
    alarm = alarms[0]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 900, 1)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 3)
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert len(_alarms(resources, "JobsFailed")) == len(DEFINITIONS)
