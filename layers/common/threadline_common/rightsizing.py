"""Right-sizing hints: each step's measured peak memory and CPU use against what its jobs asked for.

Every job attempt writes a usage record as it exits (jobs/jobkit/usage.py): the
peak resident memory of its process tree, its CPU seconds and its wall seconds.
Here those records meet the attempts' resource requests (read as cost.py reads
them; in a multi-container task, the container named like the step, else the
largest, since only the main container measures) and each step gets a hint:

- memory, lower: the peak is under 50 % of the request. Ask for the peak plus
  25 % headroom, rounded up to 256 MiB. Half the request idle is worth a change;
  25 % covers run-to-run variation in the input and the gap between the
  process tree's RSS and the container's own memory figure (page cache).
- memory, raise: the peak is over 90 % of the request, or an attempt ran out of
  memory (a container reason naming `OutOfMemory`; exit code 137 alone also
  means a timeout or a kill, so it is not enough). Ask for the peak plus 25 %,
  or half again the request after an OOM: the process died before its true
  peak, which no record caught (a SIGKILLed process writes none).
- vCPUs, lower: the mean CPU use (CPU seconds / wall seconds, in vCPUs) is
  under 50 % of the request. Ask for that use plus 25 %, rounded up to whole
  vCPUs. A CPU-bound step (over 90 %) is noted but not raised: Batch does not
  cap CPU at the request on EC2, and more vCPUs help only a parallel job.
- Floors: never below 1 vCPU (the least an EC2 job may ask for) or 512 MiB
  (Batch accepts 4, but the Python runtime and its libraries need hundreds).
- GPU requests are shown, never changed: GPU use is not measured. On a GPU
  queue the instance's vCPU-per-GPU ratio may make fewer vCPUs save nothing.

A step's figures in one run are the largest over its attempts and, in a
multi-node job, over its nodes: the busiest node sets what every node needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .cost import Request, container_requests
from .lineage.batch import AttemptRecord, attempt_records, described_jobs, job_field

LOW_USE = 0.5
HIGH_USE = 0.9
HEADROOM = 1.25
OOM_GROWTH = 1.5
MEMORY_STEP_MIB = 256
MIN_MEMORY_MIB = 512
MIN_VCPUS = 1
OOM_MARKER = "outofmemory"


@dataclass(frozen=True)
class Usage:
    """One node's usage record of one attempt (jobs/jobkit/usage.py)."""

    job_id: str
    node_index: int | None
    attempt: int
    peak_mib: float
    cpu_seconds: float
    wall_seconds: float

    @property
    def cpu_vcpus(self) -> float | None:
        """Mean vCPUs busy over the attempt; None when it took no measurable time."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else None


@dataclass(frozen=True)
class Suggestion:
    memory_mib: int | None
    vcpus: int | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class StepSizing:
    """One step's measured use against its request in one run, and the hint."""

    step: str
    request: Request | None
    attempts: int
    measured: int
    peak_mib: float | None
    cpu_vcpus: float | None
    oom: bool
    suggestion: Suggestion

    def to_record(self) -> dict[str, Any]:
        """The run record's entry for the step: plain JSON numbers."""
        request = self.request
        return {
            "request": None if request is None else
            {"vcpus": request.vcpus, "memory_mib": request.memory_mib, "gpus": request.gpus},
            "attempts": self.attempts,
            "measured": self.measured,
            "peak_memory_mib": _rounded(self.peak_mib),
            "cpu_vcpus": _rounded(self.cpu_vcpus),
            "memory_use": _rounded(_ratio(self.peak_mib, request.memory_mib if request else None)),
            "cpu_use": _rounded(_ratio(self.cpu_vcpus, request.vcpus if request else None)),
            "oom": self.oom,
            "suggested_memory_mib": self.suggestion.memory_mib,
            "suggested_vcpus": self.suggestion.vcpus,
            "notes": list(self.suggestion.notes),
        }


def parse_usage(document: Any) -> Usage | None:
    """A usage record read from S3; None for anything that is not one."""
    if not isinstance(document, dict) or not isinstance(document.get("job_id"), str):
        return None
    try:
        node = document.get("node_index")
        return Usage(job_id=document["job_id"], node_index=None if node is None else int(node),
                     attempt=int(document["attempt"]), peak_mib=float(document["peak_rss_mib"]),
                     cpu_seconds=float(document["cpu_seconds"]), wall_seconds=float(document["wall_seconds"]))
    except (KeyError, TypeError, ValueError):
        return None


def ceil_to(value: float, step: int) -> int:
    """`value` rounded up to a multiple of `step`."""
    return math.ceil(value / step) * step


def suggest(request: Request, peak_mib: float | None, cpu_vcpus: float | None, oom: bool) -> Suggestion:
    """The hint for a request given the peak memory and mean CPU use seen (module docstring)."""
    memory, notes = _memory_hint(request.memory_mib, peak_mib, oom)
    vcpus, cpu_note = _vcpu_hint(request.vcpus, cpu_vcpus)
    if cpu_note:
        notes.append(cpu_note)
    if request.gpus:
        notes.append(f"{request.gpus} GPU(s) kept: GPU use is not measured")
    return Suggestion(memory_mib=memory, vcpus=vcpus, notes=tuple(notes))


def _memory_hint(requested: int, peak: float | None, oom: bool) -> tuple[int | None, list[str]]:
    if oom:
        target = ceil_to(max(requested, peak or 0.0) * OOM_GROWTH, MEMORY_STEP_MIB)
        return target, [f"memory: an attempt ran out of its {requested} MiB; ask for {target} MiB"]
    if peak is None:
        return None, ["memory: no usage measured"]
    use = peak / requested if requested > 0 else math.inf
    if use > HIGH_USE:
        target = max(ceil_to(peak * HEADROOM, MEMORY_STEP_MIB), requested + MEMORY_STEP_MIB)
        return target, [f"memory: peak {peak:.0f} MiB is {use:.0%} of {requested} MiB; ask for {target} MiB"]
    if use < LOW_USE:
        target = max(MIN_MEMORY_MIB, ceil_to(peak * HEADROOM, MEMORY_STEP_MIB))
        if target < requested:
            return target, [f"memory: peak {peak:.0f} MiB is {use:.0%} of {requested} MiB; {target} MiB would do"]
    return None, [f"memory: peak {peak:.0f} MiB is {use:.0%} of {requested} MiB; fits"]


def _vcpu_hint(requested: float, used: float | None) -> tuple[int | None, str | None]:
    if used is None or requested <= 0:
        return None, None
    use = used / requested
    if use < LOW_USE:
        target = max(MIN_VCPUS, math.ceil(used * HEADROOM))
        if target < requested:
            return target, f"vCPU: {used:.2f} of {requested:g} busy on average ({use:.0%}); {target} would do"
    if use > HIGH_USE:
        return None, f"vCPU: {used:.2f} of {requested:g} busy on average ({use:.0%}); CPU-bound"
    return None, None


def run_sizing(jobs: dict[str, Any], failures: dict[str, Any], usage: Iterable[Usage]) -> dict[str, StepSizing]:
    """Each step of a run (the state machine's `jobs` and `failures`) with its usage, in pipeline order."""
    by_attempt: dict[tuple[str, int], list[Usage]] = {}
    for record in usage:
        by_attempt.setdefault((record.job_id, record.attempt), []).append(record)
    per_step: dict[str, list[tuple[AttemptRecord, Request | None, bool, list[Usage]]]] = {}
    for key, description in described_jobs(jobs, failures):
        try:
            records = attempt_records(key, description, first_seq=1)
        except ValueError:
            continue
        for index, attempt in enumerate(records):
            if attempt.started_at is None:
                continue  # it never ran: nothing was used
            request = measured_request(description, attempt.step)
            oom = _ran_out_of_memory(description, index, last=index == len(records) - 1)
            nodes = by_attempt.get((attempt.job_id, attempt.attempt), [])
            per_step.setdefault(attempt.step, []).append((attempt, request, oom, nodes))
    return {step: _step_sizing(step, attempts) for step, attempts in per_step.items()}


def measured_request(description: dict[str, Any], step: str) -> Request | None:
    """The request of the container that measures: the one named like the step, else the largest."""
    requests = container_requests(description)
    if not requests:
        return None
    return requests.get(step) or requests.get("main") or max(requests.values(), key=lambda r: r.memory_mib)


def _step_sizing(step: str, attempts: list[tuple[AttemptRecord, Request | None, bool, list[Usage]]]) -> StepSizing:
    request = next((request for _, request, _, _ in reversed(attempts) if request is not None), None)
    measured = [nodes for _, _, _, nodes in attempts if nodes]
    peaks = [node.peak_mib for nodes in measured for node in nodes]
    cpus = [cpu for nodes in measured for node in nodes if (cpu := node.cpu_vcpus) is not None]
    peak = max(peaks, default=None)
    cpu = max(cpus, default=None)
    oom = any(oom for _, _, oom, _ in attempts)
    if request is None:
        suggestion = Suggestion(None, None, ("no resource request in the job description",))
    else:
        suggestion = suggest(request, peak, cpu, oom)
    return StepSizing(step=step, request=request, attempts=len(attempts), measured=len(measured),
                      peak_mib=peak, cpu_vcpus=cpu, oom=oom, suggestion=suggestion)


def _ran_out_of_memory(description: dict[str, Any], index: int, *, last: bool) -> bool:
    """Whether attempt `index` ended for want of memory, by the reasons Batch gave it or its containers."""
    attempts = [a for a in (job_field(description, "Attempts") or []) if isinstance(a, dict)]
    places: list[Any] = []
    if index < len(attempts):
        attempt = attempts[index]
        places += [attempt, job_field(attempt, "Container")]
        tasks = job_field(attempt, "TaskProperties") or []
        places += [container for task in tasks for container in job_field(task, "Containers") or []]
    if last:
        places += [description, job_field(description, "Container")]
    reasons = [job_field(place, name) for place in places for name in ("StatusReason", "Reason")]
    return any(isinstance(reason, str) and OOM_MARKER in reason.lower() for reason in reasons)


def _ratio(used: float | None, requested: float | None) -> float | None:
    if used is None or not requested:
        return None
    return used / requested


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
