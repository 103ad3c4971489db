"""AWS Batch job descriptions, as the state machine collects them, turned into attempt records.

A `.sync` task's output is the DescribeJobs job in PascalCase; a failed one
reaches the state machine as `{"Error", "Cause", "Job"}` where `Job` is the
Cause (the same job description) parsed. Field names are read in PascalCase
first and camelCase second, so a raw DescribeJobs answer works as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import pipeline

SPOT, ON_DEMAND, GPU, GPU_FALLBACK = pipeline.SPOT, pipeline.ON_DEMAND, pipeline.GPU, pipeline.GPU_FALLBACK

# What a fallback job's key adds to its step's name (`preprocess_on_demand`, `analysis_fallback`).
FALLBACK_SUFFIXES: tuple[str, ...] = tuple(dict.fromkeys(
    job.key.removeprefix(step.name) for step, job in pipeline.jobs() if job.fallback))
# For a step the manifest does not know: every parameter some step writes is a write, every
# other parameter some step reads is a read.
DEFAULT_PRODUCED: tuple[str, ...] = tuple(dict.fromkeys(name for step in pipeline.STEPS for name in step.writes))
DEFAULT_CONSUMED: tuple[str, ...] = tuple(dict.fromkeys(
    name for step in pipeline.STEPS for name in step.reads if name not in DEFAULT_PRODUCED))
# The parameter naming the run's input file: its dataset id carries the S3 version id,
# which only the run's own events (`source`) know.
RUN_INPUT_PARAMETERS = (pipeline.SOURCE_PARAMETER,)

# Job name prefixes (`<prefix>-<run id>`, statemachines/pipeline.asl.json) -> the key the
# state machine files the job under in `jobs`/`failures`. Longest prefix first.
JOB_NAME_PREFIXES: tuple[tuple[str, str], ...] = tuple(sorted(
    ((job.job_name, job.key) for _, job in pipeline.jobs()), key=lambda pair: -len(pair[0])))
# Queue names carry the template's logical id (`<stack>-OnDemandJobQueue`, or CloudFormation's
# `OnDemandJobQueue-<random>`): what a job on a fallback queue adds to its job key. The
# primary queues (Spot, GPU) add nothing.
QUEUE_SUFFIXES: tuple[tuple[str, str], ...] = tuple(dict.fromkeys(
    (job.queue.lower(), job.key.removeprefix(step.name)) for step, job in pipeline.jobs() if job.fallback))
# Maps whose keys are data (job parameters, tags, log driver options, Kubernetes labels and
# resources), kept as they are when a description's field names are converted.
VERBATIM_MAPS = frozenset({"parameters", "tags", "options", "labels", "annotations", "limits", "requests"})


@dataclass(frozen=True)
class AttemptRecord:
    """One Batch attempt of one job: a StepAttempt node."""

    attempt_id: str
    step: str
    job_key: str
    fallback: bool
    seq: int
    job_id: str
    job_name: str | None
    queue: str | None
    capacity: str
    job_definition: str | None
    attempt: int
    status: str
    status_reason: str | None
    exit_code: int | None
    node_count: int
    image: str | None
    parameters: dict[str, str]
    log_stream: str | None
    started_at: str | None
    ended_at: str | None

    @property
    def parameters_json(self) -> str:
        return json.dumps(self.parameters, sort_keys=True)


def split_job_key(job_key: str) -> tuple[str, bool]:
    """`preprocess_on_demand` -> ("preprocess", True); `analysis` -> ("analysis", False)."""
    for suffix in FALLBACK_SUFFIXES:
        if job_key.endswith(suffix) and len(job_key) > len(suffix):
            return job_key[: -len(suffix)], True
    return job_key, False


def job_key_order(job_key: str) -> tuple[int, str, int]:
    """Steps in pipeline order (unknown steps after, by name), the primary job before its fallback."""
    step, fallback = split_job_key(job_key)
    position = pipeline.position(step)
    return len(pipeline.STEPS) if position is None else position, step, int(fallback)


def job_description(value: Any) -> dict[str, Any] | None:
    """The job description inside a `jobs`/`failures` entry, or None when there is none to read."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("Job"), dict):
        return value["Job"]
    jobs = value.get("Jobs") or value.get("jobs")
    if isinstance(jobs, list) and jobs and isinstance(jobs[0], dict):
        return jobs[0]
    if job_field(value, "JobId"):
        return value
    if isinstance(value.get("Cause"), str):
        return job_description(value["Cause"])
    return None


def job_key_for(job_name: str | None, queue: str | None, run_id: str | None = None) -> str | None:
    """The `jobs`/`failures` key of a threadline job, from its name and queue; None for another job.

    The name gives the step and whether the state machine ran it as the fallback
    (`preprocess-ondemand-<run id>`); a job on the On-Demand or GPU fallback queue is
    the fallback whatever its name says.
    """
    name = job_name or ""
    if run_id and name.endswith(f"-{run_id}"):
        name = name[: -len(run_id) - 1]
    key = next((k for prefix, k in JOB_NAME_PREFIXES if name == prefix), None)
    if key is None:
        key = next((k for prefix, k in JOB_NAME_PREFIXES if name.startswith(f"{prefix}-")), None)
    if key is None:
        return None
    step, fallback = split_job_key(key)
    queue_name = (queue or "").rsplit("/", 1)[-1].lower()
    queue_suffix = next((suffix for name_part, suffix in QUEUE_SUFFIXES if name_part in queue_name), None)
    if queue_suffix and not fallback:
        return step + queue_suffix
    return key


def pascal_case_keys(value: Any) -> Any:
    """A camelCase DescribeJobs answer with its field names in PascalCase, as Step Functions reports it.

    `jobId` -> `JobId`, `container.exitCode` -> `Container.ExitCode`, `attempts[].statusReason`
    -> `Attempts[].StatusReason`; the keys of data maps (VERBATIM_MAPS: `parameters`, `tags`, ...)
    stay as they are.
    """
    if isinstance(value, list):
        return [pascal_case_keys(item) for item in value]
    if not isinstance(value, dict):
        return value
    converted: dict[str, Any] = {}
    for key, item in value.items():
        name = str(key)
        if name in VERBATIM_MAPS and isinstance(item, dict):
            converted[name[:1].upper() + name[1:]] = dict(item)
        else:
            converted[name[:1].upper() + name[1:]] = pascal_case_keys(item)
    return converted


def derive_capacity(queue: str | None, *, fallback: bool, multinode: bool) -> str:
    """SPOT, ON_DEMAND, GPU or GPU_FALLBACK, read from the queue's name or ARN.

    Queue names come from the template's logical ids (SpotJobQueue, OnDemandJobQueue,
    GpuJobQueue, GpuFallbackJobQueue) or from explicit names saying the same. A
    multi-node job on a queue whose name says nothing runs on the GPU queues: in
    threadline only the GPU analysis is multi-node (and Spot cannot run it).
    """
    name = (queue or "").rsplit("/", 1)[-1].lower()
    if "spot" in name:
        return SPOT
    gpu = any(word in name for word in ("gpu", "hpc")) or (multinode and "demand" not in name)
    if gpu:
        return GPU_FALLBACK if ("fallback" in name or fallback) else GPU
    return ON_DEMAND


def epoch_ms_to_iso(value: Any) -> str | None:
    """Batch timestamps (epoch milliseconds) as ISO-8601 UTC strings; ISO strings pass through."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value / 1000, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return None


def attempt_records(job_key: str, description: dict[str, Any], first_seq: int) -> list[AttemptRecord]:
    """One record per entry of the job's Attempts list (at least one, for a job that never ran).

    Every attempt but the last failed (Batch retried it); the last one carries the
    job's final status, and the job-level status reason and exit code where the
    attempt has none.
    """
    step, fallback = split_job_key(job_key)
    job_id = job_field(description, "JobId")
    if not isinstance(job_id, str) or not job_id:
        raise ValueError(f"job {job_key!r} has no JobId")
    attempts = [a for a in (job_field(description, "Attempts") or []) if isinstance(a, dict)] or [{}]
    container = job_field(description, "Container") or {}
    node_properties = job_field(description, "NodeProperties") or {}
    queue = job_field(description, "JobQueue")
    multinode = bool(node_properties)
    node_count = _int(job_field(node_properties, "NumNodes")) or 1
    raw_parameters = job_field(description, "Parameters")
    parameters = {str(k): str(v) for k, v in raw_parameters.items()} if isinstance(raw_parameters, dict) else {}
    final_status = str(job_field(description, "Status") or "UNKNOWN")
    records = []
    for index, attempt in enumerate(attempts):
        last = index == len(attempts) - 1
        attempt_container = job_field(attempt, "Container") or {}
        exit_code = _int(job_field(attempt_container, "ExitCode"))
        reason = job_field(attempt, "StatusReason") or job_field(attempt_container, "Reason")
        started_at = job_field(attempt, "StartedAt")
        ended_at = job_field(attempt, "StoppedAt")
        if last:
            exit_code = exit_code if exit_code is not None else _int(job_field(container, "ExitCode"))
            reason = job_field(description, "StatusReason") or reason or job_field(container, "Reason")
            started_at = started_at if started_at is not None else job_field(description, "StartedAt")
            ended_at = ended_at if ended_at is not None else job_field(description, "StoppedAt")
        records.append(
            AttemptRecord(
                attempt_id=f"{job_id}#{index + 1}",
                step=step,
                job_key=job_key,
                fallback=fallback,
                seq=first_seq + index,
                job_id=job_id,
                job_name=job_field(description, "JobName"),
                queue=queue,
                capacity=derive_capacity(queue, fallback=fallback, multinode=multinode),
                job_definition=job_field(description, "JobDefinition"),
                attempt=index + 1,
                status=final_status if last else "FAILED",
                status_reason=reason,
                exit_code=exit_code,
                node_count=node_count,
                image=_image(container, node_properties),
                parameters=parameters,
                log_stream=job_field(attempt_container, "LogStreamName") or job_field(container, "LogStreamName"),
                started_at=epoch_ms_to_iso(started_at),
                ended_at=epoch_ms_to_iso(ended_at),
            )
        )
    return records


def dataset_parameters(step: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(parameters naming what the step reads, parameters naming what it writes), from the manifest."""
    try:
        known = pipeline.step(step)
    except KeyError:
        return DEFAULT_CONSUMED, DEFAULT_PRODUCED
    return known.reads, known.writes


def _image(container: dict[str, Any], node_properties: dict[str, Any]) -> str | None:
    image = job_field(container, "Image")
    if image:
        return image
    for node_range in job_field(node_properties, "NodeRangeProperties") or []:
        image = job_field(job_field(node_range, "Container") or {}, "Image")
        if image:
            return image
    return None


def job_field(mapping: Any, name: str) -> Any:
    """`mapping[name]` in PascalCase, else in camelCase, else None."""
    if not isinstance(mapping, dict):
        return None
    if name in mapping:
        return mapping[name]
    return mapping.get(name[:1].lower() + name[1:])


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None
