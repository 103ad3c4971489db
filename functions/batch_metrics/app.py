"""The metrics AWS Batch does not publish: job failures and RUNNABLE waits, per queue and job definition.

Batch has no CloudWatch metric for a job queue's backlog, so a job stuck
RUNNABLE (no capacity, a compute environment that cannot place it) or a job
definition that keeps failing would raise no alarm. This function keeps those
metrics in the namespace `threadline/Batch`, through PutMetricData:

- `JobsFailed` (Count, dimension `JobDefinition`: the definition's name without
  revision), one per FAILED job, from "Batch Job State Change" events;
- `RunnableWaitSeconds` (Seconds, dimension `JobQueue`: the queue's name), how
  long a job waited RUNNABLE, sent when it leaves RUNNABLE: on STARTING, or on
  FAILED when the job was cancelled before it started;
- `OldestRunnableSeconds` (Seconds, dimension `JobQueue`), the age of the
  oldest RUNNABLE job in the queue (0 when there is none), from the one-minute
  schedule, which lists the RUNNABLE jobs of each queue in `JOB_QUEUES`: a
  job that is still stuck sends no event. A job leaving RUNNABLE also adds its
  wait as a datapoint here (at that moment the queue held a job that old), so a
  wait shorter than the schedule's interval is not missed.

A job waits RUNNABLE from its creation or, after a failed attempt, from the
end of that attempt. Only STARTING ends the wait: Batch sends an event for
every transition, so counting RUNNING as well would count each wait twice.

An event this function cannot read is logged and skipped; an AWS error raises,
so that Lambda retries it and finally hands it to the dead-letter queue.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, overload

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from threadline_common import aws
from threadline_common.observability import lambda_handler

logger = Logger()

NAMESPACE = "threadline/Batch"
JOB_STATE_CHANGE = ("aws.batch", "Batch Job State Change")
SCHEDULED = ("aws.events", "Scheduled Event")
TIME_LIMIT_CANCEL = "Canceled by JobStateTimeLimit action"
PUT_LIMIT = 1000  # datums per PutMetricData call


class BadEventError(ValueError):
    """The event is neither a Batch job state change nor a scheduled event this function can read."""


@lambda_handler(logger)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    try:
        kind = event_kind(event)
        datums = scheduled_datums(time.time()) if kind == SCHEDULED else job_state_datums(event)
    except BadEventError as exc:
        logger.error("Skipped an event this function cannot read", extra={"reason": str(exc)})
        return {"status": "skipped", "reason": str(exc)}
    put_metrics(datums)
    published = [{"metric": d["MetricName"], "dimension": d["Dimensions"][0]["Value"], "value": d["Value"]}
                 for d in datums]
    if published:
        logger.info("Published Batch metrics", extra={"metrics": published})
    return {"status": "published", "metrics": published}


def event_kind(event: Any) -> tuple[str, str]:
    if not isinstance(event, dict):
        raise BadEventError(f"the event is a {type(event).__name__}, not an object")
    kind = (event.get("source"), event.get("detail-type"))
    if kind not in (JOB_STATE_CHANGE, SCHEDULED):
        raise BadEventError(f"source {_short(kind[0])} / detail-type {_short(kind[1])} is neither "
                            "aws.batch / Batch Job State Change nor aws.events / Scheduled Event")
    return kind


# -- job state changes -----------------------------------------------------------

def job_state_datums(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The datums one "Batch Job State Change" event gives (none for most statuses)."""
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise BadEventError("the event has no detail object")
    if isinstance(detail.get("nodeDetails"), dict):
        return []  # a node `<jobId>#<N>` of a multi-node job: its job's own events count it once
    status = _text(detail, "status")
    queue = queue_name(_text(detail, "jobQueue"))
    datums: list[dict[str, Any]] = []
    if status == "FAILED":
        definition = definition_name(_text(detail, "jobDefinition"))
        datums.append(_datum("JobsFailed", "JobDefinition", definition, 1.0, "Count"))
    wait = runnable_wait(detail, status, event.get("time"))
    if wait is not None:
        datums.append(_datum("RunnableWaitSeconds", "JobQueue", queue, wait, "Seconds"))
        datums.append(_datum("OldestRunnableSeconds", "JobQueue", queue, wait, "Seconds"))
    return datums


def runnable_wait(detail: dict[str, Any], status: str, changed_at: Any) -> float | None:
    """Seconds the job waited RUNNABLE, when this status ends that wait; else None.

    STARTING ends it at the event's time; a cancelled job's wait ends at its `stoppedAt`.
    """
    if status == "STARTING":
        left = event_time(changed_at)
    elif status == "FAILED" and cancelled_before_starting(detail):
        left = _millis(detail, "stoppedAt", required=False) or event_time(changed_at)
    else:
        return None
    return round(max(0.0, left - runnable_since(detail)), 3)


def cancelled_before_starting(detail: dict[str, Any]) -> bool:
    """A FAILED job whose last attempt never got a container: it was cancelled while it waited.

    With no attempts, the job never ran. After attempts, only the queue's
    time-limit action (which acts on RUNNABLE jobs only) tells the wait apart
    from a failure of the last attempt.
    """
    attempts = detail.get("attempts") or []
    if not isinstance(attempts, list):
        raise BadEventError("attempts is not a list")
    if not attempts:
        return True
    return str(detail.get("statusReason") or "").startswith(TIME_LIMIT_CANCEL)


def runnable_since(detail: dict[str, Any]) -> float:
    """When the job's current wait began: its creation, or the end of its last attempt."""
    since = _millis(detail, "createdAt")
    for attempt in detail.get("attempts") or []:
        stopped = attempt.get("stoppedAt") if isinstance(attempt, dict) else None
        if isinstance(stopped, int | float) and not isinstance(stopped, bool):
            since = max(since, stopped / 1000)
    return since


# -- the schedule ----------------------------------------------------------------

def scheduled_datums(now: float) -> list[dict[str, Any]]:
    """`OldestRunnableSeconds` of every queue in JOB_QUEUES (0 for a queue with no RUNNABLE job)."""
    queues = [q.strip() for q in os.environ.get("JOB_QUEUES", "").split(",") if q.strip()]
    if not queues:
        logger.warning("JOB_QUEUES names no job queue: nothing to measure")
    datums = []
    for queue in queues:
        oldest = max((now - summary_since(job) for job in runnable_jobs(queue)), default=0.0)
        datums.append(_datum("OldestRunnableSeconds", "JobQueue", queue_name(queue),
                             round(max(0.0, oldest), 3), "Seconds"))
    return datums


def runnable_jobs(queue: str) -> Iterable[dict[str, Any]]:
    batch = aws.client("batch")
    token: str | None = None
    while True:
        page = batch.list_jobs(jobQueue=queue, jobStatus="RUNNABLE", **({"nextToken": token} if token else {}))
        yield from page.get("jobSummaryList", [])
        token = page.get("nextToken")
        if not token:
            return


def summary_since(job: dict[str, Any]) -> float:
    """When a listed RUNNABLE job began waiting: the latest of its creation and its last start or stop.

    A job summary has no attempts; for a job back in RUNNABLE after a failed
    attempt, that attempt's stop (or, where the summary lacks it, its start) is
    the nearest bound.
    """
    moments = [job.get(key) for key in ("createdAt", "startedAt", "stoppedAt")]
    values = [m / 1000 for m in moments if isinstance(m, int | float) and not isinstance(m, bool)]
    return max(values) if values else time.time()


# -- names, times, publishing ----------------------------------------------------

def queue_name(queue: str) -> str:
    """`arn:aws:batch:...:job-queue/NAME` (or NAME) -> NAME."""
    name = queue.rsplit("job-queue/", 1)[-1] if queue.startswith("arn:") else queue
    if not name or "/" in name or ":" in name:
        raise BadEventError(f"jobQueue {_short(queue)} is not a job queue ARN or name")
    return name


def definition_name(definition: str) -> str:
    """`arn:aws:batch:...:job-definition/NAME:REVISION` (or NAME:REVISION, NAME) -> NAME."""
    tail = definition.rsplit("job-definition/", 1)[-1] if definition.startswith("arn:") else definition
    name = tail.split(":", 1)[0]
    if not name or "/" in name:
        raise BadEventError(f"jobDefinition {_short(definition)} is not a job definition ARN or name")
    return name


def event_time(value: Any) -> float:
    """The event's `time` (ISO 8601, as EventBridge writes it, or epoch seconds) as epoch seconds; now if absent."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise BadEventError(f"time {_short(value)} is not an ISO 8601 time") from None
    return time.time()


def put_metrics(datums: list[dict[str, Any]]) -> None:
    """Publish, stamped with the time of publishing: a datapoint of an event delivered late (a
    retry) then still falls in the alarm's current period instead of one already judged."""
    cloudwatch = aws.client("cloudwatch")
    stamp = datetime.now(UTC)
    for start in range(0, len(datums), PUT_LIMIT):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=[{**datum, "Timestamp": stamp}
                                                                    for datum in datums[start:start + PUT_LIMIT]])


def _datum(metric: str, dimension: str, value_of: str, value: float, unit: str) -> dict[str, Any]:
    return {"MetricName": metric, "Dimensions": [{"Name": dimension, "Value": value_of}], "Value": float(value),
            "Unit": unit}


def _text(detail: dict[str, Any], key: str) -> str:
    value = detail.get(key)
    if not isinstance(value, str) or not value:
        raise BadEventError(f"detail.{key} is missing or not a string")
    return value


@overload
def _millis(detail: dict[str, Any], key: str, required: Literal[True] = True) -> float: ...
@overload
def _millis(detail: dict[str, Any], key: str, required: Literal[False]) -> float | None: ...
def _millis(detail: dict[str, Any], key: str, required: bool = True) -> float | None:
    value = detail.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return value / 1000
    if required:
        raise BadEventError(f"detail.{key} is missing or not epoch milliseconds")
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
