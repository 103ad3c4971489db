"""Fair share in the twin's Batch runtime: quick job processes of two teams contend for one compute environment.

The policy gives `risk` a weight factor of 1 and `research` 3: Batch gives a
lower weight factor more of the compute (1/3 of the weight, 3 times the share).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from threadline.twin.batch_capacity import EnvironmentCapacity, Resources
from threadline.twin.batch_runtime import LocalBatchRuntime
from threadline.twin.batch_scheduler import SharePolicy
from threadline.twin.faults import FaultPlan

POLICY = SharePolicy((("risk", 1.0), ("research", 3.0)))
VCPUS = 8  # one-vCPU jobs: eight run at once
QUICK = ["python", "-c", "import time; time.sleep(0.15)"]


def _runtime(tmp_path: Path, policy: SharePolicy | None) -> LocalBatchRuntime:
    runtime = LocalBatchRuntime(tmp_path, {}, tmp_path / "logs", FaultPlan(), slots=64)
    runtime.definition_dirs["quick"] = tmp_path
    room = Resources(VCPUS, VCPUS * 2048, 0)
    runtime.scheduler.add_environment("ce", EnvironmentCapacity(room, room))
    runtime.scheduler.add_queue("shared", ["ce"], 1, policy)
    return runtime


def _gated(gate: Path) -> list[str]:
    """A job that holds its vCPU until `gate` exists: the slots free only when the test says so."""
    return ["python", "-c", f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.01)"]


def _job(name: str, share: str, command: list[str] = QUICK) -> Any:
    """What the runtime reads of a moto Batch job that SubmitJob gave a share identifier."""
    definition = SimpleNamespace(name="quick", type="container", node_properties=None, parameters={},
                                 arn="arn:aws:batch:us-east-1:123456789012:job-definition/quick:1",
                                 container_properties={"command": command, "resourceRequirements": [
                                     {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]},
                                 retry_strategy={}, timeout=None)
    return SimpleNamespace(job_id=name, job_name=name, job_definition=definition, parameters={},
                           job_queue=SimpleNamespace(name="shared"), container_overrides={}, timeout=None,
                           stop=False, job_stopped_reason=None, attempts=[], status="SUBMITTED",
                           share_identifier=share, scheduling_priority=None)


class Burst:
    """Jobs run by the runtime, one thread each, as moto runs them."""

    def __init__(self, runtime: LocalBatchRuntime, command: list[str] = QUICK) -> None:
        self.runtime = runtime
        self.command = command
        self.jobs: list[Any] = []
        self.threads: list[threading.Thread] = []

    def submit(self, share: str, count: int) -> None:
        for _ in range(count):
            job = _job(f"{share}-{sum(j.share_identifier == share for j in self.jobs)}", share, self.command)
            thread = threading.Thread(target=self.runtime.run, args=(job,), daemon=True)
            self.jobs.append(job)
            self.threads.append(thread)
            thread.start()

    def wait_for(self, condition: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"only {len(self.started())} jobs started"
            time.sleep(0.01)

    def started(self) -> list[str]:
        return [ticket.job_id for ticket in self.runtime.scheduler.started]

    def stop(self) -> None:
        for job in self.jobs:
            job.stop = True
        for thread in self.threads:
            thread.join(30)


def test_weights_of_3_to_1_give_about_3_to_1_of_the_dispatches_under_contention(tmp_path) -> None:
    burst = Burst(_runtime(tmp_path, POLICY))
    for _ in range(60):  # both teams keep 60 jobs waiting: more than the 48 dispatches counted
        burst.submit("risk", 1)
        burst.submit("research", 1)
    try:
        burst.wait_for(lambda: len(burst.started()) >= VCPUS + 40)
    finally:
        burst.stop()
    contended = burst.started()[VCPUS:VCPUS + 40]  # after the first eight, which start as they arrive
    counts = Counter(name.split("-")[0] for name in contended)
    print(f"dispatches under contention (40 after the first {VCPUS}): {dict(counts)}")
    assert 2.2 <= counts["risk"] / counts["research"] <= 4.0, counts


def _flood_then_late_team(tmp_path: Path, policy: SharePolicy | None) -> list[str]:
    """`risk` floods the queue with 40 jobs; once they wait, `research` submits 4. The start order.

    The first eight hold their vCPUs until all 44 wait (a gate file), so that what starts next is the
    scheduler's choice alone, however slow this machine is.
    """
    gate = tmp_path / "gate"
    burst = Burst(_runtime(tmp_path, policy), _gated(gate))
    burst.submit("risk", 40)
    try:
        burst.wait_for(lambda: len(burst.started()) == VCPUS and len(burst.runtime.scheduler.waiting()) == 40 - VCPUS)
        burst.submit("research", 4)
        burst.wait_for(lambda: len(burst.runtime.scheduler.waiting()) == 44 - VCPUS)
        assert len(burst.started()) == VCPUS  # nothing ended while the gate was shut
        gate.touch()
        burst.wait_for(lambda: sum(name.startswith("research") for name in burst.started()) == 4)
    finally:
        burst.stop()
    return burst.started()


def test_one_teams_flood_does_not_starve_the_other(tmp_path) -> None:
    order = _flood_then_late_team(tmp_path, POLICY)
    late = [index for index, name in enumerate(order) if name.startswith("research")]
    print(f"fair share: research started as dispatches {late} of the flood's 40")
    # research starts first once slots free, and all of it starts while the flood still has a full
    # environment's worth waiting (first in, first out would start it last, at 40-43). `order` ends
    # where the test stopped the burst, so the bound counts all 44 jobs, not the ones started by then.
    assert late[0] == VCPUS and late[-1] < 44 - VCPUS, order


def test_a_fifo_queue_lets_the_flood_go_first(tmp_path) -> None:
    order = _flood_then_late_team(tmp_path, None)
    assert [name for name in order if name.startswith("research")] == order[-4:]
    assert len(order) == 44  # the four waited for all 40 of the flood
