"""One regression test per moto gap: each scenario misbehaves without its fix and works with it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from threadline.twin import moto_fixes

SCENARIOS = Path(__file__).with_name("moto_gap_scenarios.py")
# As Step Functions writes `$$` times: UTC, milliseconds, `Z`.
AWS_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def scenario(name: str, with_fix: bool) -> dict:
    command = [sys.executable, str(SCENARIOS), name] + ([] if with_fix else ["--without-fix"])
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    assert completed.returncode == 0 and lines, completed.stderr[-2000:]
    return json.loads(lines[-1])


def test_every_fix_has_a_regression_test():
    tested = {name.removeprefix("test_").removesuffix("_regression") for name in globals()
              if name.startswith("test_") and name.endswith("_regression")}
    assert tested == set(moto_fixes.FIXES)


def test_batch_sync_parameters_regression():
    broken, fixed = scenario("batch_sync_parameters", False), scenario("batch_sync_parameters", True)
    assert broken["status"] == "FAILED" and "'JobName'" in broken["cause"]
    assert fixed["status"] == "SUCCEEDED"
    assert {"JobId", "JobName", "Status", "Attempts"} <= set(fixed["output_keys"])  # PascalCase, as on AWS


def test_sync_stale_token_listener_regression():
    broken, fixed = scenario("sync_stale_token_listener", False), scenario("sync_stale_token_listener", True)
    assert "States.Timeout" in broken["outcomes"]
    assert fixed["outcomes"] == ["SUCCEEDED"] * 3


def test_sync_poll_interval_regression():
    broken, fixed = scenario("sync_poll_interval", False), scenario("sync_poll_interval", True)
    assert broken["status"] == fixed["status"] == "SUCCEEDED"
    assert broken["polls"] >= 2 and broken["median_gap"] >= 0.5  # moto sleeps 0.5 s between polls
    assert fixed["polls"] > broken["polls"] and fixed["median_gap"] < 0.25


def test_batch_describe_exit_code_regression():
    broken, fixed = scenario("batch_describe_exit_code", False), scenario("batch_describe_exit_code", True)
    assert broken == {"status": "FAILED", "exit_code": None}
    assert fixed == {"status": "FAILED", "exit_code": 3}


def test_batch_environment_mutation_regression():
    broken, fixed = scenario("batch_environment_mutation", False), scenario("batch_environment_mutation", True)
    assert broken["job_id_counts"][-1] > broken["job_id_counts"][0]
    assert fixed["job_id_counts"] == [1, 1, 1]


def test_eventbridge_lambda_targets_regression():
    broken, fixed = scenario("eventbridge_lambda_targets", False), scenario("eventbridge_lambda_targets", True)
    assert broken["payloads"] == []
    assert fixed["payloads"] == [{"source": "threadline.test"}]


def test_context_start_time_iso_regression():
    broken, fixed = scenario("context_start_time_iso", False), scenario("context_start_time_iso", True)
    assert broken["status"] == "FAILED" and "datetime" in broken["cause"]
    assert fixed["status"] == "SUCCEEDED"
    assert datetime.fromisoformat(fixed["started_at"]).tzinfo is not None
    assert AWS_TIMESTAMP.fullmatch(fixed["started_at"]), fixed["started_at"]


def test_sdk_streaming_body_regression():
    broken, fixed = scenario("sdk_streaming_body", False), scenario("sdk_streaming_body", True)
    assert broken["status"] == "FAILED" and "strip" in broken["cause"]
    assert fixed["output"] == {"report": {"summary": "3 rows rejected"}}


def test_sqs_event_source_inline_delivery_regression():
    broken = scenario("sqs_event_source_inline_delivery", False)
    fixed = scenario("sqs_event_source_inline_delivery", True)
    # moto ran the function inside SendMessage and deleted the message it failed.
    assert broken == {"invoked_during_send": 1, "left_in_queue": 0}
    assert fixed == {"invoked_during_send": 0, "left_in_queue": 1}


def test_sqs_message_move_task_regression():
    broken, fixed = scenario("sqs_message_move_task", False), scenario("sqs_message_move_task", True)
    assert "StartMessageMoveTask" in broken["error"] and broken["moved"] == 0
    assert fixed == {"moved": 1, "left_in_dead_letters": 0,
                     "task": {"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 1}}


def test_batch_describe_container_image_regression():
    broken = scenario("batch_describe_container_image", False)
    fixed = scenario("batch_describe_container_image", True)
    assert broken == {"status": "SUCCEEDED", "image": None}
    assert fixed == {"status": "SUCCEEDED", "image": "local"}


def test_batch_describe_node_properties_regression():
    broken = scenario("batch_describe_node_properties", False)
    fixed = scenario("batch_describe_node_properties", True)
    assert broken == {"num_nodes": None, "image": None}
    assert fixed == {"num_nodes": 2, "image": "gpu:1"}


def test_batch_concurrent_describe_regression():
    broken = scenario("batch_concurrent_describe", False)
    fixed = scenario("batch_concurrent_describe", True)
    assert any("changed size during iteration" in error for error in broken["errors"]), broken
    assert fixed["errors"] == [] and fixed["jobs"] > 1000 and fixed["describes"] > 1000


def test_states_all_terminal_errors_regression():
    broken = scenario("states_all_terminal_errors", False)
    fixed = scenario("states_all_terminal_errors", True)
    assert broken["runtime"]["caught"] == "States.Runtime"  # moto let States.ALL take it
    assert broken["data_limit"]["caught"] == "States.DataLimitExceeded"
    assert fixed["runtime"] == {"status": "FAILED", "error": "States.Runtime", "caught": None}
    assert fixed["data_limit"] == {"status": "FAILED", "error": "States.DataLimitExceeded", "caught": None}
    # A Catch that names the error still catches it.
    assert fixed["runtime_named"] == {"status": "SUCCEEDED", "error": None, "caught": "States.Runtime"}


def test_payload_size_limit_regression():
    broken, fixed = scenario("payload_size_limit", False), scenario("payload_size_limit", True)
    assert broken["task_parameters"]["status"] == "SUCCEEDED" and broken["task_parameters"]["objects_written"] == 1
    assert broken["pass_parameters"]["status"] == "SUCCEEDED"
    assert broken["non_ascii_within_quota"] == "FAILED"
    # Failed outright, the States.ALL Catch not taken, and the 300 KB request never sent.
    assert fixed["task_parameters"] == {"status": "FAILED", "error": "States.DataLimitExceeded", "caught": None,
                                        "objects_written": 0}
    assert fixed["pass_parameters"] == {"status": "FAILED", "error": "States.DataLimitExceeded", "caught": None}
    assert fixed["non_ascii_within_quota"] == "SUCCEEDED"


def test_context_entered_time_format_regression():
    broken = scenario("context_entered_time_format", False)
    fixed = scenario("context_entered_time_format", True)
    assert broken["status"] == "SUCCEEDED" and not AWS_TIMESTAMP.fullmatch(broken["entered"])
    assert fixed["status"] == "SUCCEEDED"
    assert AWS_TIMESTAMP.fullmatch(fixed["entered"]) and AWS_TIMESTAMP.fullmatch(fixed["started"]), fixed
    assert fixed["started"] <= fixed["entered"]


def test_lambda_async_invocation_regression():
    broken = scenario("lambda_async_invocation", False)
    fixed = scenario("lambda_async_invocation", True)
    # moto ran the failing 1 s handler once, inside the Invoke call, and forgot the event.
    assert broken["answered_in_s"] >= 1.0 and not broken["answered_before_the_run_ended"]
    assert broken["runs"] == 1 and broken["dead_letters"] == []
    # Queued: 202 at once (while the 1 s run goes on), the first try plus two retries, then the dead-letter queue.
    assert fixed["status_code"] == 202 and fixed["answered_before_the_run_ended"], fixed
    assert fixed["finished"] and fixed["runs"] == 3 and fixed["errored"] == [True, True, True]
    [dead_letter] = fixed["dead_letters"]
    assert dead_letter["body"] == {"n": "one"}
    assert dead_letter["attributes"]["ErrorMessage"] == "always fails: one"
    assert re.fullmatch(r"[0-9a-f-]{36}", dead_letter["attributes"]["RequestID"])


def test_lambda_invocation_type_regression():
    broken, fixed = scenario("lambda_invocation_type", False), scenario("lambda_invocation_type", True)
    # InvocationType was dropped: the task waited on the function and failed with its error.
    assert broken["status"] == "FAILED" and broken["error"] == "ValueError" and broken["took_s"] >= 1.0
    assert not broken["ended_before_the_run_ended"]
    assert broken["runs"] == 1 and broken["dead_letters"] == []
    # Async: the task ends at once with 202; Lambda retries the event and dead-letters it.
    assert fixed["status"] == "SUCCEEDED" and fixed["status_code"] == 202, fixed
    assert fixed["ended_before_the_run_ended"]
    assert fixed["finished"] and fixed["runs"] == 3
    [dead_letter] = fixed["dead_letters"]
    assert dead_letter["body"] == {"n": "two"} and dead_letter["attributes"]["ErrorMessage"] == "always fails: two"


def test_stepfunctions_status_events_regression():
    broken = scenario("stepfunctions_status_events", False)
    fixed = scenario("stepfunctions_status_events", True)
    assert broken["statuses"] == fixed["statuses"] == ["FAILED", "SUCCEEDED"]
    assert broken["received"] == 0
    # One event per status change: RUNNING and the end (EventBridge does not promise their order).
    assert sorted(e["detail"]["status"] for e in fixed["failed"]) == ["FAILED", "RUNNING"], fixed["failed"]
    assert sorted(e["detail"]["status"] for e in fixed["succeeded"]) == ["RUNNING", "SUCCEEDED"], fixed["succeeded"]
    for events, given in ((fixed["failed"], {"n": 1}), (fixed["succeeded"], {"n": 2})):
        for event in events:
            assert event["source"] == "aws.states"
            assert event["detail-type"] == "Step Functions Execution Status Change"
            detail = event["detail"]
            assert event["resources"] == [detail["executionArn"]]
            assert {"executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate",
                    "input"} <= set(detail)
            assert detail["name"] == "scene"
            assert detail["executionArn"].split(":")[-2] == detail["stateMachineArn"].split(":")[-1]
            assert isinstance(detail["startDate"], int) and detail["startDate"] > 1_000_000_000_000  # epoch ms
            assert json.loads(detail["input"]) == given
            if detail["status"] == "RUNNING":
                assert detail["stopDate"] is None
            else:
                assert isinstance(detail["stopDate"], int) and detail["stopDate"] >= detail["startDate"]
    [failed] = [e["detail"] for e in fixed["failed"] if e["detail"]["status"] == "FAILED"]
    assert failed["error"] == "Scene.Broken" and failed["cause"] == "it had to fail"
    [succeeded] = [e["detail"] for e in fixed["succeeded"] if e["detail"]["status"] == "SUCCEEDED"]
    assert json.loads(succeeded["output"]) == {"ok": True}


def test_batch_sync_terminate_on_stop_regression():
    broken = scenario("batch_sync_terminate_on_stop", False)
    fixed = scenario("batch_sync_terminate_on_stop", True)
    for outcome in (broken, fixed):
        assert outcome["status"] == "FAILED" and outcome["error"] == "States.Timeout" and outcome["jobs"] == 1
    # moto forgot the job: it still held its queue seconds after the execution timed out.
    assert broken["job_status"] == "RUNNING" and broken["waited_s"] >= 3
    assert fixed["job_status"] == "FAILED" and fixed["waited_s"] < 3, fixed
    assert "task ended before the job" in fixed["status_reason"]


def test_schedule_rules_ignore_bus_events_regression():
    broken = scenario("schedule_rules_ignore_bus_events", False)
    fixed = scenario("schedule_rules_ignore_bus_events", True)
    assert broken == {"scheduled": 1, "patterned": 1}  # moto: the schedule's target got the bus event too
    assert fixed == {"scheduled": 0, "patterned": 1}


def test_batch_sync_poll_resilience_regression():
    broken = scenario("batch_sync_poll_resilience", False)
    fixed = scenario("batch_sync_poll_resilience", True)
    assert broken["errors_answered"] >= 1 and fixed["errors_answered"] == 3
    # One transient DescribeJobs error ended the run; Step Functions' poller would have polled again.
    assert broken["status"] == "FAILED"
    assert fixed["status"] == "SUCCEEDED", fixed


def test_retry_wait_scale_regression():
    broken, fixed = scenario("retry_wait_scale", False), scenario("retry_wait_scale", True)
    for outcome in (broken, fixed):  # the same attempts: the first and two retries
        assert outcome["status"] == "FAILED" and outcome["error"] == "s3.NoSuchKeyException"
        assert outcome["task_failures"] == outcome["task_starts"] == 3
    assert broken["took_s"] >= 6 and all(wait >= 2.99 for wait in broken["waits_s"]), broken  # two real 3 s waits
    # The same waits, scaled by RETRY_WAIT_SCALE (history times are in whole milliseconds): waited, but briefly.
    scaled = 3 * moto_fixes.RETRY_WAIT_SCALE
    assert len(fixed["waits_s"]) == 2 and all(scaled - 0.002 <= wait < 0.5 for wait in fixed["waits_s"]), fixed


def test_s3_eventbridge_etag_regression():
    broken, fixed = scenario("s3_eventbridge_etag", False), scenario("s3_eventbridge_etag", True)
    assert len(broken["object_keys"]) == len(fixed["object_keys"]) == 1
    assert "eTag" in broken["object_keys"][0] and "etag" not in broken["object_keys"][0]  # moto's spelling
    assert "etag" in fixed["object_keys"][0] and "eTag" not in fixed["object_keys"][0]  # AWS's
    assert fixed["etags"] == [fixed["put_etag"]]


def test_batch_share_identifier_regression():
    broken, fixed = scenario("batch_share_identifier", False), scenario("batch_share_identifier", True)
    assert broken["refused"] is None and broken["share"] is None  # moto takes and forgets it
    assert "shareIdentifier is required" in fixed["refused"]
    assert (fixed["share"], fixed["priority"], fixed["status"]) == ("risk", 7, "SUCCEEDED")
    assert broken["task_share"] is None  # the interpreter dropped the Task's ShareIdentifier
    assert (fixed["task_status"], fixed["task_share"]) == ("SUCCEEDED", "research")


def test_batch_ecs_properties_regression():
    broken, fixed = scenario("batch_ecs_properties", False), scenario("batch_ecs_properties", True)
    assert broken == {"refused": "containerProperties or eksProperties must be provided"}
    assert fixed == {"refused": None, "described": ["main", "side"], "status": "SUCCEEDED",
                     "exit_codes": {"main": 0, "side": 3}}
