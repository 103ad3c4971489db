"""A Batch job killed by a signal exits 128 + N, as AWS Batch reports it (137 for SIGKILL, 143 for SIGTERM)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from threadline.twin.batch_runtime import LocalBatchRuntime, batch_exit_code
from threadline.twin.faults import FaultPlan


@pytest.mark.parametrize(("returncode", "expected"), [
    (0, 0), (1, 1), (2, 2), (137, 137),  # exit statuses pass through
    (-signal.SIGKILL, 137), (-signal.SIGTERM, 143), (-signal.SIGINT, 130), (-signal.SIGSEGV, 139),
])
def test_a_signal_is_reported_as_128_plus_its_number(returncode: int, expected: int) -> None:
    assert batch_exit_code(returncode) == expected


def _job(command: list[str], retry: dict[str, Any] | None = None) -> Any:
    """What the runtime reads of a moto Batch job: a one-container job definition running `command`."""
    definition = SimpleNamespace(name="self-killer", type="container",
                                 arn="arn:aws:batch:us-east-1:123456789012:job-definition/self-killer:1",
                                 container_properties={"command": command}, parameters={},
                                 retry_strategy=retry or {}, timeout=None, node_properties=None)
    return SimpleNamespace(job_id="job-0001", job_name="self-killer", job_definition=definition,
                           job_queue=SimpleNamespace(name="threadline-SpotJobQueue"), parameters={},
                           container_overrides={}, timeout=None, stop=False, job_stopped_reason=None,
                           attempts=[], status="SUBMITTED")


def _runtime(tmp_path: Path) -> LocalBatchRuntime:
    runtime = LocalBatchRuntime(tmp_path, {}, tmp_path / "logs", FaultPlan())
    runtime.definition_dirs["self-killer"] = tmp_path
    return runtime


@pytest.mark.parametrize(("name", "expected"), [("SIGKILL", 137), ("SIGTERM", 143)])
def test_a_job_process_that_kills_itself_exits_like_a_batch_container(tmp_path, name: str, expected: int) -> None:
    command = ["python", "-c", f"import os, signal; os.kill(os.getpid(), signal.{name})"]
    job = _job(command)

    _runtime(tmp_path).run(job)

    assert job.status == "FAILED"
    assert job.exit_code == expected
    assert [attempt["container"]["exitCode"] for attempt in job.attempts] == [expected]


def test_retry_rules_on_exit_code_137_see_the_killed_job(tmp_path) -> None:
    """An `evaluateOnExit` rule written for Batch (onExitCode 137: EXIT) decides the killed job's fate in the twin."""
    command = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    retry = {"attempts": 3, "evaluateOnExit": [{"onExitCode": "137", "action": "EXIT"}]}
    job = _job(command, retry)

    _runtime(tmp_path).run(job)

    assert job.exit_code == 137
    assert len(job.attempts) == 1  # EXIT, not the default RETRY
