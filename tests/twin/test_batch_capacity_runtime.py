"""Capacity in the twin's Batch runtime: jobs wait RUNNABLE for room, and a job no environment can hold is cancelled."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from threadline.twin.batch_capacity import EnvironmentCapacity, Resources
from threadline.twin.batch_runtime import MAX_RESOURCE_REASON, LocalBatchRuntime, QueueSpec
from threadline.twin.faults import FaultPlan

ENV_PROBE = ["python", "-c", "import os, time; print(os.environ['AWS_BATCH_CE_NAME']); time.sleep(0.2)"]


def _runtime(tmp_path: Path, vcpus: int, gpus: int = 0,
             actions: list[dict[str, Any]] | None = None) -> LocalBatchRuntime:
    runtime = LocalBatchRuntime(tmp_path, {}, tmp_path / "logs", FaultPlan(), slots=8)
    runtime.definition_dirs["probe"] = tmp_path
    room = Resources(vcpus, vcpus * 4096, gpus)
    runtime.scheduler.add_environment("threadline-SpotComputeEnvironment", EnvironmentCapacity(room, room))
    runtime.scheduler.add_queue("q", ["threadline-SpotComputeEnvironment"])
    runtime.queues["q"] = QueueSpec("SpotJobQueue", "q", ["threadline-SpotComputeEnvironment"], actions or [])
    return runtime


def _job(name: str, vcpus: int, gpus: int = 0) -> Any:
    requirements = [{"type": "VCPU", "value": str(vcpus)}, {"type": "MEMORY", "value": "1024"}]
    if gpus:
        requirements.append({"type": "GPU", "value": str(gpus)})
    definition = SimpleNamespace(name="probe", type="container", node_properties=None, parameters={},
                                 arn="arn:aws:batch:us-east-1:123456789012:job-definition/probe:1",
                                 container_properties={"command": ENV_PROBE, "resourceRequirements": requirements},
                                 retry_strategy={}, timeout=None)
    return SimpleNamespace(job_id=name, job_name=name, job_definition=definition, parameters={},
                           job_queue=SimpleNamespace(name="q"), container_overrides={}, timeout=None, stop=False,
                           job_stopped_reason=None, attempts=[], status="SUBMITTED")


def _run_all(runtime: LocalBatchRuntime, jobs: list[Any]) -> None:
    threads = [threading.Thread(target=runtime.run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


def test_a_job_waits_runnable_until_the_attempt_before_it_frees_the_room(tmp_path) -> None:
    runtime = _runtime(tmp_path, vcpus=2)
    first, second = _job("first", 2), _job("second", 2)

    _run_all(runtime, [first, second])

    assert first.status == second.status == "SUCCEEDED"
    records = sorted(runtime.jobs.values(), key=lambda record: record.started_at or 0)
    assert records[1].started_at >= records[0].stopped_at  # one at a time: 2 + 2 vCPUs do not fit in 2
    log = (tmp_path / "logs" / "probe" / "first" / "attempt-1.log").read_text()
    assert log.strip() == "threadline-SpotComputeEnvironment"  # AWS_BATCH_CE_NAME: where it was placed


def test_a_job_no_environment_can_hold_is_cancelled_by_the_misconfiguration_time_limit(tmp_path) -> None:
    action = {"reason": MAX_RESOURCE_REASON, "state": "RUNNABLE", "maxTimeSeconds": 600, "action": "CANCEL"}
    runtime = _runtime(tmp_path, vcpus=16, gpus=4, actions=[action])
    greedy = _job("greedy", 4, gpus=8)

    _run_all(runtime, [greedy])

    assert greedy.status == "FAILED" and greedy.attempts == []
    assert greedy.job_stopped_reason == f"Canceled by JobStateTimeLimit action due to reason: {MAX_RESOURCE_REASON}"


def test_a_job_terminated_while_runnable_gives_its_place_to_the_next(tmp_path) -> None:
    runtime = _runtime(tmp_path, vcpus=3)
    blocker = runtime.scheduler.submit("blocker", "q", None, 0, Resources(2, 1024))  # holds 2 of 3 vCPUs throughout
    head, behind = _job("head", 2), _job("behind", 1)  # FIFO: `behind` would fit, but waits behind `head`
    threads = [threading.Thread(target=runtime.run, args=(job,)) for job in (head, behind)]
    threads[0].start()
    _until(lambda: runtime.scheduler.waiting() == ["head"])
    threads[1].start()
    _until(lambda: runtime.scheduler.waiting() == ["head", "behind"])

    head.stop, head.job_stopped_reason = True, "TerminateJob"  # as TerminateJob sets them
    threads[1].join(60)
    threads[0].join(60)

    assert head.status == "FAILED" and head.job_stopped_reason == "TerminateJob" and head.attempts == []
    assert behind.status == "SUCCEEDED"
    runtime.scheduler.release(blocker)


def _until(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)
