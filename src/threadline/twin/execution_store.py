"""Executions that outlive the twin: `<workdir>/state/executions/<execution name>.json`.

moto cannot recreate a past execution, so each one is written down as
`{"execution": <DescribeExecution>, "events": <GetExecutionHistory events>}`
(datetimes as ISO 8601 text): while it runs (every save) and once more when
it ends. `threadline runs`, `threadline open` and the execution graph read
these files, also long after the twin stopped.

A restarted twin answers for its pipeline's earlier executions as Step
Functions does for its own: ListExecutions lists them among the new ones,
DescribeExecution and GetExecutionHistory answer from their files, and their
names stay taken (StartExecution of one answers `ExecutionAlreadyExists`,
which the start function takes for a duplicate S3 event). They never run
again: one saved while running (its twin was killed) is closed as ABORTED when
restored, and StartExecution with the same input does not make the start
idempotent as for a running execution.

ListExecutions and GetExecutionHistory page as Step Functions does (100 by
default, `maxResults` up to 1000, newest execution first, `reverseOrder`), for
live and restored executions alike: moto answers everything in one page.
"""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .state_files import read_json, write_json

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
DEFAULT_PAGE = 100  # Step Functions' page when `maxResults` is 0 or left out
LARGEST_PAGE = 1000
ABORTED_ERROR = "Twin.Stopped"
ABORTED_CAUSE = "the offline twin was killed while the run was going; a restart does not resume it"
_LISTED = ("executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate")


@dataclass(frozen=True)
class _Earlier:
    """An execution of an earlier twin in this workdir: its file and its ListExecutions entry."""

    path: Path
    listed: dict[str, Any]

    @property
    def started(self) -> datetime:
        started = _time(self.listed.get("startDate"))
        return _aware(started) if started is not None else datetime.fromtimestamp(0, UTC)


_earlier: dict[str, _Earlier] = {}  # execution ARN -> the executions of earlier twins in this workdir


def executions_dir(workdir: Path) -> Path:
    return workdir / "state" / "executions"


class ExecutionStore:
    def __init__(self, workdir: Path, sfn: Any, state_machine_arn: str) -> None:
        self.folder = executions_dir(workdir)
        self.sfn = sfn  # a boto3 Step Functions client of the twin
        self.state_machine_arn = state_machine_arn
        self._final: set[str] = set()  # executions written in a terminal status
        self._progress: dict[str, tuple[str, int] | None] = {}  # execution -> (status, events) when last written
        self._events: dict[str, list[dict[str, Any]]] = {}  # running execution -> its events written so far

    def restore(self, problems: list[str]) -> int:
        """Answer for the saved executions of this state machine (see the module's docstring); how many."""
        global _earlier
        _hook_moto()
        earlier = {}
        for path in sorted(self.folder.glob("*.json")):
            saved = read_json(path, problems)
            if not isinstance(saved, dict) or not self._ours(saved.get("execution")):
                continue
            if saved["execution"].get("status") not in TERMINAL:
                saved = _aborted(saved)
                try:
                    write_json(path, saved)
                except OSError as exc:
                    problems.append(f"{path} was still running and cannot be closed as ABORTED ({exc}); "
                                    "not restored")
                    continue
            execution = saved["execution"]
            earlier[execution["executionArn"]] = _Earlier(path, {key: execution[key] for key in _LISTED
                                                                 if key in execution})
        _earlier = earlier
        self._final.update(earlier)  # written for good: `save` leaves them alone
        return len(earlier)

    def _ours(self, execution: Any) -> bool:
        return isinstance(execution, dict) and execution.get("stateMachineArn") == self.state_machine_arn \
            and isinstance(execution.get("executionArn"), str)

    def forget(self) -> None:
        """Stop answering for the earlier executions (the twin stops and moto forgets its own)."""
        global _earlier
        _earlier = {}

    def save(self) -> None:
        """Write every execution not yet written in its terminal status that moved since it was last written.

        moto's executions are read in this process (a ListExecutions through botocore
        every second was most of an idle twin's save); one is described and written,
        through the API as before, only when its status or its number of events changed.
        """
        for execution in self._live():
            arn = execution.execution_arn
            if arn in self._final:
                continue
            progress = _progress(execution)
            if progress is None or self._progress.get(arn) != progress:
                self.save_execution(arn)
                self._progress[arn] = progress

    def _live(self) -> list[Any]:
        """moto's executions of the state machine (the backend the twin's Step Functions calls reach)."""
        from moto.stepfunctions.responses import get_backend

        _, _, _, region, account, _ = self.state_machine_arn.split(":", 5)
        machine = get_backend(account, region).describe_state_machine(self.state_machine_arn)
        return list(machine.executions)

    def save_execution(self, execution_arn: str) -> Path:
        described = self.sfn.describe_execution(executionArn=execution_arn)
        described.pop("ResponseMetadata", None)
        events = self._history(execution_arn)
        path = self.folder / f"{described['name']}.json"
        write_json(path, {"execution": described, "events": events})
        if described["status"] in TERMINAL:
            self._final.add(execution_arn)
            self._events.pop(execution_arn, None)
            self._progress.pop(execution_arn, None)
        else:
            self._events[execution_arn] = events
        return path

    def _history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's events: those written before, then the rest, asked for after the last one written.

        A running execution is written every second it moves; asking for its whole
        history each time cost more the longer it ran. Events never change once
        recorded, and this module's paging token names the event a page follows.
        """
        from botocore.exceptions import ClientError

        known = self._events.get(execution_arn, [])
        events = list(known)
        last = known[-1]["id"] if known else 0
        token = _token(last) if known else None
        try:
            while True:
                page = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=LARGEST_PAGE,
                                                      **({"nextToken": token} if token else {}))
                # moto's own paging (before `restore` hooks it) ignores the token: skip what is known.
                events.extend(event for event in page["events"] if event["id"] > last)
                token = page.get("nextToken")
                if not token:
                    break
        except ClientError:
            if not known:
                raise
            self._events.pop(execution_arn, None)  # the token named nothing: read it whole
            return self._history(execution_arn)
        return events


def _progress(execution: Any) -> tuple[str, int] | None:
    """How far a live execution has got, (status, events so far); None when moto's execution does not say.

    The ASL interpreter keeps the history in its event manager; moto's other backend
    (no interpreter) has none, so its executions are written at every save, as before.
    """
    status = _live_entry(execution, "")["status"]
    try:
        events = execution.exec_worker.env.event_manager._history_event_list
    except AttributeError:  # no interpreter, or not started yet
        return None
    return status, len(events)


def _aborted(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved execution that was still running, closed as ABORTED when its last known event happened."""
    execution = dict(saved["execution"])
    events = [event for event in saved.get("events") or [] if isinstance(event, dict)]
    stopped = events[-1].get("timestamp") if events else None
    execution.update(status="ABORTED", stopDate=stopped or execution.get("startDate"), error=ABORTED_ERROR,
                     cause=ABORTED_CAUSE)
    last = max((event["id"] for event in events if isinstance(event.get("id"), int)), default=0)
    events.append({"id": last + 1, "previousEventId": last, "timestamp": execution["stopDate"],
                   "type": "ExecutionAborted",
                   "executionAbortedEventDetails": {"error": ABORTED_ERROR, "cause": ABORTED_CAUSE}})
    return {**saved, "execution": execution, "events": events}


@functools.cache
def _hook_moto() -> None:
    """Make moto's Step Functions answer for `_earlier` and page (once per process; both its backends share these)."""
    from moto.core.responses import ActionResult
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
        try:
            return describe(self)
        except ExecutionDoesNotExist:
            saved = _saved(self._get_param("executionArn"))
            if saved is None:
                raise
            return ActionResult(saved["execution"])

    def list_executions(self: Any) -> Any:
        machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
        wanted = self._get_param("statusFilter")
        found = [(_aware(execution.start_date), _live_entry(execution, machine.arn))
                 for execution in list(machine.executions)]
        found += [(earlier.started, earlier.listed) for earlier in _earlier.values()
                  if earlier.listed.get("stateMachineArn") == machine.arn]
        found.sort(key=lambda pair: (pair[0], pair[1]["executionArn"]), reverse=True)
        chosen = [entry for _, entry in found if not wanted or entry["status"] == wanted]
        page, token = _page(chosen, "executionArn", self._get_param("nextToken"), self._get_int_param("maxResults"))
        return ActionResult({"executions": page, **({"nextToken": token} if token else {})})

    def get_execution_history(self: Any) -> Any:
        arn = self._get_param("executionArn")
        try:
            events = list(self.stepfunction_backend.get_execution_history(arn)["events"])
        except ExecutionDoesNotExist:
            saved = _saved(arn)
            if saved is None:
                raise
            events = list(saved.get("events") or [])
        if self._get_bool_param("reverseOrder", False):
            events.reverse()
        page, token = _page(events, "id", self._get_param("nextToken"), self._get_int_param("maxResults"))
        return ActionResult({"events": page, **({"nextToken": token} if token else {})})

    models.StateMachine._handle_name_input_idempotency = handle_name_input_idempotency  # type: ignore[method-assign]
    responses.StepFunctionResponse.describe_execution = describe_execution  # type: ignore[method-assign]
    responses.StepFunctionResponse.list_executions = list_executions  # type: ignore[method-assign]
    responses.StepFunctionResponse.get_execution_history = get_execution_history  # type: ignore[method-assign]


def _saved(execution_arn: str | None) -> dict[str, Any] | None:
    """The file of an earlier execution, read now; None when it is not one or its file went missing."""
    earlier = _earlier.get(execution_arn or "")
    saved = read_json(earlier.path) if earlier is not None else None
    return saved if isinstance(saved, dict) and isinstance(saved.get("execution"), dict) else None


def _live_entry(execution: Any, machine_arn: str) -> dict[str, Any]:
    """A running twin's execution as ListExecutions lists it."""
    try:
        status = str(getattr(execution.status, "value", execution.status))
    except AttributeError:  # created, not yet started (moto's exec_status is still None): AWS lists it RUNNING
        status = "RUNNING"
    entry = {"executionArn": execution.execution_arn, "stateMachineArn": machine_arn, "name": execution.name,
             "status": status, "startDate": _aware(execution.start_date)}
    if status != "RUNNING" and execution.stop_date is not None:
        entry["stopDate"] = _aware(execution.stop_date)
    return entry


def _page(items: list[dict[str, Any]], key: str, token: str | None,
          max_results: int | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `items` and the token of the next, if any; the token names the page's last item by `key`."""
    from moto.stepfunctions.exceptions import InvalidToken, ValidationException

    size = max_results or DEFAULT_PAGE
    if not 0 < size <= LARGEST_PAGE:
        raise ValidationException(f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to "
                                  f"satisfy constraint: Member must have value less than or equal to {LARGEST_PAGE}")
    start = 0
    if token:
        try:
            last = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        except ValueError as exc:
            raise InvalidToken(f"{token!r} is not a token of this listing") from exc
        start = next((index + 1 for index, item in enumerate(items) if item.get(key) == last), -1)
        if start < 0:
            raise InvalidToken(f"{token!r} names nothing in this listing (were its other parameters changed?)")
    page = items[start:start + size]
    more = start + size < len(items)
    return page, _token(page[-1].get(key)) if more else None


def _token(last: Any) -> str:
    """The paging token of the page that follows the item whose key is `last`."""
    return base64.urlsafe_b64encode(json.dumps(last).encode()).decode("ascii")


def _aware(moment: datetime) -> datetime:
    """moto's default backend keeps naive UTC times, its interpreter aware ones."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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
