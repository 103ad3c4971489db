"""Start a run the way users do (an S3 upload) and collect what it did.

Used by `threadline demo`, `threadline run` and the pipeline tests: everything
goes through the AWS APIs of the twin, as a script against AWS would.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .server import Twin

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class RunNotStarted(RuntimeError):
    """No execution appeared for an uploaded object."""


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


def upload(twin: Twin, source: Path | bytes, key: str) -> dict[str, str]:
    """Put an object into the incoming bucket; S3 -> EventBridge -> start function does the rest."""
    bucket = twin.physical_id("IncomingBucket")
    body = source if isinstance(source, bytes) else source.read_bytes()
    response = twin.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return {"bucket": bucket, "key": key, "version_id": response.get("VersionId", ""),
            "etag": response["ETag"].strip('"')}


def find_execution(twin: Twin, bucket: str, key: str, version_id: str, timeout: float = 30.0) -> str:
    """The execution whose input names this object version (the start function named it)."""
    sfn = twin.client("stepfunctions")
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=twin.state_machine_arn):
            for execution in page["executions"]:
                arn = execution["executionArn"]
                if arn in seen:
                    continue
                described = sfn.describe_execution(executionArn=arn)
                source = json.loads(described.get("input") or "{}").get("source", {})
                if source.get("bucket") == bucket and source.get("key") == key and \
                        source.get("version_id", "") == version_id:
                    return arn
                seen.add(arn)
        time.sleep(0.05)
    raise RunNotStarted(f"no execution started for s3://{bucket}/{key} within {timeout:.0f}s; "
                        f"see the start function's logs under {twin.workdir / 'logs' / 'lambda'}")


def wait(twin: Twin, execution_arn: str, timeout: float = 120.0) -> RunResult:
    sfn = twin.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still {described['status']} after {timeout:.0f}s")
        time.sleep(0.05)
    history = _history(sfn, execution_arn)
    output = json.loads(described["output"]) if described.get("output") else None
    run_id = json.loads(described.get("input") or "{}").get("run_id", described["name"])
    return RunResult(
        execution_arn=execution_arn, run_id=run_id, status=described["status"],
        error=described.get("error"), cause=described.get("cause"),
        started=described["startDate"], stopped=described.get("stopDate"),
        states=_visits(history), output=output,
    )


def collect(twin: Twin, result: RunResult) -> RunResult:
    """Add the run's outputs: S3 objects, the DynamoDB record, Slack messages."""
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
    return result


def slack_messages(twin: Twin, run_id: str | None = None) -> list[dict[str, Any]]:
    messages = []
    for path in sorted(twin.outbox.glob("*.json")):
        message = json.loads(path.read_text(encoding="utf-8"))
        if run_id is None or message.get("run_id") == run_id:
            messages.append(message)
    return messages


def write_execution_graph(twin: Twin, result: RunResult) -> Path:
    """The console-style picture of the execution, under the twin's workdir."""
    from ..execution_graph import render

    definition = json.loads(twin.client("stepfunctions").describe_state_machine(
        stateMachineArn=twin.state_machine_arn)["definition"])
    path = twin.workdir / "executions" / f"{result.run_id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(definition, result.states, f"threadline run {result.run_id}", result.status),
                    encoding="utf-8")
    return path


def run_file(twin: Twin, source: Path | bytes, key: str, timeout: float = 120.0) -> RunResult:
    uploaded = upload(twin, source, key)
    arn = find_execution(twin, uploaded["bucket"], key, uploaded["version_id"])
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
