"""Runs Lambda handlers from their CodeUri/Handler, in warm execution environments as Lambda keeps them.

Each execution environment is a process of its own whose import path is the
function's code folder and its layers (then the runtime's libraries), and whose
environment is the template's environment for that function plus the Lambda
runtime's reserved variables and the twin's endpoints: functions are isolated
from each other as on AWS. An environment is forked from a warm parent that
imported the layer's libraries once (lambda_zygote.py; lambda_launcher.py is
the twin's end of it) where it can be, else started as a fresh interpreter;
both run lambda_bootstrap.py alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .faults import FaultPlan
from .lambda_async import AsyncConfig, AsyncInvoker, LambdaThrottled
from .lambda_launcher import EXIT_WAIT_S, START_TIMEOUT_S, Interpreter, Process, Zygote
from .lambda_zygote import forkable

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
_PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
# What every environment's interpreter and runtime share: the zygote starts with these too.
_RUNTIME_ENV = {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.13", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
INIT_LIMIT_S = 10.0  # Lambda's limit on the init phase, timed apart from the function timeout
OVERSIZE_BYTES = 300 * 1024  # an `oversize` fault's padding: past Step Functions' 256 KiB payload limit


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    layer_dirs: list[Path]
    environment: dict[str, str]
    timeout: int = 3
    memory_size: int = 128
    async_config: AsyncConfig = field(default_factory=AsyncConfig)


@dataclass
class Invocation:
    function: str
    started_at: float
    duration_s: float
    errored: bool
    payload: Any
    log_path: Path


@dataclass
class LocalLambdaRuntime:
    twin_environment: dict[str, str]
    log_dir: Path
    faults: FaultPlan
    region: str = "us-east-1"
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    invocations: list[Invocation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _idle: dict[str, list[_Worker]] = field(default_factory=dict)
    async_invoker: AsyncInvoker | None = None
    _counts: dict[tuple[str, str | None], int] = field(default_factory=dict)
    # Execution environments per function at once. Lambda would run up to the account's
    # concurrency (1,000); one machine cannot, so the rest wait their turn: slower, never kinder.
    concurrency: int = 4
    _concurrency: dict[str, threading.BoundedSemaphore] = field(default_factory=dict)
    # Fork environments from a warm parent that imported the layer's libraries once (lambda_zygote.py);
    # False, or a parent that cannot start or has gone, starts each as a fresh interpreter.
    warm_start: bool = True
    started_warm: int = 0  # environments asked of the zygote
    started_cold: int = 0  # environments started as fresh interpreters
    _zygote: Zygote | None = None
    _closed: bool = False

    def enable_async(self, send_message: Any) -> AsyncInvoker:
        """Async invocations (EventBridge, SNS, `Event`) with Lambda's retries and failure targets."""
        self.async_invoker = AsyncInvoker(self.invoke, lambda name: self.find(name).async_config,
                                          lambda name: self.find(name).arn, send_message)
        return self.async_invoker

    def invoke_async(self, function_name: str, event: Any) -> str:
        if self.async_invoker is None:
            raise RuntimeError("async invocations are not enabled in this twin")
        return self.async_invoker.submit(function_name, event)

    def register(self, spec: FunctionSpec) -> None:
        self.functions[spec.name] = spec
        self.warm(spec)

    def find(self, name_or_arn: str) -> FunctionSpec:
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        if name in self.functions:
            return self.functions[name]
        for spec in self.functions.values():
            if spec.logical_id == name:
                return spec
        raise KeyError(f"no Lambda function {name_or_arn!r} in the twin")

    def invoke(self, function_name: str, event: Any) -> tuple[str, bool, str]:
        spec = self.find(function_name)
        run_id = event.get("run_id") if isinstance(event, dict) else None
        with self._lock:  # a function fault's attempts count this run's invocations of the function
            key = (spec.name, run_id)
            self._counts[key] = attempt = self._counts.get(key, 0) + 1
        fault = self.faults.find((spec.logical_id, spec.name), (), attempt, run_id)
        started = time.time()
        log_path = self.log_dir / spec.logical_id / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.urandom(3).hex()}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if fault is not None and fault.kind == "throttle":
            raise LambdaThrottled(f"Rate exceeded (fault injected into {spec.logical_id})")
        if fault is not None and fault.kind == "error":
            payload: Any = {"errorType": "InjectedFault",
                            "errorMessage": f"fault injected into {spec.logical_id}"}
            log_path.write_text(f"fault injected: {fault}\n", encoding="utf-8")
            return self._record(spec, started, True, payload, log_path)
        payload, errored = self._run(spec, event, log_path)
        if fault is not None and fault.kind == "oversize" and not errored:
            payload = {"result": payload, "padding": "x" * OVERSIZE_BYTES}
        return self._record(spec, started, errored, payload, log_path)

    def _record(self, spec: FunctionSpec, started: float, errored: bool, payload: Any,
                log_path: Path) -> tuple[str, bool, str]:
        with self._lock:
            self.invocations.append(Invocation(spec.logical_id, started, time.time() - started,
                                               errored, payload, log_path))
        logs = log_path.read_text(encoding="utf-8", errors="replace")[-4096:]
        return json.dumps(payload, default=str), errored, logs

    def _run(self, spec: FunctionSpec, event: Any, log_path: Path) -> tuple[Any, bool]:
        with self._slots(spec):  # the wait for a slot is not the invocation's time: its clock starts below
            return self._run_in_slot(spec, event, log_path)

    def _slots(self, spec: FunctionSpec) -> threading.BoundedSemaphore:
        """At most `concurrency` execution environments of one function at once; the others wait."""
        with self._lock:
            if spec.name not in self._concurrency:
                self._concurrency[spec.name] = threading.BoundedSemaphore(self.concurrency)
            return self._concurrency[spec.name]

    def _run_in_slot(self, spec: FunctionSpec, event: Any, log_path: Path) -> tuple[Any, bool]:
        worker = self._ready_worker(spec)
        event_path, result_path = worker.scratch / "event.json", worker.scratch / "result.json"
        result_path.unlink(missing_ok=True)  # the last invocation's
        event_path.write_text(json.dumps(event), encoding="utf-8")
        finished = worker.invoke(event_path, result_path, log_path, timeout=spec.timeout)
        if not finished:
            worker.kill()
            return {"errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {spec.timeout}.00 seconds"}, True
        if not result_path.exists():
            code = worker.returncode()
            worker.kill()
            return {"errorType": "Runtime.ExitError",
                    "errorMessage": f"Runtime exited with error: exit status {code}"}, True
        outcome = json.loads(result_path.read_text(encoding="utf-8"))
        self._give_back(spec, worker)
        return outcome["payload"], not outcome["ok"]

    # -- warm execution environments ---------------------------------------------

    def warm(self, spec: FunctionSpec) -> None:
        """Start an execution environment ahead of the first invocation (a cold start off the clock)."""
        self._give_back(spec, self._spawn(spec))

    def _ready_worker(self, spec: FunctionSpec) -> _Worker:
        """An environment past its init phase; a cold one if the zygote went away before forking it."""
        worker = self._take_worker(spec)
        worker.wait_ready(INIT_LIMIT_S)
        if worker.never_started():
            worker.kill()
            worker = self._spawn(spec, cold=True)
            worker.wait_ready(INIT_LIMIT_S)
        return worker

    def _take_worker(self, spec: FunctionSpec) -> _Worker:
        """An idle environment of the function, else a new one; those found gone on the way are closed."""
        taken: _Worker | None = None
        gone: list[_Worker] = []
        with self._lock:
            pool = self._idle.setdefault(spec.name, [])
            while pool and taken is None:
                worker = pool.pop()
                if worker.alive():
                    taken = worker
                else:
                    gone.append(worker)
        for worker in gone:  # its pipes closed; one the zygote left behind as it went is ended too
            worker.kill()
        return taken or self._spawn(spec)

    def _give_back(self, spec: FunctionSpec, worker: _Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.setdefault(spec.name, []).append(worker)
                return
        worker.kill()  # one that finished an invocation after close()

    def _spawn(self, spec: FunctionSpec, cold: bool = False) -> _Worker:
        env = self._environment(spec)
        init_log = self.log_dir / spec.logical_id / "init.log"
        init_log.parent.mkdir(parents=True, exist_ok=True)
        zygote = None if cold else self._warm_parent(env)
        started = zygote.start_environment(spec.handler, spec.code_dir, env, init_log) if zygote is not None else None
        worker = _Worker(*started) if started is not None else None
        with self._lock:
            if worker is not None:
                self.started_warm += 1
            else:
                self.started_cold += 1
        return worker or _Worker.start(spec, env, init_log)

    def _environment(self, spec: FunctionSpec) -> dict[str, str]:
        env = _base_environment()
        env.update({
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "THREADLINE_FUNCTION_ARN": spec.arn,
            "_HANDLER": spec.handler,
            "PYTHONPATH": os.pathsep.join(str(p) for p in [spec.code_dir, *spec.layer_dirs]),
        })
        env.update(spec.environment)
        env.update(self.twin_environment)
        return env

    def _warm_parent(self, env: dict[str, str]) -> Zygote | None:
        """The zygote (started on the first request), if it is up and can fork an environment with `env`."""
        with self._lock:
            if not self.warm_start or self._closed:
                return None
            if self._zygote is None:
                try:
                    self._zygote = Zygote.start(_base_environment(), self.log_dir / "zygote.log")
                except OSError:
                    self.warm_start = False
                    return None
            zygote = self._zygote
        return zygote if not zygote.gone and forkable(env, zygote.env) else None

    def close(self) -> None:
        """End every idle environment, and the zygote with all it forked; later ones start cold."""
        with self._lock:
            workers = [w for pool in self._idle.values() for w in pool]
            self._idle.clear()
            zygote, self._zygote, self._closed = self._zygote, None, True
        if zygote is not None:
            zygote.close()  # it kills the environments it forked
        for worker in workers:
            worker.kill()


def _base_environment() -> dict[str, str]:
    """What every execution environment, and the zygote that forks them, starts from."""
    return {**{key: os.environ[key] for key in _PASSTHROUGH_ENV if key in os.environ}, **_RUNTIME_ENV}


class _Worker:
    """One warm execution environment running lambda_bootstrap for one function."""

    def __init__(self, process: Process, stdin: IO[bytes], control: int) -> None:
        self.process = process
        self.stdin = stdin
        self.control = control
        self.ready = False
        # Where its invocations' event and result files go, one after another; removed with it.
        self.scratch = Path(tempfile.mkdtemp(prefix="threadline-invoke-"))

    @classmethod
    def start(cls, spec: FunctionSpec, env: dict[str, str], init_log: Path) -> _Worker:
        """A fresh interpreter: the cold start."""
        read_end, write_end = os.pipe()
        with init_log.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-P", str(BOOTSTRAP), spec.handler, str(write_end)],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, cwd=spec.code_dir, env=env,
                pass_fds=(write_end,),
                start_new_session=True,  # the terminal's Ctrl-C is the twin's to handle: it ends when stdin closes
            )
        os.close(write_end)
        assert process.stdin is not None
        return cls(Interpreter(process), process.stdin, read_end)

    def alive(self) -> bool:
        return self.process.running()

    def never_started(self) -> bool:
        """Whether the zygote refused it or went away before forking it."""
        return not self.process.started(START_TIMEOUT_S)

    def returncode(self) -> int | None:
        """The exit status once the process has gone (None if it is somehow still there)."""
        return self.process.exit_status(EXIT_WAIT_S)

    def invoke(self, event_path: Path, result_path: Path, log_path: Path, timeout: float) -> bool:
        """False only when the handler is still running at `timeout`; a result file exists unless it died."""
        request = {"event_path": str(event_path), "result_path": str(result_path), "log_path": str(log_path)}
        try:
            self.stdin.write((json.dumps(request) + "\n").encode())
            self.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return True  # the process is gone; the caller finds no result and reports the exit
        return self._hear(b"done", timeout)

    def wait_ready(self, limit: float) -> None:
        """Let the init phase (the handler's import) finish before the invocation's clock starts.

        Lambda times init apart from the function timeout, with its own 10 s
        limit; past it, the rest of init counts against the first invocation.
        """
        if not self.ready:
            self._hear(b"ready", limit)

    def _hear(self, word: bytes, timeout: float) -> bool:
        """Read the control pipe until `word` or end of file (the interpreter died); False at `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            readable, _, _ = select.select([self.control], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                return False
            said = os.read(self.control, 64)
            self.ready = self.ready or b"ready" in said  # "ready" may come late, before "done"
            if not said or word in said:
                return True

    def kill(self) -> None:
        self.process.kill()
        shutil.rmtree(self.scratch, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.stdin.close()
        with contextlib.suppress(OSError):
            os.close(self.control)
