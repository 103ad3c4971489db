"""Runs AWS Batch jobs as local processes, applying Batch's own rules.

A job runs its job definition's command unchanged (with `Ref::` parameters
filled in and `python` resolved to this interpreter) in the folder named by the
job definition's `Metadata.DockerContext`, one process per node, with the
`AWS_BATCH_*` variables that Batch sets (forked from a warm interpreter that has
the jobs' libraries imported: `job_launcher.py`). A node whose job definition
gives `ecsProperties` runs as a task of several containers, each its own
process (`batch_containers.py`); a `container` node is a task of one container
named `default`, as on Batch. Attempts follow the job definition's
`retryStrategy.evaluateOnExit`, the attempt timeout kills the process, and a job
stuck RUNNABLE is cancelled by its queue's `jobStateTimeLimitActions`. Each
attempt waits RUNNABLE for room in its queue's compute environments, in the
queue's FIFO or fair-share order (`batch_scheduler.py`).

A multi-container job's attempts carry Batch's `taskProperties` (its one task,
`{"taskArn", "containers": [{"name", "exitCode", "reason", "logStreamName",
"networkInterfaces"}]}`). A multi-node job is shown as Batch shows it
(`batch_node_jobs.py`): the parent's attempts carry the deciding node's exit
code and reason and no tasks, and each node is a child job `<jobId>#<N>` with
its own status, events and attempts (its task, or its `container`). The
attempt's `container.exitCode` and reason (and so the job's, and
`evaluateOnExit`) follow the first node's failing essential container.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import moto_speedups
from .batch_capacity import DEFAULT_SCALE, job_needs
from .batch_containers import (
    KILL_AFTER_S,
    ContainerResult,
    ContainerSpec,
    ContainerTask,
    batch_exit_code as batch_exit_code,
    ecs_containers,
    task_volumes,
)
from .batch_node_jobs import NodeJob, node_ranges
from .batch_scheduler import BatchScheduler, Ticket
from .faults import Fault, FaultPlan
from .job_launcher import JobLauncher

SPOT_REASON = "Host EC2 (instance {instance}) terminated."
EXITED_REASON = "Essential container in task exited"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
CAPACITY_REASON = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
MAX_RESOURCE_REASON = "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"  # no environment could ever run it
TERMINAL = ("SUCCEEDED", "FAILED")
STEP_S = 0.01  # the longest wait between two rounds of an attempt's tasks (starts, health checks, limits)
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
    # Called on every status change of a moto job, or of a node of one (`NodeJob`): the twin sends
    # "Batch Job State Change" events.
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
            container_faults = functools.partial(self.faults.find, names, queue_names, attempt, run_id)
            try:
                outcome = self._attempt(job, record, attempt, fault, ticket, container_faults)
            finally:
                self.scheduler.release(ticket)
            if outcome.succeeded:
                self._finish(job, record, True, None, 0, ended_nodes=outcome.ended_nodes)
                return
            action = _evaluate_on_exit(rules, outcome)
            if action == "EXIT" or attempt == max_attempts or job.stop:
                self._finish(job, record, False, outcome.status_reason, outcome.exit_code,
                             outcome.container_reason, outcome.ended_nodes)
                return
            for node in outcome.ended_nodes:
                self._node_event(node)

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

    def _attempt(self, job: Any, record: JobRecord, attempt: int, fault: Fault | None, ticket: Ticket,
                 container_faults: Callable[[str], Fault | None]) -> _Outcome:
        job.job_started_at = datetime.now()
        self._set_status(job, record, "STARTING")
        self._set_status(job, record, "RUNNING")
        started = time.time()
        if record.started_at is None:
            record.started_at = started
        nodes = self._start_nodes(job, started)
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
                                          kill_after=KILL_AFTER_S if fault and fault.kind == "kill" else None,
                                          container_faults=container_faults)
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
        if nodes:
            self._end_nodes(nodes, outcome, entry)
            outcome.ended_nodes = nodes
        elif outcome.nodes and outcome.nodes[0].task is not None:
            entry["taskProperties"] = [outcome.nodes[0].task]
        job.attempts.append(entry)
        record.attempts.append({**entry, "attempt": attempt, "fault": fault.kind if fault else None})
        return outcome

    def _start_nodes(self, job: Any, started: float) -> list[NodeJob]:
        """A multi-node job's child jobs, STARTING then RUNNING, the main node first (none for other jobs)."""
        if job.job_definition.type != "multinode":
            return []
        nodes: list[NodeJob] | None = getattr(job, "twin_nodes", None)
        if not nodes:
            main = _main_node(job)
            ranges = self._node_ecs_properties(job)
            nodes = [NodeJob(job, index, index == main, ecs) for index, ecs in enumerate(ranges)]
            job.twin_nodes = nodes
        for node in sorted(nodes, key=lambda n: not n.main):
            node.started_at, node.stopped_at, node.status_reason = int(started * 1000), None, None
            for status in ("STARTING", "RUNNING"):
                node.status = status
                self._node_event(node)
        return nodes

    def _end_nodes(self, nodes: list[NodeJob], outcome: _Outcome, parent_entry: dict[str, Any]) -> None:
        """Each node's attempt (its own task or container) and its end: SUCCEEDED or FAILED by its own exit.

        Their events are sent by the caller: after the job's own end is visible, when the attempt was its last.
        """
        reason = parent_entry["statusReason"]
        for node in nodes:
            result = outcome.nodes[node.index] if outcome.nodes else _NodeResult(None, outcome.exit_code, None)
            entry: dict[str, Any] = {"startedAt": parent_entry["startedAt"], "stoppedAt": parent_entry["stoppedAt"],
                                     "statusReason": reason}
            if result.task is not None:
                entry["taskProperties"] = [result.task]
            elif node.ecs_properties is None:
                stream = f"{node.parent.job_definition.name}/default/{node.job_id}"
                entry["container"] = {"logStreamName": stream, "networkInterfaces": []}
                if result.exit_code is not None:
                    entry["container"]["exitCode"] = result.exit_code
                if result.reason:
                    entry["container"]["reason"] = result.reason
            node.attempts.append(entry)
            node.stopped_at, node.status_reason = entry["stoppedAt"], reason
            node.status = "SUCCEEDED" if result.exit_code == 0 else "FAILED"

    def _node_event(self, node: NodeJob) -> None:
        if self.state_events is not None:
            self.state_events(node)

    def _hang(self, job: Any) -> _Outcome:
        """A `hang` fault: the attempt runs until its time limit or a TerminateJob ends it."""
        timeout = _attempt_timeout(job)
        deadline = time.monotonic() + timeout if timeout else None
        while not job.stop:
            if deadline is not None and time.monotonic() > deadline:
                return _Outcome(False, 137, TIMEOUT_REASON, None)
            time.sleep(0.01)
        return _Outcome(False, 143, job.job_stopped_reason or "Terminated", None)

    def _run_processes(self, job: Any, attempt: int, environment: str | None, kill_after: float | None = None,
                       container_faults: Callable[[str], Fault | None] | None = None) -> _Outcome:
        nodes = self._nodes(job)
        env_base = self._environment(job, attempt, environment)
        timeout = _attempt_timeout(job)
        log_dir = self.log_dir / job.job_definition.name / job.job_id
        log_dir.mkdir(parents=True, exist_ok=True)
        tasks = [self._task(job, attempt, index, node, len(nodes), env_base, log_dir, container_faults)
                 for index, node in enumerate(nodes)]
        deadline = time.monotonic() + timeout if timeout else None
        kill_at = time.monotonic() + kill_after if kill_after is not None else None
        while not all([task.step() for task in tasks]):  # every task moves on each round
            if kill_at is not None and time.monotonic() > kill_at:
                kill_at = None
                for task in tasks:  # a `kill` fault: SIGKILL, as the OOM killer sends
                    task.signal_all(signal.SIGKILL)
            if job.stop:
                _kill_all(tasks)
                return _Outcome(False, 143, job.job_stopped_reason or "Terminated", None,
                                self._node_results(job, nodes, tasks))
            if deadline is not None and time.monotonic() > deadline:
                _kill_all(tasks)
                return _Outcome(False, 137, TIMEOUT_REASON, None, self._node_results(job, nodes, tasks))
            self.launcher.wait_for_exit(STEP_S)  # the next round at a process's end, else after STEP_S
        return self._outcome(job, nodes, tasks)

    def _task(self, job: Any, attempt: int, index: int, node: _Node, count: int, env_base: dict[str, str],
              log_dir: Path, container_faults: Callable[[str], Fault | None] | None) -> ContainerTask:
        """The task that runs node `index`, with the node's `AWS_BATCH_*` variables and log files."""
        env = dict(env_base)
        if count > 1:
            env.update({
                "AWS_BATCH_JOB_NODE_INDEX": str(index),
                "AWS_BATCH_JOB_NUM_NODES": str(count),
                "AWS_BATCH_JOB_MAIN_NODE_INDEX": str(_main_node(job)),
                "AWS_BATCH_JOB_ID": f"{job.job_id}#{index}",
            })
            if index != _main_node(job):
                env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = "127.0.0.1"
        prefix = f"attempt-{attempt}" + (f"-node-{index}" if count > 1 else "")

        def log_path(name: str) -> Path:
            return log_dir / (f"{prefix}-{name}.log" if node.ecs else f"{prefix}.log")

        return ContainerTask(node.containers, self.launcher, self._context_dir(job), env, log_path,
                             log_dir / "volumes" / prefix, node.volumes, self.time_limit_scale,
                             container_faults if node.ecs and container_faults else _no_fault)

    def _outcome(self, job: Any, nodes: list[_Node], tasks: list[ContainerTask]) -> _Outcome:
        """The attempt's result: the first node whose essential container failed decides it."""
        results = self._node_results(job, nodes, tasks)
        for index, (node, task) in enumerate(zip(nodes, tasks, strict=True)):
            failed = _failed_essential(task)
            if failed is None:
                continue
            if not node.ecs:
                reason = f"node {index} exited with code {failed.exit_code}" if len(nodes) > 1 else None
            elif len(nodes) > 1:
                reason = f"node {index}: container {failed.name} " + (failed.reason or
                                                                      f"exited with code {failed.exit_code}")
            else:
                reason = failed.reason
            return _Outcome(False, failed.exit_code, EXITED_REASON, reason, results)
        return _Outcome(True, 0, EXITED_REASON, None, results)

    def _node_results(self, job: Any, nodes: list[_Node], tasks: list[ContainerTask]) -> list[_NodeResult]:
        """How each node ended: its task's Batch record (`taskProperties` entry) and its deciding exit."""
        _, _, _, region, account, *_ = (job.job_definition.arn.split(":") + [""] * 6)
        results = []
        for index, (node, task) in enumerate(zip(nodes, tasks, strict=True)):
            suffix = f"#{index}" if len(nodes) > 1 else ""

            def stream(spec: ContainerSpec, suffix: str = suffix) -> str:
                return f"{spec.log_stream_prefix or job.job_definition.name}/{spec.name}/{job.job_id}{suffix}"

            record = None
            if node.ecs:
                record = {"taskArn": f"arn:aws:ecs:{region}:{account}:task/{job.job_queue.name}/{uuid.uuid4().hex}",
                          "containers": [result.describe() for result in task.results(stream)]}
            failed = _failed_essential(task)
            exit_code = failed.exit_code if failed is not None else _essential_exit(task)
            results.append(_NodeResult(record, exit_code, failed.reason if failed is not None else None))
        return results

    # -- what a job runs -------------------------------------------------------

    def _nodes(self, job: Any) -> list[_Node]:
        definition = job.job_definition
        parameters = {**(definition.parameters or {}), **(job.parameters or {})}

        def fill(command: list[str]) -> list[str]:
            return self._command(command, parameters)

        if definition.type == "multinode":
            return [_ecs_node(node_range["ecsProperties"], fill) if node_range.get("ecsProperties")
                    else _single_node(fill(node_range.get("container", {}).get("command", [])),
                                      _env_list(node_range.get("container", {}).get("environment", [])))
                    for node_range in node_ranges(definition.node_properties)]
        ecs = getattr(definition, "ecs_properties", None)
        if ecs:
            return [_ecs_node(ecs, fill)]
        command = job.container_overrides.get("command") or definition.container_properties.get("command", [])
        env = _env_list(definition.container_properties.get("environment", []))
        env.update(_env_list(job.container_overrides.get("environment", [])))
        return [_single_node(fill(command), env)]

    @staticmethod
    def _node_ecs_properties(job: Any) -> list[dict[str, Any] | None]:
        """Each node's task of several containers (`ecsProperties`), or None for a `container` node."""
        return [node_range.get("ecsProperties") or None
                for node_range in node_ranges(job.job_definition.node_properties)]

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

    def _set_status(self, job: Any, record: JobRecord, status: str, ended_nodes: list[NodeJob] | None = None) -> None:
        """The job's new status, then its event; a multi-node job's last attempt's nodes announce their ends first.

        A `.sync` task polls as soon as the job ends, not at its next tick and not
        after the events: EventBridge delivers Batch's events on its own time.
        """
        job.status = status
        record.status = status
        if status in TERMINAL:
            moto_speedups.batch_job_ended()
        for node in ended_nodes or ():
            self._node_event(node)
        if self.state_events is not None:
            self.state_events(job)

    def _finish(self, job: Any, record: JobRecord, success: bool, reason: str | None,
                exit_code: int | None, container_reason: str | None = None,
                ended_nodes: list[NodeJob] | None = None) -> None:
        job.exit_code = exit_code
        job.job_stopped_reason = reason
        job.twin_container_reason = container_reason
        job.job_stopped = True
        job.job_stopped_at = datetime.now()
        record.status_reason = reason
        record.stopped_at = time.time()
        self._set_status(job, record, "SUCCEEDED" if success else "FAILED", ended_nodes)


@dataclass
class _Outcome:
    succeeded: bool
    exit_code: int | None
    status_reason: str | None
    container_reason: str | None
    nodes: list[_NodeResult] | None = None  # each node's end, when its processes ran
    ended_nodes: list[NodeJob] = field(default_factory=list)  # a multi-node job's nodes, ended, not yet announced


@dataclass(frozen=True)
class _NodeResult:
    """How one node's task ended: its `taskProperties` entry (a multi-container node) and its exit."""

    task: dict[str, Any] | None
    exit_code: int | None
    reason: str | None


@dataclass(frozen=True)
class _Node:
    """What one node runs: one container (`container`), or a task of several (`ecsProperties`)."""

    containers: list[ContainerSpec]
    volumes: list[str]
    ecs: bool


def _single_node(command: list[str], environment: dict[str, str]) -> _Node:
    """A `container` node: on Batch too it is a task of one essential container named `default`."""
    return _Node([ContainerSpec("default", command, environment)], [], ecs=False)


def _ecs_node(ecs_properties: dict[str, Any], fill: Callable[[list[str]], list[str]]) -> _Node:
    tasks = ecs_properties.get("taskProperties", [])
    if len(tasks) != 1:
        raise RuntimeError(f"ecsProperties must hold exactly one taskProperties entry, not {len(tasks)}")
    return _Node(ecs_containers(tasks[0], fill), task_volumes(tasks[0]), ecs=True)


def _failed_essential(task: ContainerTask) -> ContainerResult | None:
    return next((r for r in task.results(lambda spec: "") if r.essential and r.failed), None)


def _essential_exit(task: ContainerTask) -> int | None:
    """The exit code of a task whose essential containers did not fail: theirs (0), or None if none exited."""
    return next((r.exit_code for r in task.results(lambda spec: "") if r.essential), None)


def _no_fault(container: str) -> Fault | None:
    return None


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


def _kill_all(tasks: list[ContainerTask]) -> None:
    for task in tasks:
        task.kill()
