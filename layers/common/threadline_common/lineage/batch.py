"""AWS Batch job descriptions, as the state machine collects them, turned into attempt records.

A `.sync` task's output is the DescribeJobs job in PascalCase; a failed one
reaches the state machine as `{"Error", "Cause", "Job"}` where `Job` is the
Cause (the same job description) parsed. Field names are read in PascalCase
first and camelCase second, so a raw DescribeJobs answer works as well.

A multi-container job (`ecsProperties`) has no `Container` on its attempts: each
attempt lists its ECS task (`TaskProperties`), and the task its containers (`Name`,
`ExitCode`, `Reason`, `LogStreamName`). A multi-node job's attempts list no tasks:
each node is a child job `<JobId>#<N>` (`NodeDetails.NodeIndex`) whose own attempts
hold its task, and the node's attempt N is the parent's attempt N, since every
attempt of the parent reruns every node (`node_containers`). Whether a container is
essential, and its image, are in the job's container properties:
`EcsProperties.TaskProperties[].Containers[]` (a node's own description has its node
range's), or per node range in `NodeProperties.NodeRangeProperties[].EcsProperties...`.
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
class ContainerRecord:
    """One container of one node's task in a multi-container attempt: a Container node."""

    attempt_id: str
    node_index: int
    name: str
    essential: bool | None  # None: the job description does not declare the container
    exit_code: int | None
    reason: str | None
    log_stream: str | None
    image: str | None

    @property
    def container_id(self) -> str:
        return f"{self.attempt_id}/{self.node_index}/{self.name}"

    @property
    def decides(self) -> bool:
        """Whether the attempt ends as this container does: an essential one (ECS's default when undeclared)."""
        return self.essential is not False


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
    containers: tuple[ContainerRecord, ...] = ()  # a multi-container attempt's; () for a plain one

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


def described_jobs(jobs: dict[str, Any], failures: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(job key, description) of a run's `jobs` and `failures` (the state machine's), in pipeline order.

    A key in both is read from `jobs`; an entry without a description to read is left out.
    """
    entries = {**failures, **jobs}
    return [(key, description) for key in sorted(entries, key=job_key_order)
            if (description := job_description(entries[key])) is not None]


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
        attempt_id = f"{job_id}#{index + 1}"
        containers = attempt_containers(attempt_id, attempt, description, last=last)
        attempt_container = _deciding_container(containers) or job_field(attempt, "Container") or {}
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
                attempt_id=attempt_id,
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
                image=_image(container, node_properties) or essential_image(description),
                parameters=parameters,
                log_stream=job_field(attempt_container, "LogStreamName") or job_field(container, "LogStreamName"),
                started_at=epoch_ms_to_iso(started_at),
                ended_at=epoch_ms_to_iso(ended_at),
                containers=containers,
            )
        )
    return records


def attempt_containers(attempt_id: str, attempt: dict[str, Any], description: dict[str, Any], *,
                       last: bool = False) -> tuple[ContainerRecord, ...]:
    """The containers of every node's task in one attempt, in node order ((): not a multi-container attempt).

    The last attempt, when it ran but lists no tasks, reads the job's own `EcsProperties`
    containers, as a plain job's last attempt reads the job's `Container`.
    """
    tasks = [t for t in (job_field(attempt, "TaskProperties") or []) if isinstance(t, dict)]
    if not tasks and last and attempt and not job_field(attempt, "Container"):
        tasks = [t for t in (job_field(job_field(description, "EcsProperties"), "TaskProperties") or [])
                 if isinstance(t, dict)]
    own_node = _int(job_field(job_field(description, "NodeDetails"), "NodeIndex"))
    records = []
    for position, task in enumerate(tasks):
        node_index = own_node if own_node is not None else position
        declared = _declared_containers(description, node_index)
        for container in job_field(task, "Containers") or []:
            name = job_field(container, "Name")
            if not isinstance(container, dict) or not isinstance(name, str) or not name:
                continue
            properties = declared.get(name)
            records.append(ContainerRecord(
                attempt_id=attempt_id,
                node_index=node_index,
                name=name,
                essential=_essential(properties),
                exit_code=_int(job_field(container, "ExitCode")),
                reason=job_field(container, "Reason") or None,
                log_stream=job_field(container, "LogStreamName") or None,
                image=job_field(container, "Image") or job_field(properties, "Image") or None,
            ))
    return tuple(records)


def node_containers(description: dict[str, Any]) -> tuple[ContainerRecord, ...]:
    """The containers a node `<JobId>#<N>` of a multi-node job ran, each under its parent's attempt.

    The node's attempt N is the parent's attempt N (`<JobId>#N`): each attempt of the
    parent reruns every node.
    """
    job_id = job_field(description, "JobId")
    if not isinstance(job_id, str) or "#" not in job_id:
        raise ValueError(f"{job_id!r} is not a node of a multi-node job (<JobId>#<N>)")
    parent = parent_job_id(job_id)
    attempts = [a for a in (job_field(description, "Attempts") or []) if isinstance(a, dict)]
    return tuple(container for index, attempt in enumerate(attempts)
                 for container in attempt_containers(f"{parent}#{index + 1}", attempt, description,
                                                     last=index == len(attempts) - 1))


def parent_job_id(job_id: str) -> str:
    """The multi-node job a node `<JobId>#<N>` belongs to (a job's own id unchanged)."""
    return job_id.partition("#")[0]


def _essential(properties: dict[str, Any] | None) -> bool | None:
    """A declared container's `Essential` (true unless it says otherwise, as in ECS); None when undeclared."""
    if properties is None:
        return None
    return job_field(properties, "Essential") is not False


def _deciding_container(containers: tuple[ContainerRecord, ...]) -> dict[str, Any] | None:
    """The essential container whose end is the attempt's, as an attempt `Container` (None: no containers).

    The first essential one that failed, else the first that reported an exit code, else the first.
    """
    essential = [c for c in containers if c.decides]
    failed = [c for c in essential if c.exit_code not in (None, 0)]
    exited = [c for c in essential if c.exit_code is not None]
    candidates = failed or exited or essential
    if not candidates:
        return None
    chosen = candidates[0]
    return {"ExitCode": chosen.exit_code, "Reason": chosen.reason, "LogStreamName": chosen.log_stream}


def _declared_containers(description: dict[str, Any], node_index: int) -> dict[str, dict[str, Any]]:
    """The job's container properties for one node, by container name."""
    ecs = job_field(description, "EcsProperties")
    if not ecs:
        node_ranges = job_field(job_field(description, "NodeProperties"), "NodeRangeProperties") or []
        ecs = next((job_field(r, "EcsProperties") for r in node_ranges
                    if _targets(job_field(r, "TargetNodes"), node_index) and job_field(r, "EcsProperties")), None)
    declared: dict[str, dict[str, Any]] = {}
    for task in job_field(ecs, "TaskProperties") or []:
        for container in job_field(task, "Containers") or []:
            name = job_field(container, "Name")
            if isinstance(container, dict) and isinstance(name, str):
                declared.setdefault(name, container)
    return declared


def _targets(target_nodes: Any, node_index: int) -> bool:
    """Whether a node range (`0:`, `1:3`, `:2`, `4`) covers the node; ranges are inclusive."""
    if not isinstance(target_nodes, str):
        return False
    start, _, end = target_nodes.partition(":") if ":" in target_nodes else (target_nodes, "", target_nodes)
    low, high = _int(start.strip()), _int(end.strip())
    return (low is None or node_index >= low) and (high is None or node_index <= high)


def essential_image(description: dict[str, Any]) -> str | None:
    """A multi-container job's image: its first essential container's, on its main node."""
    main_node = _int(job_field(job_field(description, "NodeProperties"), "MainNode")) or 0
    declared = _declared_containers(description, main_node).values()
    return next((job_field(c, "Image") for c in declared if job_field(c, "Essential") is not False
                 and job_field(c, "Image")), None)


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
