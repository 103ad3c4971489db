"""The lineage events on the lineage queue (docs/design.md, "Lineage events"), parsed and checked.

Two kinds come from the state machine (`run_started`, `run_finished`); the third is
AWS Batch's own "Batch Job State Change" event, as EventBridge delivers it, for a
job that ended (SUCCEEDED or FAILED): a job of a step, or a node `<jobId>#<N>` of
the multi-node analysis, whose own attempts hold that node's containers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .batch import job_key_for, pascal_case_keys, split_job_key

RUN_STARTED = "run_started"
RUN_FINISHED = "run_finished"
JOB_STATE_CHANGED = "job_state_changed"  # the name the function's logs and results give the Batch event

BATCH_SOURCE = "aws.batch"
BATCH_JOB_STATE_CHANGE = "Batch Job State Change"
RECORDED_JOB_STATUSES = ("SUCCEEDED", "FAILED")  # a job's end; earlier statuses are not recorded


class LineageEventError(ValueError):
    """The event does not follow the lineage event contract; it is logged and skipped."""


class NotRecorded(LineageEventError):
    """A well-formed event lineage has nothing to record from: a Batch job that is not
    threadline's (no `run_id` parameter, or a name none of the steps uses), or a status
    that does not end the job. Logged and skipped, like a malformed event, never retried."""


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    execution_arn: str | None
    source: dict[str, Any]
    at: str | None


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    status: str
    execution_arn: str | None
    source: dict[str, Any]
    at: str | None
    jobs: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    plan: dict[str, Any] = field(default_factory=dict)

    @property
    def reused(self) -> dict[str, dict[str, Any]]:
        """Steps this run did not run because it reused an earlier attempt's outputs (by step)."""
        reused = self.plan.get("reused") if isinstance(self.plan, dict) else None
        if not isinstance(reused, dict):
            return {}
        return {step: entry for step, entry in reused.items()
                if isinstance(entry, dict) and isinstance(entry.get("attempt_id"), str)}


@dataclass(frozen=True)
class JobStateChanged:
    """One threadline Batch job that ended, from Batch's own EventBridge event.

    `job` is the event's job description with its field names in PascalCase, the
    shape `jobs`/`failures` entries of `run_finished` have, so the same code reads both.
    """

    run_id: str
    job_key: str
    status: str
    job: dict[str, Any]
    at: str | None = None
    node_index: int | None = None  # a node `<jobId>#<N>` of a multi-node job: its containers only

    @property
    def step(self) -> str:
        return split_job_key(self.job_key)[0]

    @property
    def job_id(self) -> str:
        return str(self.job["JobId"])


LineageEvent = RunStarted | RunFinished | JobStateChanged


def is_batch_event(event: Any) -> bool:
    """An EventBridge event from AWS Batch (rather than one of the state machine's own)."""
    return isinstance(event, dict) and event.get("source") == BATCH_SOURCE and "detail-type" in event


def parse_lineage_event(event: Any) -> LineageEvent:
    """Check `event` against the contract; raise LineageEventError saying what is wrong
    (NotRecorded for a well-formed event that lineage has no use for)."""
    if isinstance(event, str):
        try:
            event = json.loads(event)
        except json.JSONDecodeError as exc:
            raise LineageEventError(f"the event is a string but not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise LineageEventError(f"the event must be a JSON object, not {type(event).__name__}")
    if is_batch_event(event):
        return parse_job_state_change(event)
    kind = event.get("event")
    run_id = _required_text(event, "run_id")
    execution_arn = _optional_text(event, "execution_arn")
    source = _source(event)
    at = _optional_text(event, "at")
    if kind == RUN_STARTED:
        return RunStarted(run_id=run_id, execution_arn=execution_arn, source=source, at=at)
    if kind == RUN_FINISHED:
        status = _required_text(event, "status").upper()
        return RunFinished(
            run_id=run_id,
            status=status,
            execution_arn=execution_arn,
            source=source,
            at=at,
            jobs=_mapping(event, "jobs"),
            failures=_mapping(event, "failures"),
            error=_error(event),
            plan=_mapping(event, "plan"),
        )
    raise LineageEventError(f"unknown lineage event {kind!r}; expected {RUN_STARTED!r}, {RUN_FINISHED!r} "
                            f"or a {BATCH_JOB_STATE_CHANGE!r} event")


def parse_job_state_change(event: dict[str, Any]) -> JobStateChanged:
    """A Batch "Job State Change" EventBridge event (camelCase detail) as a JobStateChanged."""
    detail_type = event.get("detail-type")
    if detail_type != BATCH_JOB_STATE_CHANGE:
        raise NotRecorded(f"{BATCH_SOURCE} event {detail_type!r} is not a {BATCH_JOB_STATE_CHANGE!r}")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise LineageEventError(f"the Batch event's 'detail' must be an object, got {type(detail).__name__}")
    job_id = detail.get("jobId")
    if not isinstance(job_id, str) or not job_id:
        raise LineageEventError(f"the Batch event's detail has no jobId, got {job_id!r}")
    array = detail.get("arrayProperties")
    if isinstance(array, dict) and "index" in array:
        # A child of an array job: Step Functions reports the parent, and so does lineage.
        raise NotRecorded(f"Batch job {job_id} is a child of an array job, which is recorded instead")
    node_index = _node_index(job_id, detail.get("nodeDetails"))
    job_name = detail.get("jobName") if isinstance(detail.get("jobName"), str) else None
    parameters = detail.get("parameters")
    run_id = parameters.get("run_id") if isinstance(parameters, dict) else None
    if not isinstance(run_id, str) or not run_id.strip():
        raise NotRecorded(f"Batch job {job_id} ({job_name}) has no run_id parameter: not a threadline job")
    status = str(detail.get("status") or "").upper()
    if status not in RECORDED_JOB_STATUSES:
        raise NotRecorded(f"Batch job {job_id} is {status or 'of no status'}: only a job's end "
                          f"({', '.join(RECORDED_JOB_STATUSES)}) is recorded")
    queue = detail.get("jobQueue") if isinstance(detail.get("jobQueue"), str) else None
    job_key = job_key_for(job_name, queue, run_id)
    if job_key is None:
        raise NotRecorded(f"Batch job {job_id} ({job_name}) runs none of threadline's steps")
    at = event.get("time")
    return JobStateChanged(run_id=run_id, job_key=job_key, status=status, job=pascal_case_keys(detail),
                           at=at if isinstance(at, str) and at else None, node_index=node_index)


def _node_index(job_id: str, node_details: Any) -> int | None:
    """The node of a multi-node job that `job_id` is (`nodeDetails.nodeIndex`, else `#<N>`); None for a job."""
    index = node_details.get("nodeIndex") if isinstance(node_details, dict) else None
    if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
        return index
    _, sep, suffix = job_id.partition("#")
    if not sep and node_details is None:
        return None
    if suffix.isdigit():
        return int(suffix)
    raise LineageEventError(f"Batch job {job_id} is a node of a multi-node job but names no node index "
                            f"(nodeDetails {node_details!r})")


def _required_text(event: dict[str, Any], name: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value.strip():
        raise LineageEventError(f"{name!r} must be a non-empty string, got {value!r}")
    return value


def _optional_text(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise LineageEventError(f"{name!r} must be a string, got {type(value).__name__}")
    return value or None


def _mapping(event: dict[str, Any], name: str) -> dict[str, Any]:
    value = event.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LineageEventError(f"{name!r} must be an object keyed by step, got {type(value).__name__}")
    return value


def _source(event: dict[str, Any]) -> dict[str, Any]:
    source = event.get("source")
    if source is None:
        return {}
    if not isinstance(source, dict):
        raise LineageEventError(f"'source' must be an object, got {type(source).__name__}")
    if not source.get("uri") and not (source.get("bucket") and source.get("key")):
        raise LineageEventError("'source' needs a 'uri' or a 'bucket' and a 'key'")
    return source


def _error(event: dict[str, Any]) -> dict[str, Any] | None:
    error = event.get("error")
    if error is None:
        return None
    if not isinstance(error, dict):
        raise LineageEventError(f"'error' must be an object with Error and Cause, got {type(error).__name__}")
    return error
