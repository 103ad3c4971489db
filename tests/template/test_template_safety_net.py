"""No run ends silently: the template's and the state machine's side of it.

Whatever ends an execution reaches the finaliser; every async path has retries,
a dead-letter queue and an alarm; every wait has a time limit; nothing the state
machine reads can approach the 256 KiB payload limit; failure classification
cannot raise States.Runtime on a Cause that is not JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((REPO_ROOT / "statemachines" / "pipeline.asl.json").read_text(encoding="utf-8"))
STATES: dict[str, Any] = ASL["States"]
ASYNC_FUNCTIONS = ["StartRunFunction", "NotifySlackFunction", "FinaliseRunFunction", "BatchMetricsFunction"]


def test_every_closing_status_of_the_pipeline_reaches_the_finaliser(resources: dict[str, Any]) -> None:
    rule = resources["FinaliseRunFunction"]["Properties"]["Events"]["ExecutionEnded"]
    assert rule["Type"] == "EventBridgeRule"
    pattern = rule["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": "PipelineStateMachine"}]
    assert set(pattern["detail"]["status"]) == {"FAILED", "TIMED_OUT", "ABORTED"}


@pytest.mark.parametrize("function", ASYNC_FUNCTIONS)
def test_async_functions_retry_then_dead_letter_with_an_alarm(resources: dict[str, Any], function: str) -> None:
    props = resources[function]["Properties"]
    assert props["EventInvokeConfig"]["MaximumRetryAttempts"] == 2
    queue = props["DeadLetterQueue"]["TargetArn"]["Fn::GetAtt"][0]
    assert resources[queue]["Type"] == "AWS::SQS::Queue"
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"
              and r["Properties"].get("Namespace") == "AWS/SQS"
              and {"Fn::GetAtt": [queue, "QueueName"]} in [d["Value"] for d in r["Properties"]["Dimensions"]]]
    assert len(alarms) == 1, f"{queue} needs exactly one alarm"
    assert alarms[0]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_finaliser_may_only_close_runs_and_tell(resources: dict[str, Any]) -> None:
    statements = [s for policy in resources["FinaliseRunFunction"]["Properties"]["Policies"]
                  for s in policy["Statement"]]
    granted = {(a, json.dumps(s["Resource"])) for s in statements for a in
               (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert granted == {
        ("dynamodb:UpdateItem", json.dumps({"Fn::GetAtt": ["RunTable", "Arn"]})),
        ("dynamodb:GetItem", json.dumps({"Fn::GetAtt": ["RunTable", "Arn"]})),
        ("sqs:SendMessage", json.dumps({"Fn::GetAtt": ["LineageQueue", "Arn"]})),
        ("lambda:InvokeFunction", json.dumps({"Fn::GetAtt": ["NotifySlackFunction", "Arn"]})),
    }


def test_the_execution_and_every_batch_task_have_time_limits() -> None:
    assert 0 < ASL["TimeoutSeconds"] <= 7 * 86400
    batch_tasks = [name for name, state in STATES.items()
                   if state.get("Resource") == "arn:aws:states:::batch:submitJob.sync"]
    assert len(batch_tasks) == 6
    for name in batch_tasks:
        path = STATES[name].get("TimeoutSecondsPath")
        assert path in ("$.limits.job_task_s", "$.limits.analysis_task_s"), name
    limits = STATES["InitialiseRun"]["Parameters"]["limits"]
    assert limits == {"job_task_s.$": "States.StringToJson('${JobTaskTimeoutSeconds}')",
                      "analysis_task_s.$": "States.StringToJson('${AnalysisTaskTimeoutSeconds}')"}


def test_slack_notices_are_asynchronous() -> None:
    notices = [name for name, state in STATES.items()
               if state.get("Parameters", {}).get("FunctionName") == "${NotifySlackFunctionArn}"]
    assert sorted(notices) == ["NotifyRunFailed", "NotifyRunStarted", "NotifyRunSucceeded"]
    for name in notices:
        assert STATES[name]["Parameters"]["InvocationType"] == "Event", name


def test_every_cause_parse_is_guarded_by_its_shape() -> None:
    """States.StringToJson of a plain-text Cause raises States.Runtime, which no Catch handles."""
    parses = [name for name, state in STATES.items() if "StringToJson($.error.Cause)" in json.dumps(state)]
    assert len(parses) == 6
    for name in parses:
        guards = [g for g, state in STATES.items() if state["Type"] == "Choice"
                  and any(choice.get("Next") == name for choice in state["Choices"])]
        assert len(guards) == 1, name
        (choice,) = [c for c in STATES[guards[0]]["Choices"] if c["Next"] == name]
        assert {"Variable": "$.error.Cause", "IsString": True} in choice["And"]
        assert {"Variable": "$.error.Cause", "StringMatches": "{*}"} in choice["And"]
        # Every way into the parse goes through its guard.
        callers = [s for s, state in STATES.items() if name in json.dumps(state) and s not in (name, guards[0])]
        assert callers == [], (name, callers)


def test_the_state_machine_reads_only_the_bounded_validation_summary() -> None:
    read = STATES["ReadValidationReport"]
    assert read["Parameters"]["Key.$"] == "States.Format('{}/validation-summary.json', $.run_id)"
    reads = [name for name, state in STATES.items() if str(state.get("Resource", "")).endswith("s3:getObject")]
    assert reads == ["ReadValidationReport"]


def test_capacity_and_misconfiguration_cancels_are_told_apart() -> None:
    capacity = "Canceled by JobStateTimeLimit action due to reason: CAPACITY:*"
    for kind, fallback in (("PreprocessFailureKind", "PreprocessOnDemand"),
                           ("PostprocessFailureKind", "PostprocessOnDemand"),
                           ("AnalysisFailureKind", "AnalysisOnFallbackQueue")):
        matches = [c["And"][1]["StringMatches"] for c in STATES[kind]["Choices"] if c["Next"] == fallback]
        assert capacity in matches, kind
        assert all("Canceled" not in m or m == capacity for m in matches), kind
