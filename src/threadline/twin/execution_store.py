"""Executions that outlive the twin: `<workdir>/state/executions/<execution name>.json`.

moto cannot recreate a past execution, so each one is written down as
`{"execution": <DescribeExecution>, "events": <GetExecutionHistory events>}`
(datetimes as ISO 8601 text): while it runs (every save) and once more when
it ends. `threadline runs`, `threadline open` and the execution graph read
these files, also long after the twin stopped.

A restarted twin remembers its pipeline's earlier executions as Step Functions
does (names are taken for 90 days): StartExecution of a name one of them used
answers `ExecutionAlreadyExists`, which the start function takes for a duplicate
S3 event, and DescribeExecution answers from the file (what `threadline lineage
rerun` reads). They are closed in this twin whatever their saved status, so
the same input does not make the start idempotent as for a running execution.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .state_files import read_json, write_json

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}

_earlier: dict[str, Path] = {}  # execution ARN -> file, for the executions of earlier twins in this workdir


def executions_dir(workdir: Path) -> Path:
    return workdir / "state" / "executions"


class ExecutionStore:
    def __init__(self, workdir: Path, sfn: Any, state_machine_arn: str) -> None:
        self.folder = executions_dir(workdir)
        self.sfn = sfn  # a boto3 Step Functions client of the twin
        self.state_machine_arn = state_machine_arn
        self._final: set[str] = set()  # executions written in a terminal status

    def restore(self, problems: list[str]) -> int:
        """Remember the saved executions of this state machine (see the module's docstring); how many."""
        global _earlier
        _hook_moto()
        earlier = {}
        for path in sorted(self.folder.glob("*.json")):
            saved = read_json(path, problems)
            execution = saved.get("execution") if isinstance(saved, dict) else None
            if isinstance(execution, dict) and execution.get("stateMachineArn") == self.state_machine_arn \
                    and isinstance(execution.get("executionArn"), str):
                earlier[execution["executionArn"]] = path
        _earlier = earlier
        return len(earlier)

    def forget(self) -> None:
        """Stop answering for the earlier executions (the twin stops and moto forgets its own)."""
        global _earlier
        _earlier = {}

    def save(self) -> None:
        """Write every execution not yet written in its terminal status."""
        for page in self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.state_machine_arn):
            for execution in page["executions"]:
                if execution["executionArn"] not in self._final:
                    self.save_execution(execution["executionArn"])

    def save_execution(self, execution_arn: str) -> Path:
        described = self.sfn.describe_execution(executionArn=execution_arn)
        described.pop("ResponseMetadata", None)
        events: list[dict[str, Any]] = []
        for page in self.sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        path = self.folder / f"{described['name']}.json"
        write_json(path, {"execution": described, "events": events})
        if described["status"] in TERMINAL:
            self._final.add(execution_arn)
        return path


@functools.cache
def _hook_moto() -> None:
    """Make moto's Step Functions consult `_earlier` (once per process; both its backends share these)."""
    from moto.stepfunctions import models, responses
    from moto.stepfunctions.exceptions import ExecutionAlreadyExists, ExecutionDoesNotExist

    idempotency = models.StateMachine._handle_name_input_idempotency
    describe = responses.StepFunctionResponse.describe_execution

    def handle_name_input_idempotency(self: Any, name: str, execution_input: str) -> Any:
        existing = idempotency(self, name, execution_input)
        arn = f"{self.arn.replace(':stateMachine:', ':execution:', 1)}:{name}"
        if existing is None and arn in _earlier:
            raise ExecutionAlreadyExists(f"Execution Already Exists: '{arn}'")
        return existing

    def describe_execution(self: Any) -> Any:
        from moto.core.responses import ActionResult

        try:
            return describe(self)
        except ExecutionDoesNotExist:
            path = _earlier.get(self._get_param("executionArn"))
            saved = read_json(path) if path is not None else None
            if not isinstance(saved, dict) or not isinstance(saved.get("execution"), dict):
                raise
            return ActionResult(saved["execution"])

    models.StateMachine._handle_name_input_idempotency = handle_name_input_idempotency  # type: ignore[method-assign]
    responses.StepFunctionResponse.describe_execution = describe_execution  # type: ignore[method-assign]


@dataclass
class SavedRun:
    """One execution as its file has it."""

    name: str
    status: str
    started: datetime | None
    stopped: datetime | None
    input_uri: str | None
    path: Path
    error: str | None = None

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.stopped is None:
            return None
        return (self.stopped - self.started).total_seconds()


def saved_runs(workdir: Path, problems: list[str] | None = None) -> list[SavedRun]:
    """Every execution written under `workdir`, oldest first; unreadable files set aside (said in `problems`)."""
    runs = []
    for path in sorted(executions_dir(workdir).glob("*.json")):
        saved = read_json(path, problems)
        execution = saved.get("execution") if isinstance(saved, dict) else None
        if not isinstance(execution, dict) or "name" not in execution:
            continue
        runs.append(SavedRun(name=str(execution["name"]), status=str(execution.get("status", "?")),
                             started=_time(execution.get("startDate")), stopped=_time(execution.get("stopDate")),
                             input_uri=_input_uri(execution.get("input")), path=path, error=execution.get("error")))
    return sorted(runs, key=lambda run: run.started.timestamp() if run.started else 0.0)


def load_execution(workdir: Path, name: str) -> dict[str, Any] | None:
    """`{"execution", "events"}` of one saved execution, or None."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    saved = read_json(executions_dir(workdir) / f"{name}.json")
    return saved if isinstance(saved, dict) else None


def saved_source(workdir: Path, bucket: str, key: str, version_id: str | None) -> dict[str, Any] | None:
    """The `source` a saved execution's input has for this object version (as the start function built it)."""
    for path in sorted(executions_dir(workdir).glob("*.json")):
        saved = read_json(path)
        execution = saved.get("execution") if isinstance(saved, dict) else None
        try:
            source = json.loads(execution.get("input") or "{}").get("source") if isinstance(execution, dict) else None
        except (ValueError, AttributeError):
            continue
        if isinstance(source, dict) and (source.get("bucket"), source.get("key"), source.get("version_id")) == \
                (bucket, key, version_id):
            return source
    return None


def _input_uri(text: Any) -> str | None:
    try:
        source = json.loads(text or "{}").get("source") or {}
    except (ValueError, AttributeError):
        return None
    uri = source.get("uri") or (f"s3://{source['bucket']}/{source['key']}" if source.get("bucket") else None)
    return str(uri) if uri else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
