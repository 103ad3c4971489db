"""The twin's Batch scheduler on a fake clock: capacity, FIFO and fair-share order, decay, reservation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from threadline.twin.batch_capacity import EnvironmentCapacity, Resources, environment_capacity, job_needs
from threadline.twin.batch_scheduler import BatchScheduler, SharePolicy

ONE = Resources(1, 1024, 0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _environment(vcpus: float, gpus: int = 0) -> EnvironmentCapacity:
    room = Resources(vcpus, int(vcpus) * 4096, gpus)
    return EnvironmentCapacity(room, room)


def _scheduler(vcpus: float = 2, policy: SharePolicy | None = None, host_slots: int = 64,
               clock: Clock | None = None) -> BatchScheduler:
    scheduler = BatchScheduler(host_slots, clock or Clock())
    scheduler.add_environment("ce", _environment(vcpus))
    scheduler.add_queue("q", ["ce"], 1, policy)
    return scheduler


def _started(scheduler: BatchScheduler) -> list[str]:
    return [ticket.job_id for ticket in scheduler.started]


def test_a_job_waits_runnable_until_an_ending_attempt_frees_its_room() -> None:
    scheduler = _scheduler(vcpus=2)
    first, second = (scheduler.submit(name, "q", None, 0, Resources(2, 1024)) for name in ("a", "b"))
    assert first.granted.is_set() and not second.granted.is_set()
    scheduler.release(first)
    assert second.granted.is_set() and second.environment == "ce"


def test_a_queue_fills_its_compute_environments_in_order() -> None:
    scheduler = BatchScheduler(64, Clock())
    scheduler.add_environment("spot", _environment(1))
    scheduler.add_environment("on-demand", _environment(1))
    scheduler.add_queue("q", ["spot", "on-demand"])
    tickets = [scheduler.submit(name, "q", None, 0, ONE) for name in ("a", "b", "c")]
    assert [t.environment for t in tickets] == ["spot", "on-demand", None]


def test_gpus_and_memory_bound_what_runs_at_once() -> None:
    scheduler = BatchScheduler(64, Clock())
    scheduler.add_environment("gpu", _environment(16, gpus=4))
    scheduler.add_queue("q", ["gpu"])
    analysis = Resources(8, 28672, 2)  # two nodes of 4 vCPUs, 14 GiB and one GPU
    tickets = [scheduler.submit(name, "q", None, 0, analysis) for name in ("a", "b", "c")]
    assert [t.granted.is_set() for t in tickets] == [True, True, False]
    assert not scheduler.fits("q", Resources(4, 1024, 8))  # more GPUs than the environment ever has


def test_the_host_slots_cap_attempts_whatever_the_capacity() -> None:
    scheduler = _scheduler(vcpus=64, host_slots=2)
    tickets = [scheduler.submit(name, "q", None, 0, ONE) for name in ("a", "b", "c")]
    assert [t.granted.is_set() for t in tickets] == [True, True, False]


def test_a_fifo_queue_starts_jobs_in_submission_order_whatever_their_share() -> None:
    scheduler = _scheduler(vcpus=1)
    scheduler.submit("blocker", "q", None, 0, ONE)
    for name, share in (("r1", "risk"), ("r2", "risk"), ("x1", "research")):
        scheduler.submit(name, "q", share, 0, ONE)
    for _ in range(3):
        scheduler.release(scheduler.started[-1])  # one vCPU: the last started is the one running
    assert _started(scheduler) == ["blocker", "r1", "r2", "x1"]


def test_fair_share_starts_the_share_with_the_lowest_weighted_usage() -> None:
    policy = SharePolicy((("risk", 1.0), ("research", 3.0)))
    scheduler = _scheduler(vcpus=4, policy=policy)
    running = [scheduler.submit(f"r{i}", "q", "risk", 0, ONE) for i in range(2)]
    running.append(scheduler.submit("x0", "q", "research", 0, ONE))
    running.append(scheduler.submit("r2", "q", "risk", 0, ONE))  # full: risk holds 3 vCPUs, research 1
    scheduler.submit("r3", "q", "risk", 0, ONE)
    scheduler.submit("x1", "q", "research", 0, ONE)
    assert scheduler.usage("q", "risk") == 3 and scheduler.usage("q", "research") == 1
    scheduler.release(running[0])  # risk 2 x 1.0 < research 1 x 3.0: risk's r3 goes first
    assert _started(scheduler)[-1] == "r3"


def test_within_a_share_the_highest_scheduling_priority_goes_first() -> None:
    scheduler = _scheduler(vcpus=1, policy=SharePolicy())
    blocker = scheduler.submit("blocker", "q", "risk", 0, ONE)
    scheduler.submit("low", "q", "risk", 0, ONE)
    scheduler.submit("high", "q", "risk", 20, ONE)
    scheduler.release(blocker)
    assert _started(scheduler) == ["blocker", "high"]


def test_usage_decays_over_the_share_decay_window() -> None:
    clock = Clock()
    scheduler = _scheduler(vcpus=4, policy=SharePolicy(decay_seconds=10), clock=clock)
    ticket = scheduler.submit("a", "q", "risk", 0, Resources(2, 1024))
    clock.now += 5
    assert scheduler.usage("q", "risk") == pytest.approx(2 + 2 * 5 / 10)  # holds 2 now, 2 x 5 s in the window
    scheduler.release(ticket)
    clock.now += 3
    assert scheduler.usage("q", "risk") == pytest.approx(2 * 5 / 10)
    clock.now += 20
    assert scheduler.usage("q", "risk") == 0


def test_weights_match_a_share_prefix_and_default_to_one() -> None:
    policy = SharePolicy((("risk", 0.5), ("lab*", 2.0)))
    assert (policy.weight("risk"), policy.weight("lab-7"), policy.weight("other")) == (0.5, 2.0, 1.0)


def test_a_compute_reservation_keeps_room_for_shares_not_yet_running() -> None:
    scheduler = _scheduler(vcpus=8, policy=SharePolicy(compute_reservation=50))
    flood = [scheduler.submit(f"r{i}", "q", "risk", 0, ONE) for i in range(8)]
    assert sum(t.granted.is_set() for t in flood) == 4  # one active share: 50 % of 8 vCPUs held back
    late = scheduler.submit("x0", "q", "research", 0, ONE)
    assert late.granted.is_set()  # the reserve is the newcomer's


def test_capacity_of_the_templates_environments() -> None:
    gpu = environment_capacity({"maxvCpus": 256, "instanceTypes": ["g6", "g5"]})
    spot = environment_capacity({"maxvCpus": 512, "instanceTypes": ["m7i", "c7i", "r6i"]})
    assert gpu.limit == Resources(16, 16 * 4096, 4) and gpu.maximum == Resources(256, 256 * 4096, 64)
    assert spot.limit == Resources(32, 32 * 8192, 0)


def test_a_job_too_big_for_the_scaled_environment_runs_alone_within_the_template_maximum() -> None:
    capacity = environment_capacity({"maxvCpus": 256, "instanceTypes": ["g6"]})
    scheduler = BatchScheduler(64, Clock())
    scheduler.add_environment("gpu", capacity)
    scheduler.add_queue("q", ["gpu"])
    big = Resources(64, 16 * 14336, 16)  # 16 analysis nodes
    small = scheduler.submit("small", "q", None, 0, Resources(4, 1024, 1))
    waiting = scheduler.submit("big", "q", None, 0, big)
    assert scheduler.fits("q", big) and not waiting.granted.is_set()
    scheduler.release(small)
    assert waiting.granted.is_set()


def test_a_multi_node_job_needs_every_node() -> None:
    container = {"resourceRequirements": [{"type": "VCPU", "value": "4"}, {"type": "MEMORY", "value": "14336"},
                                          {"type": "GPU", "value": "1"}]}
    definition = SimpleNamespace(type="multinode", node_properties={
        "numNodes": 3, "nodeRangeProperties": [{"targetNodes": "0", "container": container},
                                               {"targetNodes": "1:", "container": container}]})
    assert job_needs(SimpleNamespace(job_definition=definition)) == Resources(12, 3 * 14336, 3)


def test_a_submit_override_changes_a_containers_needs() -> None:
    definition = SimpleNamespace(type="container", node_properties=None, container_properties={
        "resourceRequirements": [{"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "7680"}]})
    job = SimpleNamespace(job_definition=definition,
                          container_overrides={"resourceRequirements": [{"type": "MEMORY", "value": "2048"}]})
    assert job_needs(job) == Resources(2, 2048, 0)
