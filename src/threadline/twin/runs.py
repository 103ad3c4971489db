"""Start a run the way users do (an S3 upload) and collect what it did.

Used by `threadline demo`, `threadline run` and the pipeline tests: everything
goes through the AWS APIs of the twin, as a script against AWS would.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import moto_fixes
from .server import Twin

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
START_FUNCTION = "StartRunFunction"  # logical id of the function that starts runs
# How long `collect` waits for the lineage function, which adds the run's cost to its record
# after `run_finished`: bounded, since a graph that is down keeps its events queued far longer.
LINEAGE_WAIT_S = 3.0
END_POLL_S = 0.5  # a waiter's backstop between looks when no end wakes it
START_SLACK_S = 1.0  # the start dates' rounding and clock steps, for `since`

Progress = Callable[[str, str | None, float], None]  # (status, current state, seconds since start)


class RunNotStarted(RuntimeError):
    """No execution appeared for an uploaded object."""


class RunSkipped(RunNotStarted):
    """The start function handled the object's event and declined to start a run (it says why)."""

    def __init__(self, uri: str, reason: str, log_path: Path | None) -> None:
        self.uri = uri
        self.reason = reason
        self.log_path = log_path
        where = f"; its log: {log_path}" if log_path else ""
        super().__init__(f"the start function skipped {uri}: {reason}{where}")


@dataclass
class StateVisit:
    name: str
    state_type: str
    entered: datetime
    exited: datetime | None
    failed: bool = False  # the state's task failed (and a Catch or the run's end followed)

    @property
    def seconds(self) -> float | None:
        return None if self.exited is None else (self.exited - self.entered).total_seconds()


@dataclass
class RunResult:
    execution_arn: str
    run_id: str
    status: str
    error: str | None
    cause: str | None
    started: datetime
    stopped: datetime | None
    states: list[StateVisit]
    output: dict[str, Any] | None
    record: dict[str, Any] | None = None
    objects: dict[str, list[str]] = field(default_factory=dict)
    slack: list[dict[str, Any]] = field(default_factory=list)

    @property
    def path(self) -> list[str]:
        return [visit.name for visit in self.states]

    @property
    def seconds(self) -> float:
        end = self.stopped or self.started
        return (end - self.started).total_seconds()


def upload(twin: Twin, source: Path | bytes, key: str) -> dict[str, Any]:
    """Put an object into the incoming bucket; S3 -> EventBridge -> start function does the rest.

    `uploaded_at` (the time just before the upload) lets `find_execution` tell
    the start function's invocations for this upload from earlier ones.
    """
    bucket = twin.physical_id("IncomingBucket")
    body = source if isinstance(source, bytes) else source.read_bytes()
    uploaded_at = time.time()
    response = twin.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return {"bucket": bucket, "key": key, "version_id": response.get("VersionId", ""),
            "etag": response["ETag"].strip('"'), "uploaded_at": uploaded_at}


def _executions_since(sfn: Any, state_machine_arn: str, since: float | None) -> Iterator[dict[str, Any]]:
    """The state machine's executions, newest first, down to the first that started before `since`.

    An upload's execution starts after the upload: older ones (a long session's, or an earlier
    twin's) need not be described again for every upload.
    """
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        for execution in page["executions"]:
            if since is not None and execution["startDate"].timestamp() < since - START_SLACK_S:
                return
            yield execution


def find_execution(twin: Twin, bucket: str, key: str, version_id: str, timeout: float = 30.0,
                   since: float | None = None) -> str:
    """The execution whose input names this object version (the start function named it).

    With `since` (a `time.time()` from before the upload), a start-function
    invocation from then on that skipped `s3://bucket/key` ends the wait at once
    with RunSkipped, carrying the function's reason.
    """
    sfn = twin.client("stepfunctions")
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    uri = f"s3://{bucket}/{key}"
    while True:
        for execution in _executions_since(sfn, twin.state_machine_arn, since):
            arn = execution["executionArn"]
            if arn in seen:
                continue
            described = sfn.describe_execution(executionArn=arn)
            source = json.loads(described.get("input") or "{}").get("source", {})
            if source.get("bucket") == bucket and source.get("key") == key and \
                    (source.get("version_id") or "") == version_id:
                return arn
            seen.add(arn)
        if since is not None:
            skipped = start_skipped(twin, uri, since)
            if skipped is not None:
                raise skipped
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    failed = _start_errors(twin, since) if since is not None else []
    said = f"; the start function failed: {failed[-1]}" if failed else ""
    raise RunNotStarted(f"no execution started for {uri} within {timeout:.0f}s{said}; "
                        f"see the start function's logs under {twin.workdir / 'logs' / 'lambda' / START_FUNCTION}")


def start_skipped(twin: Twin, uri: str, since: float) -> RunSkipped | None:
    """The start function's skip of `uri` in an invocation begun at or after `since`, if any."""
    for invocation in _start_invocations(twin, since):
        payload = invocation.payload
        if not invocation.errored and isinstance(payload, dict) and payload.get("status") == "skipped" \
                and payload.get("uri") == uri:
            return RunSkipped(uri, str(payload.get("reason") or "no reason given"), invocation.log_path)
    return None


def skipped_uploads(twin: Twin, first: int = 0) -> tuple[list[RunSkipped], int]:
    """Objects the start function skipped in its invocations from index `first` on, and the next index."""
    runtime = twin.lambda_runtime
    invocations = list(runtime.invocations) if runtime is not None else []
    skipped = []
    for invocation in invocations[first:]:
        payload = invocation.payload
        if invocation.function == START_FUNCTION and not invocation.errored and isinstance(payload, dict) \
                and payload.get("status") == "skipped":
            skipped.append(RunSkipped(str(payload.get("uri") or "an event"), str(payload.get("reason") or ""),
                                      invocation.log_path))
    return skipped, len(invocations)


def _start_errors(twin: Twin, since: float) -> list[str]:
    errors = []
    for invocation in _start_invocations(twin, since):
        if invocation.errored and isinstance(invocation.payload, dict):
            errors.append(f"{invocation.payload.get('errorType', 'Error')}: "
                          f"{invocation.payload.get('errorMessage', '')} (log: {invocation.log_path})")
    return errors


def _start_invocations(twin: Twin, since: float) -> list[Any]:
    runtime = twin.lambda_runtime
    if runtime is None:
        return []
    return [invocation for invocation in list(runtime.invocations)
            if invocation.function == START_FUNCTION and invocation.started_at >= since]


def wait(twin: Twin, execution_arn: str, timeout: float | None = None,
         progress: Progress | None = None, progress_every: float = 0.5) -> RunResult:
    """Wait for the execution to end, as long as it runs (its own time limits end it), or `timeout` seconds.

    `progress(status, state, elapsed)` is called about every `progress_every`
    seconds with the execution's status, the state it is in (from the
    execution history) and the seconds since it started.
    """
    sfn = twin.client("stepfunctions")
    deadline = None if timeout is None else time.monotonic() + timeout
    next_report = 0.0
    ends_seen = moto_fixes.executions_ended()
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] in TERMINAL:
            break
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still {described['status']} after {timeout:.0f}s")
        if progress is not None and time.monotonic() >= next_report:
            next_report = time.monotonic() + progress_every
            progress(described["status"], current_state(_history(sfn, execution_arn)),
                     _elapsed(described["startDate"]))
        # Woken by any execution's end; otherwise look again in time for the next progress report.
        ends_seen = moto_fixes.wait_for_execution_end(ends_seen, progress_every if progress else END_POLL_S)
    history = _history(sfn, execution_arn)
    output = json.loads(described["output"]) if described.get("output") else None
    run_id = json.loads(described.get("input") or "{}").get("run_id", described["name"])
    return RunResult(
        execution_arn=execution_arn, run_id=run_id, status=described["status"],
        error=described.get("error"), cause=described.get("cause"),
        started=described["startDate"], stopped=described.get("stopDate"),
        states=_visits(history), output=output,
    )


def current_state(events: list[dict[str, Any]]) -> str | None:
    """The state the execution is in: the latest one entered and not yet left."""
    visits = _visits(events)
    for visit in reversed(visits):
        if visit.exited is None:
            return visit.name
    return visits[-1].name if visits else None


def _elapsed(started: datetime) -> float:
    now = datetime.now(started.tzinfo) if started.tzinfo else datetime.now()
    return max(0.0, (now - started).total_seconds())


def collect(twin: Twin, result: RunResult, save: bool = True) -> RunResult:
    """Add the run's outputs: S3 objects, the DynamoDB record, Slack messages.

    `save=False` skips writing the workdir's state (the twin writes it every second anyway):
    for callers that read the outputs through the APIs, not as local files."""
    twin.wait_for_async()  # the notices and the finaliser run asynchronously, as on AWS
    if twin.event_sources is not None:
        twin.event_sources.wait_idle(LINEAGE_WAIT_S)
    s3 = twin.client("s3")
    prefixes = {"IntermediateBucket": f"runs/{result.run_id}/", "ResultsBucket": f"runs/{result.run_id}/",
                "QuarantineBucket": f"{result.run_id}/"}
    for logical_id, prefix in prefixes.items():
        bucket = twin.physical_id(logical_id)
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        if listed:
            result.objects[logical_id] = [f"s3://{bucket}/{item['Key']}" for item in listed]
    item = twin.client("dynamodb").get_item(TableName=twin.physical_id("RunTable"),
                                            Key={"run_id": {"S": result.run_id}}).get("Item")
    result.record = _plain(item) if item else None
    result.slack = slack_messages(twin, result.run_id)
    if save:
        twin.save_state()  # the outputs' local files and the execution's file exist from here on
    return result


# The outputs a person opens first: (label, name in the run record's `outputs`, how the S3 key ends).
KEY_OUTPUTS = (("report", "report_html", "/report.html"),
               ("validation report", "validation", "/preprocess/validation.json"),
               ("rejects", None, "/preprocess/rejects.csv"))


def key_outputs(result: RunResult) -> list[tuple[str, str]]:
    """(label, s3 URI) of the run's report, validation report, rejects and quarantined objects, where it has them.

    The run record names them first: a resumed run that reused every step
    points at the earlier run's report rather than writing its own.
    """
    recorded = (result.record or {}).get("outputs") or {}
    uris = [uri for listed in result.objects.values() for uri in listed]
    found = []
    for label, name, suffix in KEY_OUTPUTS:
        uri = recorded.get(name) if name else None
        if not isinstance(uri, str):
            uri = next((own for own in uris if own.endswith(suffix)), None)
        if uri:
            found.append((label, uri))
    found.extend(("quarantined", uri) for uri in result.objects.get("QuarantineBucket", []))
    return found


def slack_messages(twin: Twin, run_id: str | None = None) -> list[dict[str, Any]]:
    messages = []
    for path in sorted(twin.outbox.glob("*.json")):
        message = json.loads(path.read_text(encoding="utf-8"))
        if run_id is None or message.get("run_id") == run_id:
            messages.append(message)
    return messages


def write_execution_graph(twin: Twin, result: RunResult) -> Path:
    """The execution-graph page of the run (`threadline graph` draws the same), under the twin's workdir."""
    from ..execution_graph import render

    sfn = twin.client("stepfunctions")
    execution = sfn.describe_execution(executionArn=result.execution_arn)
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=execution["stateMachineArn"])["definition"])
    page = render(execution, _history(sfn, result.execution_arn), definition, f"threadline run {result.run_id}")
    path = twin.workdir / "executions" / f"{result.run_id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def kept_upload(twin: Twin, source: Path, key: str) -> dict[str, Any] | None:
    """The run input's `source` for `key` when the incoming bucket already holds `source`'s content there.

    A workdir keeps its objects across restarts, so a file run before is still
    there: a resumed run can start from that version without a new upload
    (which would start a full run of its own).
    """
    from botocore.exceptions import ClientError
    from threadline_common.run_input import SourceObject

    from .execution_store import saved_source

    bucket = twin.physical_id("IncomingBucket")
    try:
        head = twin.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError:
        return None
    etag = head["ETag"].strip('"')
    if etag != hashlib.md5(source.read_bytes(), usedforsecurity=False).hexdigest():
        return None
    earlier = saved_source(twin.workdir, bucket, key, head.get("VersionId"))  # with what the start function added
    return earlier or SourceObject(bucket, key, int(head["ContentLength"]), head.get("VersionId"), etag).to_dict()


def run_file(twin: Twin, source: Path | bytes, key: str, timeout: float | None = None) -> RunResult:
    """Upload, find the execution (RunSkipped if the start function refused the object), wait, collect."""
    uploaded = upload(twin, source, key)
    arn = find_execution(twin, uploaded["bucket"], key, uploaded["version_id"], since=uploaded["uploaded_at"])
    return collect(twin, wait(twin, arn, timeout))


def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def _visits(events: list[dict[str, Any]]) -> list[StateVisit]:
    visits: list[StateVisit] = []
    open_visits: dict[str, StateVisit] = {}
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            visit = StateVisit(details["name"], kind.removesuffix("StateEntered"), event["timestamp"], None)
            visits.append(visit)
            open_visits[details["name"]] = visit
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in open_visits:
                open_visits.pop(name).exited = event["timestamp"]
        elif kind.endswith("Failed") and kind != "ExecutionFailed" and visits:
            visits[-1].failed = True
        elif kind in ("ExecutionFailed", "ExecutionSucceeded", "ExecutionAborted", "ExecutionTimedOut"):
            for visit in open_visits.values():
                visit.exited = event["timestamp"]
            open_visits.clear()
    return visits


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in item.items()}
