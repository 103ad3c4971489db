"""One regression test per moto gap: each scenario misbehaves without its fix and works with it."""

from __future__ import annotations

import json
import re
from datetime import datetime
import subprocess
import sys
from pathlib import Path

import pytest

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
