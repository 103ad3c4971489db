"""Runs AWS Batch jobs as local processes, applying Batch's own rules.

A job runs its job definition's command unchanged (with `Ref::` parameters
filled in and `python` resolved to this interpreter) in the folder named by the
job definition's `Metadata.DockerContext`, one process per node, with the
`AWS_BATCH_*` variables that Batch sets (forked from a warm interpreter that has
the jobs' libraries imported: `job_launcher.py`). Attempts follow the job definition's
`retryStrategy.evaluateOnExit`, the attempt timeout kills the process, and a job
stuck RUNNABLE is cancelled by its queue's `jobStateTimeLimitActions`. Each
attempt waits RUNNABLE for room in its queue's compute environments, in the
queue's FIFO or fair-share order (`batch_scheduler.py`).
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .batch_capacity import DEFAULT_SCALE, job_needs
from .batch_scheduler import BatchScheduler, Ticket
from .faults import Fault, FaultPlan
from .job_launcher import JobLauncher, JobProcess

SPOT_REASON = "Host EC2 (instance {instance}) terminated."
EXITED_REASON = "Essential container in task exited"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
CAPACITY_REASON = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
MAX_RESOURCE_REASON = "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"  # no environment could ever run it
KILL_AFTER_S = 0.05  # a `kill` fault's process is killed this long after it starts
_PARAMETER = re.compile(r"Ref::([A-Za-z0-9_]+)")
_PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


@dataclass
class QueueSpec:
    logical_id: str
    name: str
    compute_environments: list[str]
    time_limit_actions: list[dict[str, Any]]


@dataclass
class JobRecord:
    """What the twin saw of one job, for the demo's report and tests."""

    job_id: str
    job_name: str
    definition: str
    queue: str
    status: str = "SUBMITTED"
    status_reason: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    started_at: float | None = None
    stopped_at: float | None = None


@dataclass
class LocalBatchRuntime:
    root: Path
    twin_environment: dict[str, str]
    log_dir: Path
    faults: FaultPlan
    time_limit_scale: float = 0.001  # 600 s of RUNNABLE last 0.6 s in the twin
    definition_dirs: dict[str, Path] = field(default_factory=dict)  # job definition name -> folder
    queues: dict[str, QueueSpec] = field(default_factory=dict)  # queue name -> spec
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    slots: int = max(2, (os.cpu_count() or 2) * 2)  # attempts running at once on this machine
    capacity_scale: float = DEFAULT_SCALE  # a compute environment holds maxvCpus x this (batch_capacity.py)
    scheduler: BatchScheduler = field(init=False)
    # Called on every status change with the moto job: the twin sends "Batch Job State Change" events.
    state_events: Callable[[Any], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Node processes fork from a warm interpreter that has the jobs' libraries imported (job_launcher.py).
    launcher: JobLauncher = field(default_factory=lambda: JobLauncher(warm=False))

    def run(self, job: Any) -> None:
        queue = self.queues.get(job.job_queue.name)
        record = JobRecord(job.job_id, job.job_name, job.job_definition.name, job.job_queue.name)
        with self._lock:
            self.jobs[job.job_id] = record
        try:
            self._run(job, queue, record)
        except Exception as exc:  # an executor bug must end the job, not hang the run
            self._finish(job, record, False, f"threadline twin could not run the job: {exc}", None)

    def __post_init__(self) -> None:
        self.scheduler = BatchScheduler(self.slots)

    def start(self, warm: bool = True) -> None:
        """Start the warm job zygote (`warm`), so that it imports while the twin provisions."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.launcher = JobLauncher(warm=warm, zygote_log=self.log_dir / "job-zygote.log")
        self.launcher.start_zygote()

    def close(self) -> None:
        """Stop the warm job zygote (the jobs it still runs end with it)."""
        self.launcher.close()

    def queue_aliases(self, queue_name: str) -> tuple[str, ...]:
        queue = self.queues.get(queue_name)
        return (queue.logical_id,) if queue else ()

    # -- the job's life --------------------------------------------------------

    def _run(self, job: Any, queue: QueueSpec | None, record: JobRecord) -> None:
        definition = job.job_definition
        retry = definition.retry_strategy or {}
        max_attempts = int(retry.get("attempts", 1) or 1)
        rules = retry.get("evaluateOnExit", [])
        names = (definition.name, job.job_name)
        queue_names = (job.job_queue.name,) + ((queue.logical_id,) if queue else ())
        run_id = (job.parameters or {}).get("run_id")
        needs = job_needs(job)
        self._set_status(job, record, "PENDING")
        for attempt in range(1, max_attempts + 1):
            self._set_status(job, record, "RUNNABLE")
            fault = self.faults.find(names, queue_names, attempt, run_id)
            if fault is not None and fault.kind == "capacity":
                self._stay_runnable(job, record, queue, CAPACITY_REASON)
                return
            if not self.scheduler.fits(job.job_queue.name, needs):
                self._stay_runnable(job, record, queue, MAX_RESOURCE_REASON)
                return
            if job.stop:
                self._finish(job, record, False, job.job_stopped_reason or "Terminated", None)
                return
            ticket = self.scheduler.submit(job.job_id, job.job_queue.name, getattr(job, "share_identifier", None),
                                           int(getattr(job, "scheduling_priority", None) or 0), needs)
            if not self.scheduler.wait(ticket, lambda: bool(job.stop)):
                self._finish(job, record, False, job.job_stopped_reason or "Terminated", None)
                return
            try:
                outcome = self._attempt(job, record, attempt, fault, ticket)
            finally:
                self.scheduler.release(ticket)
            if outcome.succeeded:
                self._finish(job, record, True, None, 0)
                return
            action = _evaluate_on_exit(rules, outcome)
            if action == "EXIT" or attempt == max_attempts or job.stop:
                self._finish(job, record, False, outcome.status_reason, outcome.exit_code,
                             outcome.container_reason)
                return

    def _stay_runnable(self, job: Any, record: JobRecord, queue: QueueSpec | None, reason: str) -> None:
        """RUNNABLE for `reason` (no capacity, or none big enough) until a time-limit action or TerminateJob."""
        action = next((a for a in (queue.time_limit_actions if queue else [])
                       if a.get("reason") == reason and a.get("state", "RUNNABLE") == "RUNNABLE"
                       and a.get("action", "CANCEL") == "CANCEL"), None)
        deadline = None
        if action is not None:
            deadline = time.monotonic() + float(action.get("maxTimeSeconds", 600)) * self.time_limit_scale
        while not job.stop:
            if deadline is not None and time.monotonic() >= deadline:
                self._finish(job, record, False, f"Canceled by JobStateTimeLimit action due to reason: {reason}", None)
                return
            time.sleep(0.01)
        self._finish(job, record, False, job.job_stopped_reason or "Terminated", None)

    def _attempt(self, job: Any, record: JobRecord, attempt: int, fault: Fault | None, ticket: Ticket) -> _Outcome:
        job.job_started_at = datetime.now()
        self._set_status(job, record, "STARTING")
        self._set_status(job, record, "RUNNING")
        started = time.time()
        if record.started_at is None:
            record.started_at = started
        log_stream = f"{job.job_definition.name}/default/{job.job_id}"
        job.log_stream_name = log_stream
        if fault is not None and fault.kind == "spot":
            outcome = _Outcome(False, None, SPOT_REASON.format(instance=f"i-{os.urandom(8).hex()[:17]}"), None)
        elif fault is not None and fault.kind == "exit":
            outcome = _Outcome(False, fault.exit_code, EXITED_REASON, None)
        elif fault is not None and fault.kind == "hang":
            outcome = self._hang(job)
        else:
            outcome = self._run_processes(job, attempt, ticket.environment,
                                          kill_after=KILL_AFTER_S if fault and fault.kind == "kill" else None)
        stopped = time.time()
        entry: dict[str, Any] = {
            "container": {"logStreamName": log_stream, "taskArn": job.job_definition.arn,
                          "networkInterfaces": []},
            "startedAt": int(started * 1000),
            "stoppedAt": int(stopped * 1000),
            "statusReason": outcome.status_reason or EXITED_REASON,
        }
        if outcome.exit_code is not None:
            entry["container"]["exitCode"] = outcome.exit_code
        if outcome.container_reason:
            entry["container"]["reason"] = outcome.container_reason
        job.attempts.append(entry)
        record.attempts.append({**entry, "attempt": attempt, "fault": fault.kind if fault else None})
        return outcome

    def _hang(self, job: Any) -> _Outcome:
        """A `hang` fault: the attempt runs until its time limit or a TerminateJob ends it."""
        timeout = _attempt_timeout(job)
        deadline = time.monotonic() + timeout if timeout else None
        while not job.stop:
            if deadline is not None and time.monotonic() > deadline:
                return _Outcome(False, 137, TIMEOUT_REASON, None)
            time.sleep(0.01)
        return _Outcome(False, 143, job.job_stopped_reason or "Terminated", None)

    def _run_processes(self, job: Any, attempt: int, environment: str | None,
                       kill_after: float | None = None) -> _Outcome:
        nodes = self._node_commands(job)
        env_base = self._environment(job, attempt, environment)
        timeout = _attempt_timeout(job)
        cwd = self._context_dir(job)
        log_dir = self.log_dir / job.job_definition.name / job.job_id
        log_dir.mkdir(parents=True, exist_ok=True)
        processes: list[tuple[int, JobProcess]] = []
        for index, (command, node_env) in enumerate(nodes):
            env = {**env_base, **node_env}
            if len(nodes) > 1:
                env.update({
                    "AWS_BATCH_JOB_NODE_INDEX": str(index),
                    "AWS_BATCH_JOB_NUM_NODES": str(len(nodes)),
                    "AWS_BATCH_JOB_MAIN_NODE_INDEX": str(_main_node(job)),
                    "AWS_BATCH_JOB_ID": f"{job.job_id}#{index}",
                })
                if index != _main_node(job):
                    env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = "127.0.0.1"
            suffix = f"-node-{index}" if len(nodes) > 1 else ""
            log_path = log_dir / f"attempt-{attempt}{suffix}.log"
            processes.append((index, self.launcher.start(command, cwd, env, log_path)))
        deadline = time.monotonic() + timeout if timeout else None
        kill_at = time.monotonic() + kill_after if kill_after is not None else None
        while any(p.poll() is None for _, p in processes):
            if kill_at is not None and time.monotonic() > kill_at:
                kill_at = None
                for _, process in processes:  # a `kill` fault: SIGKILL, as the OOM killer sends
                    if process.poll() is None:
                        process.kill()
            if job.stop:
                _kill_all(processes)
                return _Outcome(False, 143, job.job_stopped_reason or "Terminated", None)
            if deadline is not None and time.monotonic() > deadline:
                _kill_all(processes)
                return _Outcome(False, 137, TIMEOUT_REASON, None)
            time.sleep(0.01)
        codes = [(index, process.wait()) for index, process in processes]
        failed = [(index, batch_exit_code(code)) for index, code in codes if code != 0]
        if not failed:
            return _Outcome(True, 0, EXITED_REASON, None)
        index, code = failed[0]
        reason = f"node {index} exited with code {code}" if len(nodes) > 1 else None
        return _Outcome(False, code, EXITED_REASON, reason)

    # -- what a job runs -------------------------------------------------------

    def _node_commands(self, job: Any) -> list[tuple[list[str], dict[str, str]]]:
        definition = job.job_definition
        parameters = {**(definition.parameters or {}), **(job.parameters or {})}
        if definition.type == "multinode":
            props = definition.node_properties
            count = int(props["numNodes"])
            nodes: list[tuple[list[str], dict[str, str]] | None] = [None] * count
            for node_range in props["nodeRangeProperties"]:
                start, sep, end = node_range["targetNodes"].partition(":")
                first = int(start or 0)
                last = (int(end) if end else count - 1) if sep else first
                container = node_range.get("container", {})
                for index in range(first, last + 1):
                    nodes[index] = (self._command(container.get("command", []), parameters),
                                    _env_list(container.get("environment", [])))
            missing = [i for i, node in enumerate(nodes) if node is None]
            if missing:
                raise RuntimeError(f"nodes {missing} are not covered by any nodeRangeProperties")
            return [node for node in nodes if node is not None]
        command = job.container_overrides.get("command") or definition.container_properties.get("command", [])
        env = _env_list(definition.container_properties.get("environment", []))
        env.update(_env_list(job.container_overrides.get("environment", [])))
        return [(self._command(command, parameters), env)]

    @staticmethod
    def _command(command: list[str], parameters: dict[str, str]) -> list[str]:
        def fill(part: str) -> str:
            return _PARAMETER.sub(lambda m: str(parameters.get(m.group(1), m.group(0))), part)

        filled = [fill(part) for part in command]
        if filled and filled[0] in ("python", "python3", "python3.13"):
            filled[0] = sys.executable
        return filled

    def _environment(self, job: Any, attempt: int, environment: str | None = None) -> dict[str, str]:
        env = {key: os.environ[key] for key in _PASSTHROUGH_ENV if key in os.environ}
        queue = self.queues.get(job.job_queue.name)
        first = queue.compute_environments[0] if queue and queue.compute_environments else ""
        env.update({
            "AWS_BATCH_JOB_ID": job.job_id,
            "AWS_BATCH_JOB_ATTEMPT": str(attempt),
            "AWS_BATCH_JQ_NAME": job.job_queue.name,
            "AWS_BATCH_CE_NAME": environment or first,  # the environment the attempt was placed in
            "PYTHONPATH": str(self._context_dir(job)),
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        env.update(self.twin_environment)
        return env

    def _context_dir(self, job: Any) -> Path:
        folder = self.definition_dirs.get(job.job_definition.name)
        if folder is None:
            raise RuntimeError(f"job definition {job.job_definition.name} has no Metadata.DockerContext")
        return folder

    def _set_status(self, job: Any, record: JobRecord, status: str) -> None:
        job.status = status
        record.status = status
        if self.state_events is not None:
            self.state_events(job)

    def _finish(self, job: Any, record: JobRecord, success: bool, reason: str | None,
                exit_code: int | None, container_reason: str | None = None) -> None:
        job.exit_code = exit_code
        job.job_stopped_reason = reason
        job.twin_container_reason = container_reason
        job.job_stopped = True
        job.job_stopped_at = datetime.now()
        record.status_reason = reason
        record.stopped_at = time.time()
        self._set_status(job, record, "SUCCEEDED" if success else "FAILED")


@dataclass
class _Outcome:
    succeeded: bool
    exit_code: int | None
    status_reason: str | None
    container_reason: str | None


def batch_exit_code(returncode: int) -> int:
    """The exit code AWS Batch reports for a process's `returncode`.

    Python gives a process killed by signal N the returncode -N; a container's
    exit code, as Batch reports it, is 128 + N (137 for SIGKILL, 143 for SIGTERM).
    """
    return 128 - returncode if returncode < 0 else returncode


def _evaluate_on_exit(rules: list[dict[str, Any]], outcome: _Outcome) -> str:
    """Batch's rule: the first rule whose given patterns all match decides; none: RETRY."""
    for rule in rules:
        checks = []
        if "onStatusReason" in rule:
            checks.append(fnmatch.fnmatchcase(outcome.status_reason or "", rule["onStatusReason"]))
        if "onReason" in rule:
            checks.append(fnmatch.fnmatchcase(outcome.container_reason or "", rule["onReason"]))
        if "onExitCode" in rule:
            code = "" if outcome.exit_code is None else str(outcome.exit_code)
            checks.append(fnmatch.fnmatchcase(code, rule["onExitCode"]))
        if checks and all(checks):
            return str(rule.get("action", "RETRY")).upper()
    return "RETRY"


def _attempt_timeout(job: Any) -> float | None:
    timeout = job.timeout or job.job_definition.timeout or {}
    seconds = timeout.get("attemptDurationSeconds")
    return float(seconds) if seconds else None


def _main_node(job: Any) -> int:
    return int(job.job_definition.node_properties.get("mainNode", 0))


def _env_list(items: list[dict[str, str]]) -> dict[str, str]:
    return {item["name"]: str(item["value"]) for item in items}


def _kill_all(processes: list[tuple[int, JobProcess]]) -> None:
    for _, process in processes:
        if process.poll() is None:
            process.kill()
    for _, process in processes:
        process.wait()
