"""One task of a Batch job: its containers run as local processes, under ECS's rules.

A Batch multi-container job (`ecsProperties`, on its own or in a multi-node
job's node range) runs each node as one ECS task of several containers. The
twin runs each container as its own process (through the runtime's
`JobLauncher`) with its own log file, and keeps ECS's rules:

- `dependsOn` orders the starts: START waits for the dependency's process to
  start, COMPLETE for it to exit, SUCCESS for it to exit 0 (a non-zero exit
  means the dependent never starts), HEALTHY for its `healthCheck.command`
  (`CMD` or `CMD-SHELL`), which the twin runs every scaled `interval`, to pass.
- When an essential container exits (or can never start), the task stops: the
  other containers get SIGTERM, then SIGKILL after their `stopTimeout` (ECS's
  default 30 s), scaled as the twin's other time limits but never under
  `MIN_STOP_S`, so that a sidecar can still flush. The task succeeds only if
  every essential container exited 0; a non-essential container's exit code
  never fails it.
- Each of the task's `volumes` is a fresh folder per attempt and node. Since
  containers are plain processes here, the twin rewrites any environment value
  or command argument that equals or starts with a mounted `containerPath` to
  that folder (a limitation of the twin: a path the program builds itself is
  not rewritten). A mount at `/tmp` is left alone: the host's temporary folder
  stands in for it, as it does for single-container jobs.
- The containers of a task share `localhost`, as in a task with `awsvpc` or
  `host` networking: every process here runs on 127.0.0.1.
- `healthCheck` is read from the container when present (ECS's container
  definition has it; Batch's API does not pass it on), so it reaches the twin
  only through job definitions registered with it in moto directly.

What each container did is reported in Batch's shape (`AttemptTaskContainerDetails`:
`name`, `exitCode`, `reason`, `logStreamName`, `networkInterfaces`); the
runtime (`batch_runtime.py`) puts one task per node into the attempt.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .faults import Fault
from .job_launcher import JobLauncher, JobProcess

STOP_TIMEOUT_S = 30.0  # ECS's default `stopTimeout`
MIN_STOP_S = 1.0  # a stopped container always has this long between SIGTERM and SIGKILL in the twin
HEALTH_INTERVAL_S = 30.0  # ECS's default health check interval
MIN_HEALTH_INTERVAL_S = 0.05
HEALTH_TIMEOUT_S = 5.0  # ECS's default; not scaled: a probe is a real process that needs its time
KILL_AFTER_S = 0.05  # a container `kill` fault's process is killed this long after it starts
TASK_STOPPED_REASON = "Essential container in task exited"
CONDITIONS = ("START", "COMPLETE", "SUCCESS", "HEALTHY")


class TaskDefinitionError(ValueError):
    """A task's containers that ECS would refuse to run."""


@dataclass(frozen=True)
class ContainerSpec:
    """One container of a task, with its command and environment already filled in."""

    name: str
    command: list[str]
    environment: dict[str, str]
    essential: bool = True
    depends_on: tuple[tuple[str, str], ...] = ()  # (container name, condition)
    mounts: tuple[tuple[str, str], ...] = ()  # (container path, volume name)
    health_check: tuple[str, ...] | None = None  # the `CMD`/`CMD-SHELL` form
    health_interval_s: float = HEALTH_INTERVAL_S
    health_start_period_s: float = 0.0
    stop_timeout_s: float = STOP_TIMEOUT_S
    log_stream_prefix: str | None = None


def ecs_containers(task: dict[str, Any], fill: Callable[[list[str]], list[str]]) -> list[ContainerSpec]:
    """The containers of one `EcsTaskProperties` (API spelling); `fill` resolves `Ref::` parameters."""
    specs = [_container_spec(container, fill) for container in task.get("containers", [])]
    _check(specs, {volume["name"] for volume in task.get("volumes", [])})
    return specs


def task_volumes(task: dict[str, Any]) -> list[str]:
    return [str(volume["name"]) for volume in task.get("volumes", [])]


def _container_spec(container: dict[str, Any], fill: Callable[[list[str]], list[str]]) -> ContainerSpec:
    health = container.get("healthCheck") or {}
    check = list(health.get("command") or [])
    if check and check[0] == "CMD":
        check = ["CMD", *fill(check[1:])]
    options = (container.get("logConfiguration") or {}).get("options") or {}
    return ContainerSpec(
        name=str(container["name"]),
        command=fill(list(container.get("command", []))),
        environment={item["name"]: str(item["value"]) for item in container.get("environment", [])},
        essential=bool(container.get("essential", True)),
        depends_on=tuple((str(d["containerName"]), str(d["condition"]).upper())
                         for d in container.get("dependsOn", [])),
        mounts=tuple((str(m["containerPath"]), str(m["sourceVolume"])) for m in container.get("mountPoints", [])),
        health_check=tuple(check) or None,
        health_interval_s=float(health.get("interval", HEALTH_INTERVAL_S)),
        health_start_period_s=float(health.get("startPeriod", 0)),
        stop_timeout_s=float(container.get("stopTimeout", STOP_TIMEOUT_S)),
        log_stream_prefix=options.get("awslogs-stream-prefix"),
    )


def _check(specs: list[ContainerSpec], volumes: set[str]) -> None:
    """What ECS refuses at registration: unknown names, no essential container, a cycle, bad conditions."""
    by_name = {spec.name: spec for spec in specs}
    if len(by_name) != len(specs):
        raise TaskDefinitionError("container names must be unique within a task")
    if not any(spec.essential for spec in specs):
        raise TaskDefinitionError("a task needs at least one essential container")
    for spec in specs:
        for name, condition in spec.depends_on:
            if name not in by_name:
                raise TaskDefinitionError(f"container {spec.name} depends on unknown container {name}")
            if condition not in CONDITIONS:
                raise TaskDefinitionError(f"container {spec.name}: condition {condition} is not one of {CONDITIONS}")
            if condition in ("COMPLETE", "SUCCESS") and by_name[name].essential:
                raise TaskDefinitionError(f"container {spec.name}: {condition} cannot name essential container {name}")
            if condition == "HEALTHY" and by_name[name].health_check is None:
                raise TaskDefinitionError(f"container {spec.name}: HEALTHY names {name}, which has no healthCheck")
        unknown = {volume for _, volume in spec.mounts} - volumes
        if unknown:
            raise TaskDefinitionError(f"container {spec.name} mounts undeclared volumes {sorted(unknown)}")
    _check_acyclic(by_name)


def _check_acyclic(by_name: dict[str, ContainerSpec]) -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise TaskDefinitionError(f"containers depend on each other in a cycle: {' -> '.join((*path, name))}")
        if name not in done:
            for dependency, _ in by_name[name].depends_on:
                visit(dependency, (*path, name))
            done.add(name)

    for name in by_name:
        visit(name, ())


@dataclass
class ContainerResult:
    """What one container did, in Batch's `AttemptTaskContainerDetails` shape (`describe`)."""

    name: str
    essential: bool
    exit_code: int | None
    reason: str | None
    log_stream_name: str

    def describe(self) -> dict[str, Any]:
        details: dict[str, Any] = {"name": self.name, "logStreamName": self.log_stream_name,
                                   "networkInterfaces": []}
        if self.exit_code is not None:
            details["exitCode"] = self.exit_code
        if self.reason:
            details["reason"] = self.reason
        return details

    @property
    def failed(self) -> bool:
        return self.exit_code != 0


class _FaultedProcess:
    """A container replaced by a fault: it exits with a code at once (`exit=N`) or only when signalled (`hang`)."""

    def __init__(self, returncode: int | None) -> None:
        self.pid = -1
        self._returncode = returncode

    @property
    def returncode(self) -> int | None:
        return self._returncode

    def poll(self) -> int | None:
        return self._returncode

    def kill(self) -> None:
        self.send(signal.SIGKILL)

    def send(self, signum: int) -> None:
        if self._returncode is None:
            self._returncode = -signum

    def wait(self) -> int:
        if self._returncode is None:
            raise RuntimeError("a hanging container cannot be waited for before it is signalled")
        return self._returncode


@dataclass
class _Container:
    spec: ContainerSpec
    process: JobProcess | _FaultedProcess | None = None
    exit_code: int | None = None
    reason: str | None = None
    skipped: bool = False  # never started, and never will
    healthy: bool = False
    probe: subprocess.Popen[bytes] | None = None
    probe_started: float = 0.0
    next_probe: float = 0.0
    kill_at: float | None = None  # SIGKILL from then on (after SIGTERM)
    fault_kill_at: float | None = None
    started_at: float | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.exit_code is None

    @property
    def ended(self) -> bool:
        return self.skipped or self.exit_code is not None


@dataclass
class ContainerTask:
    """Runs one task's containers; `step()` moves it on and says when every container is done."""

    containers: list[ContainerSpec]
    launcher: JobLauncher
    cwd: Path
    environment: dict[str, str]  # what every container gets (AWS_BATCH_* and the twin's variables)
    log_path: Callable[[str], Path]  # container name -> its log file
    volume_dir: Path  # each volume is a folder in here
    volumes: list[str] = field(default_factory=list)
    time_scale: float = 0.001
    fault_for: Callable[[str], Fault | None] = lambda name: None
    _state: list[_Container] = field(init=False)
    _stopping: bool = field(init=False, default=False)
    _host_paths: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._state = [_Container(spec) for spec in self.containers]
        for name in self.volumes:
            folder = self.volume_dir / name
            folder.mkdir(parents=True, exist_ok=True)
            self._host_paths[name] = str(folder)

    def step(self) -> bool:
        """One round: reap, stop on an essential exit, start what may start, probe health. True when done."""
        now = time.monotonic()
        for container in self._state:
            self._reap(container, now)
        if not self._stopping and any(c.spec.essential and c.ended for c in self._state):
            self._stop(now)
        if self._stopping:
            for container in self._state:
                if container.running and container.kill_at is not None and now >= container.kill_at:
                    self._signal(container, signal.SIGKILL)
        else:
            for container in self._state:
                if container.process is None and not container.skipped:
                    self._maybe_start(container, now)
            for container in self._state:
                self._probe(container, now)
        return all(c.ended for c in self._state)

    def signal_all(self, signum: int) -> None:
        """Send `signum` to every running container (a job-wide kill fault, a time limit, TerminateJob)."""
        for container in self._state:
            if container.running:
                self._signal(container, signum)

    def kill(self) -> None:
        """SIGKILL every container and wait for them all; containers not yet started never start."""
        self._stopping = True
        self.signal_all(signal.SIGKILL)
        for container in self._state:
            if container.process is not None and container.exit_code is None:
                container.process.wait()
                self._reap(container, time.monotonic())
            elif container.process is None and not container.skipped:
                container.skipped, container.reason = True, TASK_STOPPED_REASON
            self._end_probe(container)

    def results(self, log_stream: Callable[[ContainerSpec], str]) -> list[ContainerResult]:
        return [ContainerResult(c.spec.name, c.spec.essential, c.exit_code, c.reason, log_stream(c.spec))
                for c in self._state]

    # -- the steps ---------------------------------------------------------------

    def _reap(self, container: _Container, now: float) -> None:
        if container.process is None or container.exit_code is not None:
            return
        if container.fault_kill_at is not None and now >= container.fault_kill_at:
            container.fault_kill_at = None
            self._signal(container, signal.SIGKILL)
        code = container.process.poll()
        if code is None:
            return
        container.exit_code = batch_exit_code(code)
        if self._stopping and container.reason is None:
            container.reason = TASK_STOPPED_REASON
        self._end_probe(container)

    def _stop(self, now: float) -> None:
        """An essential container ended: SIGTERM the rest, SIGKILL them after their stop timeout."""
        self._stopping = True
        for container in self._state:
            if container.running:
                container.kill_at = now + max(MIN_STOP_S, container.spec.stop_timeout_s * self.time_scale)
                self._signal(container, signal.SIGTERM)
            elif container.process is None and not container.skipped:
                container.skipped, container.reason = True, TASK_STOPPED_REASON
            self._end_probe(container)

    def _maybe_start(self, container: _Container, now: float) -> None:
        waiting = False
        for name, condition in container.spec.depends_on:
            verdict = self._condition(self._by_name(name), condition)
            if verdict is False:
                container.skipped = True
                container.reason = f"Dependency {name} did not reach condition {condition}"
                return
            waiting = waiting or verdict is None
        if not waiting:
            self._start(container, now)

    def _condition(self, dependency: _Container, condition: str) -> bool | None:
        """True: met; None: not yet; False: never will be."""
        if dependency.skipped:
            return False
        if condition == "START":
            return True if dependency.process is not None else None
        if condition == "COMPLETE":
            return True if dependency.exit_code is not None else None
        if condition == "SUCCESS":
            return None if dependency.exit_code is None else dependency.exit_code == 0
        if dependency.healthy:  # HEALTHY
            return True
        return False if dependency.exit_code is not None else None

    def _start(self, container: _Container, now: float) -> None:
        spec = container.spec
        fault = self.fault_for(spec.name)
        container.started_at = now
        container.next_probe = now + spec.health_start_period_s * self.time_scale
        if fault is not None and fault.kind == "exit":
            container.process = _FaultedProcess(fault.exit_code)
            return
        if fault is not None and fault.kind == "hang":
            container.process = _FaultedProcess(None)
            return
        env = {**self.environment, **{key: self._host_path(value) for key, value in spec.environment.items()}}
        command = [self._host_path(part) for part in spec.command]
        log = self.log_path(spec.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        container.process = self.launcher.start(command, self.cwd, env, log)
        if fault is not None and fault.kind == "kill":
            container.fault_kill_at = now + KILL_AFTER_S

    def _probe(self, container: _Container, now: float) -> None:
        """Run the container's health check every interval until it passes once."""
        check = container.spec.health_check
        if check is None or container.healthy or not container.running:
            return
        if container.probe is not None:
            code = container.probe.poll()
            if code is None and now - container.probe_started > HEALTH_TIMEOUT_S:
                self._end_probe(container)
            elif code is not None:
                container.probe = None
                container.healthy = code == 0
            return
        if now < container.next_probe:
            return
        container.next_probe = now + max(MIN_HEALTH_INTERVAL_S, container.spec.health_interval_s * self.time_scale)
        env = {**self.environment, **{key: self._host_path(value) for key, value in container.spec.environment.items()}}
        container.probe_started = now
        container.probe = subprocess.Popen(self._probe_command(check), cwd=self.cwd, env=env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True)

    def _probe_command(self, check: tuple[str, ...]) -> list[str]:
        if check[0] == "CMD-SHELL":
            return ["/bin/sh", "-c", self._rewrite_text(" ".join(check[1:]))]
        if check[0] == "CMD":
            return [self._host_path(part) for part in check[1:]]
        raise TaskDefinitionError(f"healthCheck command must start with CMD or CMD-SHELL, not {check[0]!r}")

    @staticmethod
    def _end_probe(container: _Container) -> None:
        if container.probe is not None:
            with contextlib.suppress(ProcessLookupError):
                container.probe.kill()
            container.probe.wait()
            container.probe = None

    # -- helpers -----------------------------------------------------------------

    def _by_name(self, name: str) -> _Container:
        return next(c for c in self._state if c.spec.name == name)

    def _mounts(self) -> list[tuple[str, str]]:
        """(container path, host folder) of every rewritten mount, longest path first."""
        mounts = {(path.rstrip("/") or "/", self._host_paths[volume])
                  for c in self._state for path, volume in c.spec.mounts
                  if volume in self._host_paths and path.rstrip("/") != "/tmp"}
        return sorted(mounts, key=lambda item: len(item[0]), reverse=True)

    def _host_path(self, value: str) -> str:
        for path, folder in self._mounts():
            if value == path or value.startswith(path + "/"):
                return folder + value[len(path):]
        return value

    def _rewrite_text(self, text: str) -> str:
        for path, folder in self._mounts():
            text = re.sub(rf"(?<![\w/.-]){re.escape(path)}(?=/|\s|$|['\"])", _replacement(folder), text)
        return text

    @staticmethod
    def _signal(container: _Container, signum: int) -> None:
        process = container.process
        if process is None or process.poll() is not None:
            return
        if isinstance(process, _FaultedProcess):
            process.send(signum)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signum)


def _replacement(text: str) -> Callable[[re.Match[str]], str]:
    """A `re.sub` replacement that inserts `text` as it is (no backslash escapes)."""
    return lambda _match: text


def batch_exit_code(returncode: int) -> int:
    """The exit code AWS Batch reports for a process's `returncode`.

    Python gives a process killed by signal N the returncode -N; a container's
    exit code, as Batch reports it, is 128 + N (137 for SIGKILL, 143 for SIGTERM).
    """
    return 128 - returncode if returncode < 0 else returncode
