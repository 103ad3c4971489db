"""`runs.find_execution` and `runs.wait` against a stand-in for the twin's Step Functions and Lambda runtime."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from threadline.twin import runs
from threadline.twin.lambda_runtime import Invocation
from threadline.twin.runs import RunNotStarted, RunSkipped, find_execution, wait

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:threadline-PipelineStateMachine"
ARN = MACHINE.replace(":stateMachine:", ":execution:") + ":long-run-0001"
BUCKET = "threadline-incomingbucket"


class _Pages:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        return self.pages


class FakeStepFunctions:
    """An execution that stays RUNNING for `running_polls` describes, moving through `states`."""

    def __init__(self, running_polls: int, states: list[str]) -> None:
        self.running_polls = running_polls
        self.states = states
        self.polls = 0
        self.started = datetime.now(UTC) - timedelta(seconds=1)
        self.executions: list[dict[str, Any]] = []

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803 - boto3's spelling
        self.polls += 1
        done = self.polls > self.running_polls
        described = {"executionArn": executionArn, "name": "long-run-0001", "startDate": self.started,
                     "status": "SUCCEEDED" if done else "RUNNING",
                     "input": json.dumps({"run_id": "long-run-0001", "source": {}})}
        if done:
            described.update(stopDate=datetime.now(UTC), output="{}")
        return described

    def get_paginator(self, name: str) -> _Pages:
        if name == "list_executions":
            return _Pages([{"executions": self.executions}])
        events = []
        reached = min(len(self.states), 1 + self.polls * len(self.states) // max(self.running_polls, 1))
        for index, state in enumerate(self.states[:reached]):
            moment = self.started + timedelta(seconds=index)
            events.append({"type": "TaskStateEntered", "timestamp": moment,
                           "stateEnteredEventDetails": {"name": state}})
            if index < reached - 1:
                events.append({"type": "TaskStateExited", "timestamp": moment + timedelta(seconds=0.5),
                               "stateExitedEventDetails": {"name": state}})
        return _Pages([{"events": events}])


def fake_twin(sfn: FakeStepFunctions, invocations: list[Invocation] | None = None,
              workdir: Path = Path("twin")) -> Any:
    return SimpleNamespace(client=lambda service: sfn, state_machine_arn=MACHINE, workdir=workdir,
                           lambda_runtime=SimpleNamespace(invocations=invocations or []))


@pytest.fixture
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each look at the clock in runs.py is a minute later, and sleeps (waits for an execution's end) are instant."""
    now = [0.0]

    def monotonic() -> float:
        now[0] += 60.0
        return now[0]

    monkeypatch.setattr(runs, "time", SimpleNamespace(monotonic=monotonic, sleep=lambda seconds: None,
                                                      time=time.time))
    monkeypatch.setattr(runs, "moto_fixes", SimpleNamespace(executions_ended=lambda: 0,
                                                            wait_for_execution_end=lambda seen, timeout: seen))


def test_wait_follows_a_run_for_as_long_as_it_runs_reporting_its_state(fast_clock):
    """A run still RUNNING after hours of (fake) clock is waited for, not abandoned at a fixed limit."""
    sfn = FakeStepFunctions(running_polls=40, states=["Preprocess", "Analysis", "Postprocess"])
    seen: list[tuple[str, str | None, float]] = []

    result = wait(fake_twin(sfn), ARN, progress=lambda status, state, elapsed: seen.append((status, state, elapsed)))

    assert result.status == "SUCCEEDED" and result.run_id == "long-run-0001"
    assert sfn.polls == 41
    assert {status for status, _, _ in seen} == {"RUNNING"}
    states = [state for _, state, _ in seen]
    assert states[0] == "Preprocess" and states[-1] == "Postprocess" and "Analysis" in states
    assert all(elapsed >= 1.0 for _, _, elapsed in seen)


def test_wait_keeps_a_timeout_for_callers_that_ask_for_one(fast_clock):
    sfn = FakeStepFunctions(running_polls=1000, states=["Analysis"])

    with pytest.raises(TimeoutError, match="still RUNNING after 300s"):
        wait(fake_twin(sfn), ARN, timeout=300)


def _start_invocation(payload: dict[str, Any], started_at: float, log_path: Path, errored: bool = False) -> Invocation:
    return Invocation("StartRunFunction", started_at, 0.1, errored, payload, log_path)


def test_find_execution_reports_a_skipped_upload_at_once_with_the_reason(tmp_path):
    uri = f"s3://{BUCKET}/incoming/empty.csv"
    since = time.time()
    log = tmp_path / "start.log"
    invocations = [
        _start_invocation({"status": "skipped", "reason": "an older skip", "uri": uri}, since - 60, log),
        _start_invocation({"status": "skipped", "reason": f"object {uri} is empty", "uri": uri}, since + 0.01, log),
    ]
    sfn = FakeStepFunctions(running_polls=0, states=[])
    started = time.monotonic()

    with pytest.raises(RunSkipped) as caught:
        find_execution(fake_twin(sfn, invocations), BUCKET, "incoming/empty.csv", "v1", timeout=30, since=since)

    assert time.monotonic() - started < 5
    assert caught.value.reason == f"object {uri} is empty"
    assert caught.value.uri == uri and caught.value.log_path == log
    assert isinstance(caught.value, RunNotStarted)


def test_find_execution_ignores_skips_of_other_objects_and_names_a_start_function_failure(tmp_path):
    since = time.time()
    log = tmp_path / "start.log"
    invocations = [
        _start_invocation({"status": "skipped", "reason": "empty", "uri": f"s3://{BUCKET}/incoming/other.csv"},
                          since + 0.01, log),
        _start_invocation({"errorType": "ClientError", "errorMessage": "AccessDenied"}, since + 0.02, log,
                          errored=True),
    ]
    sfn = FakeStepFunctions(running_polls=0, states=[])

    with pytest.raises(RunNotStarted) as caught:
        find_execution(fake_twin(sfn, invocations), BUCKET, "incoming/mine.csv", "v1", timeout=0.2, since=since)

    assert not isinstance(caught.value, RunSkipped)
    assert "no execution started for s3://threadline-incomingbucket/incoming/mine.csv" in str(caught.value)
    assert "ClientError: AccessDenied" in str(caught.value)
