"""One regression test per moto gap: each scenario misbehaves without its fix and works with it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime

import pytest
from moto_gap_runner import ScenarioFailed, ScenarioRunner

from threadline.twin import moto_fixes

# As Step Functions writes `$$` times: UTC, milliseconds, `Z`.
AWS_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


@pytest.fixture(scope="module")
def scenarios() -> Iterator[ScenarioRunner]:
    """Runs each scenario in a fresh process, forked from one that has imported moto once."""
    runner = ScenarioRunner()
    yield runner
    runner.close()


def _scenario_of(item: pytest.Item) -> str | None:
    """The scenario a regression test runs: `test_<scenario>_regression`."""
    name = item.name.removeprefix("test_").removesuffix("_regression")
    return name if item.name.endswith("_regression") and name in moto_fixes.FIXES else None


@pytest.fixture(autouse=True)
def next_pair_ahead(request: pytest.FixtureRequest, scenarios: ScenarioRunner) -> None:
    """Start the next test's pair while this test runs: most pairs spend their time waiting on jobs and timers."""
    items = request.session.items
    following = items.index(request.node) + 1
    if following < len(items) and getattr(items[following], "module", None) is request.module:
        name = _scenario_of(items[following])
        if name is not None:
            scenarios.start_ahead(name)


def test_a_failing_scenario_is_reported_with_its_stderr(scenarios):
    with pytest.raises(ScenarioFailed, match=r"(?s)scenario no_such_scenario \(without its fix\) exited 1:.*KeyError"):
        scenarios.pair("no_such_scenario")


def test_a_scenario_past_its_time_is_killed_and_reported(scenarios):
    # Without its fix this scenario waits out two real Retry intervals of a second or more.
    with pytest.raises(ScenarioFailed, match=r"scenario retry_wait_scale \(without its fix\) timed out"):
        scenarios.pair("retry_wait_scale", timeout_s=0.5)


def test_without_fork_each_scenario_runs_in_a_cold_interpreter(scenarios):
    cold = ScenarioRunner(fork=False).pair("batch_describe_node_properties")
    assert cold == scenarios.pair("batch_describe_node_properties")
    assert cold[0] != cold[1]  # the fix was left out of one run only


def test_every_fix_has_a_regression_test():
    tested = {name.removeprefix("test_").removesuffix("_regression") for name in globals()
              if name.startswith("test_") and name.endswith("_regression")}
    assert tested == set(moto_fixes.FIXES)


def test_batch_sync_parameters_regression(scenarios):
    broken, fixed = scenarios.pair("batch_sync_parameters")
    assert broken["status"] == "FAILED" and "'JobName'" in broken["cause"]
    assert fixed["status"] == "SUCCEEDED"
    assert {"JobId", "JobName", "Status", "Attempts"} <= set(fixed["output_keys"])  # PascalCase, as on AWS


def test_sync_stale_token_listener_regression(scenarios):
    broken, fixed = scenarios.pair("sync_stale_token_listener")
    assert "States.Timeout" in broken["outcomes"]
    assert fixed["outcomes"] == ["SUCCEEDED"] * 3


def test_sync_poll_interval_regression(scenarios):
    broken, fixed = scenarios.pair("sync_poll_interval")
    assert broken["status"] == fixed["status"] == "SUCCEEDED"
    assert broken["polls"] >= 2 and broken["median_gap"] >= 0.5  # moto sleeps 0.5 s between polls
    assert fixed["polls"] > broken["polls"] and fixed["median_gap"] < 0.25


def test_batch_describe_exit_code_regression(scenarios):
    broken, fixed = scenarios.pair("batch_describe_exit_code")
    assert broken == {"status": "FAILED", "exit_code": None}
    assert fixed == {"status": "FAILED", "exit_code": 3}


def test_batch_environment_mutation_regression(scenarios):
    broken, fixed = scenarios.pair("batch_environment_mutation")
    assert broken["job_id_counts"][-1] > broken["job_id_counts"][0]
    assert fixed["job_id_counts"] == [1, 1, 1]


def test_eventbridge_lambda_targets_regression(scenarios):
    broken, fixed = scenarios.pair("eventbridge_lambda_targets")
    assert broken["payloads"] == []
    assert fixed["payloads"] == [{"source": "threadline.test"}]


def test_context_start_time_iso_regression(scenarios):
    broken, fixed = scenarios.pair("context_start_time_iso")
    assert broken["status"] == "FAILED" and "datetime" in broken["cause"]
    assert fixed["status"] == "SUCCEEDED"
    assert datetime.fromisoformat(fixed["started_at"]).tzinfo is not None
    assert AWS_TIMESTAMP.fullmatch(fixed["started_at"]), fixed["started_at"]


def test_sdk_streaming_body_regression(scenarios):
    broken, fixed = scenarios.pair("sdk_streaming_body")
    assert broken["status"] == "FAILED" and "strip" in broken["cause"]
    assert fixed["output"] == {"report": {"summary": "3 rows rejected"}}


def test_sqs_event_source_inline_delivery_regression(scenarios):
    broken, fixed = scenarios.pair("sqs_event_source_inline_delivery")
    # moto ran the function inside SendMessage and deleted the message it failed.
    assert broken == {"invoked_during_send": 1, "left_in_queue": 0}
    assert fixed == {"invoked_during_send": 0, "left_in_queue": 1}


def test_sqs_message_move_task_regression(scenarios):
    broken, fixed = scenarios.pair("sqs_message_move_task")
    assert "StartMessageMoveTask" in broken["error"] and broken["moved"] == 0
    assert fixed == {"moved": 1, "left_in_dead_letters": 0,
                     "task": {"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 1}}


def test_batch_describe_container_image_regression(scenarios):
    broken, fixed = scenarios.pair("batch_describe_container_image")
    assert broken == {"status": "SUCCEEDED", "image": None}
    assert fixed == {"status": "SUCCEEDED", "image": "local"}


def test_batch_describe_node_properties_regression(scenarios):
    broken, fixed = scenarios.pair("batch_describe_node_properties")
    assert broken == {"num_nodes": None, "image": None}
    assert fixed == {"num_nodes": 2, "image": "gpu:1"}


def test_batch_concurrent_describe_regression(scenarios):
    broken, fixed = scenarios.pair("batch_concurrent_describe")
    assert any("changed size during iteration" in error for error in broken["errors"]), broken
    assert fixed["errors"] == [] and fixed["jobs"] > 1000 and fixed["describes"] > 1000


def test_states_all_terminal_errors_regression(scenarios):
    broken, fixed = scenarios.pair("states_all_terminal_errors")
    assert broken["runtime"]["caught"] == "States.Runtime"  # moto let States.ALL take it
    assert broken["data_limit"]["caught"] == "States.DataLimitExceeded"
    assert fixed["runtime"] == {"status": "FAILED", "error": "States.Runtime", "caught": None}
    assert fixed["data_limit"] == {"status": "FAILED", "error": "States.DataLimitExceeded", "caught": None}
    # A Catch that names the error still catches it.
    assert fixed["runtime_named"] == {"status": "SUCCEEDED", "error": None, "caught": "States.Runtime"}


def test_payload_size_limit_regression(scenarios):
    broken, fixed = scenarios.pair("payload_size_limit")
    assert broken["task_parameters"]["status"] == "SUCCEEDED" and broken["task_parameters"]["objects_written"] == 1
    assert broken["pass_parameters"]["status"] == "SUCCEEDED"
    assert broken["non_ascii_within_quota"] == "FAILED"
    # Failed outright, the States.ALL Catch not taken, and the 300 KB request never sent.
    assert fixed["task_parameters"] == {"status": "FAILED", "error": "States.DataLimitExceeded", "caught": None,
                                        "objects_written": 0}
    assert fixed["pass_parameters"] == {"status": "FAILED", "error": "States.DataLimitExceeded", "caught": None}
    assert fixed["non_ascii_within_quota"] == "SUCCEEDED"


def test_context_entered_time_format_regression(scenarios):
    broken, fixed = scenarios.pair("context_entered_time_format")
    assert broken["status"] == "SUCCEEDED" and not AWS_TIMESTAMP.fullmatch(broken["entered"])
    assert fixed["status"] == "SUCCEEDED"
    assert AWS_TIMESTAMP.fullmatch(fixed["entered"]) and AWS_TIMESTAMP.fullmatch(fixed["started"]), fixed
    assert fixed["started"] <= fixed["entered"]


def test_lambda_async_invocation_regression(scenarios):
    broken, fixed = scenarios.pair("lambda_async_invocation")
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


def test_lambda_invocation_type_regression(scenarios):
    broken, fixed = scenarios.pair("lambda_invocation_type")
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


def test_stepfunctions_status_events_regression(scenarios):
    broken, fixed = scenarios.pair("stepfunctions_status_events")
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


def test_stop_before_interpreter_starts_regression(scenarios):
    broken, fixed = scenarios.pair("stop_before_interpreter_starts")
    assert broken["stop_error"] == 500 and broken["status"] == "RUNNING"  # moto: no environment yet
    assert fixed == {"stop_error": None, "status": "ABORTED"}


def test_timed_out_stop_date_regression(scenarios):
    broken, fixed = scenarios.pair("timed_out_stop_date")
    assert broken == {"status": "TIMED_OUT", "ran_s": None}  # moto: no stopDate for a timed-out execution
    assert fixed["status"] == "TIMED_OUT" and 1 <= fixed["ran_s"] < 10, fixed


def test_batch_sync_terminate_on_stop_regression(scenarios):
    broken, fixed = scenarios.pair("batch_sync_terminate_on_stop")
    for outcome in (broken, fixed):
        assert outcome["status"] == "FAILED" and outcome["error"] == "States.Timeout" and outcome["jobs"] == 1
    # moto forgot the job: it still held its queue seconds after the execution timed out.
    assert broken["job_status"] == "RUNNING" and broken["waited_s"] >= 3
    assert fixed["job_status"] == "FAILED" and fixed["waited_s"] < 3, fixed
    assert "task ended before the job" in fixed["status_reason"]


def test_schedule_rules_ignore_bus_events_regression(scenarios):
    broken, fixed = scenarios.pair("schedule_rules_ignore_bus_events")
    assert broken == {"scheduled": 1, "patterned": 1}  # moto: the schedule's target got the bus event too
    assert fixed == {"scheduled": 0, "patterned": 1}


def test_batch_sync_poll_resilience_regression(scenarios):
    broken, fixed = scenarios.pair("batch_sync_poll_resilience")
    assert broken["errors_answered"] >= 1 and fixed["errors_answered"] == 3
    # One transient DescribeJobs error ended the run; Step Functions' poller would have polled again.
    assert broken["status"] == "FAILED"
    assert fixed["status"] == "SUCCEEDED", fixed


def test_retry_wait_scale_regression(scenarios):
    broken, fixed = scenarios.pair("retry_wait_scale")
    for outcome in (broken, fixed):  # the same attempts: the first and two retries
        assert outcome["status"] == "FAILED" and outcome["error"] == "s3.NoSuchKeyException"
        assert outcome["task_failures"] == outcome["task_starts"] == 3
    interval = broken["interval_s"]  # two real waits of the Retry's interval
    assert broken["took_s"] >= 2 * interval and all(wait >= interval - 0.01 for wait in broken["waits_s"]), broken
    # The same waits, scaled by RETRY_WAIT_SCALE (history times are in whole milliseconds): waited, but briefly.
    scaled = interval * moto_fixes.RETRY_WAIT_SCALE
    assert len(fixed["waits_s"]) == 2 and all(scaled - 0.002 <= wait < 0.5 for wait in fixed["waits_s"]), fixed


def test_s3_eventbridge_etag_regression(scenarios):
    broken, fixed = scenarios.pair("s3_eventbridge_etag")
    assert len(broken["object_keys"]) == len(fixed["object_keys"]) == 1
    assert "eTag" in broken["object_keys"][0] and "etag" not in broken["object_keys"][0]  # moto's spelling
    assert "etag" in fixed["object_keys"][0] and "eTag" not in fixed["object_keys"][0]  # AWS's
    assert fixed["etags"] == [fixed["put_etag"]]


def test_batch_share_identifier_regression(scenarios):
    broken, fixed = scenarios.pair("batch_share_identifier")
    assert broken["refused"] is None and broken["share"] is None  # moto takes and forgets it
    assert "shareIdentifier is required" in fixed["refused"]
    assert (fixed["share"], fixed["priority"], fixed["status"]) == ("risk", 7, "SUCCEEDED")
    assert broken["task_share"] is None  # the interpreter dropped the Task's ShareIdentifier
    assert (fixed["task_status"], fixed["task_share"]) == ("SUCCEEDED", "research")


def test_batch_ecs_properties_regression(scenarios):
    broken, fixed = scenarios.pair("batch_ecs_properties")
    assert broken == {"refused": "containerProperties or eksProperties must be provided"}
    assert fixed == {"refused": None, "described": ["main", "side"], "status": "SUCCEEDED",
                     "exit_codes": {"main": 0, "side": 3}}
