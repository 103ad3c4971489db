"""Fault injection: choose which path a run takes through the state machine.

A fault names a Batch job (by its job definition, e.g. `preprocess`) or a Lambda
function (by logical id or name), optionally a queue, the attempts it hits and
what happens:

    spot                 the attempt ends as a Spot reclamation (`Host EC2 (instance ...) terminated.`)
    capacity             the job stays RUNNABLE; the queue's JobStateTimeLimitActions cancel it
    exit=N               the container exits with code N
    kill                 the job's process is killed by SIGKILL while it runs (Batch reports exit 137)
    hang                 the attempt never ends on its own: the attempt or task time limit must end it
    submit-throttle      SubmitJob answers TooManyRequestsException (attempts count SubmitJob calls)
    submit-server-error  SubmitJob answers ServerException with a plain-text message
    submit-client-error  SubmitJob answers ClientException (a request no retry can fix)
    error                a Lambda function raises (Slack or Neptune down, a bug)
    throttle             Lambda answers TooManyRequestsException instead of running the function
    oversize             a Lambda function returns a result over Step Functions' 256 KiB limit

Text form, as the CLI takes it: `JOB[@QUEUE]:KIND[:ATTEMPTS]`, e.g.
`preprocess@SpotJobQueue:spot:1-3`, `analysis@GpuJobQueue:capacity`,
`postprocess:exit=1:1`, `NotifySlackFunction:error`, `preprocess:submit-server-error:1-9`.

`JOB/CONTAINER` (or `JOB.CONTAINER`) aims `exit=N`, `kill` or `hang` at one
container of a multi-container job, e.g. `analysis/progress:exit=3`: only that
container fails, and the job goes on unless the container is essential.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

JOB_KINDS = ("spot", "capacity", "exit", "kill", "hang")
SUBMIT_KINDS = ("submit-throttle", "submit-server-error", "submit-client-error")
FUNCTION_KINDS = ("error", "throttle", "oversize")
CONTAINER_KINDS = ("exit", "kill", "hang")
KINDS = JOB_KINDS + SUBMIT_KINDS + FUNCTION_KINDS


class FaultSpecError(ValueError):
    """A fault description that cannot be parsed."""


@dataclass(frozen=True)
class Fault:
    target: str
    kind: str  # one of KINDS
    attempts: frozenset[int] | None = None  # None: every attempt
    queue: str | None = None
    exit_code: int = 1
    run_id: str | None = None  # only jobs/invocations of runs whose id starts with this
    container: str | None = None  # one container of a multi-container job; None: the whole job

    @classmethod
    def parse(cls, text: str, run_id: str | None = None) -> Fault:
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0]:
            raise FaultSpecError(f"fault {text!r}: expected JOB[@QUEUE]:KIND[:ATTEMPTS]")
        target, _, queue = parts[0].partition("@")
        target, container = _split_container(target)
        kind, exit_code = parts[1], 1
        if kind.startswith("exit="):
            try:
                kind, exit_code = "exit", int(kind.removeprefix("exit="))
            except ValueError as exc:
                raise FaultSpecError(f"fault {text!r}: exit code must be an integer") from exc
        if kind not in KINDS:
            others = ", ".join(k for k in KINDS if k != "exit")
            raise FaultSpecError(f"fault {text!r}: kind must be exit=N or one of {others}")
        if container is not None and kind not in CONTAINER_KINDS:
            raise FaultSpecError(f"fault {text!r}: a container fault must be exit=N, kill or hang")
        attempts = _parse_attempts(parts[2], text) if len(parts) == 3 else None
        return cls(target=target, kind=kind, attempts=attempts, queue=queue or None,
                   exit_code=exit_code, run_id=run_id, container=container)

    def hits(self, names: tuple[str, ...], queue_names: tuple[str, ...], attempt: int,
             run_id: str | None) -> bool:
        if self.run_id is not None and not (run_id or "").startswith(self.run_id):
            return False
        if not any(_same_name(self.target, name) for name in names):
            return False
        if self.queue is not None and not any(self.queue.lower() == q.lower() for q in queue_names):
            return False
        return self.attempts is None or attempt in self.attempts


def _split_container(target: str) -> tuple[str, str | None]:
    """`analysis/progress` or `analysis.progress`: the job `analysis`, its container `progress`."""
    for separator in "/.":
        job, found, container = target.partition(separator)
        if found:
            if not job or not container:
                raise FaultSpecError(f"fault target {target!r}: expected JOB{separator}CONTAINER")
            return job, container
    return target, None


def _parse_attempts(text: str, spec: str) -> frozenset[int] | None:
    if text in ("*", "all"):
        return None
    attempts: set[int] = set()
    try:
        for part in text.split(","):
            low, _, high = part.partition("-")
            attempts.update(range(int(low), int(high or low) + 1))
    except ValueError as exc:
        raise FaultSpecError(f"fault {spec!r}: attempts must look like 1, 1-3 or 1,3") from exc
    return frozenset(attempts)


def _same_name(target: str, name: str) -> bool:
    """`preprocess` names the job definition `threadline-preprocess` too."""
    target, name = target.lower(), name.lower()
    return name == target or name.endswith("-" + target)


class FaultPlan:
    """The faults in force; thread-safe, changed by tests while the twin runs."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self, run_id: str | None = None) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if run_id is not None and f.run_id != run_id]

    def remove(self, fault: Fault) -> None:
        """Take back one fault, leaving the others in force (e.g. an unscoped one while scoped ones stay)."""
        with self._lock:
            self._faults.remove(fault)

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    def find(self, names: tuple[str, ...], queue_names: tuple[str, ...], attempt: int,
             run_id: str | None, container: str | None = None) -> Fault | None:
        """The first fault for this job (or, given `container`, for that container of it)."""
        with self._lock:
            for fault in self._faults:
                if fault.container == container and fault.hits(names, queue_names, attempt, run_id):
                    return fault
        return None
