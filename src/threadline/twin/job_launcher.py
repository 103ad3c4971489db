"""Starting a Batch job's node process: forked from a warm zygote where it can be, else a cold process.

Both give the runtime the same handle (`poll`, `kill`, `wait`, `returncode`,
`pid`), so what Batch does with the process (time limits, kill faults, exit
codes) does not depend on how it was started. A command of another shape than
`python -m <module> ...`, a zygote that is not running, or one that cannot start
the child, all fall back to `subprocess.Popen`: slower, never different.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

# What the three job images import at start (jobs/*/requirements.txt), in the order they load.
PRELOAD = ("numpy", "pyarrow", "pyarrow.parquet", "pyarrow.compute", "duckdb", "boto3", "botocore.session",
           "botocore.client")
START_TIMEOUT_S = 10.0


class JobProcess(Protocol):
    pid: int

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def kill(self) -> None: ...

    def wait(self) -> int: ...


class ColdProcess:
    """A job process started by `subprocess.Popen` (its log file closed when it ends)."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> None:
        self._log: IO[bytes] = log_path.open("wb")
        self._process = subprocess.Popen(command, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def poll(self) -> int | None:
        code = self._process.poll()
        if code is not None:
            self._log.close()
        return code

    def kill(self) -> None:
        self._process.kill()

    def wait(self) -> int:
        code = self._process.wait()
        self._log.close()
        return code


@dataclass
class WarmProcess:
    """A job process the zygote forked; its exit status arrives through the zygote."""

    pid: int
    _ended: threading.Event = field(default_factory=threading.Event)
    _returncode: int | None = None

    @property
    def returncode(self) -> int | None:
        return self._returncode

    def ended(self, returncode: int) -> None:
        self._returncode = returncode
        self._ended.set()

    def poll(self) -> int | None:
        return self._returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        self._ended.wait()
        assert self._returncode is not None
        return self._returncode


class JobLauncher:
    """Starts job processes, through the zygote when it is up (`warm=True`), else cold."""

    def __init__(self, warm: bool = True, zygote_log: Path | None = None) -> None:
        self.warm = warm
        self._zygote_log = zygote_log
        self._zygote: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._next_id = 0
        self._answers: dict[int, dict[str, Any]] = {}
        self._answered = threading.Condition(self._lock)
        self._processes: dict[int, WarmProcess] = {}
        self._early_exits: dict[int, int] = {}
        self._ready = threading.Event()
        self.started_warm = 0
        self.started_cold = 0

    def start_zygote(self) -> None:
        """Start the zygote now, so it imports while the twin provisions (no-op when cold)."""
        if not self.warm or self._zygote is not None:
            return
        log = self._zygote_log.open("ab") if self._zygote_log else subprocess.DEVNULL
        self._zygote = subprocess.Popen(
            [sys.executable, "-m", "threadline.twin.job_zygote", *PRELOAD],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        if not isinstance(log, int):
            log.close()
        threading.Thread(target=self._read_answers, name="job-zygote-answers", daemon=True).start()

    def start(self, command: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> JobProcess:
        module = _python_module(command)
        if module is not None and self._zygote is not None and self._zygote.poll() is None:
            warm = self._start_warm(module, command[3:], cwd, env, log_path)
            if warm is not None:
                self.started_warm += 1
                return warm
        self.started_cold += 1
        return ColdProcess(command, cwd, env, log_path)

    def wait_for_exit(self, timeout: float) -> None:
        """Wait `timeout` seconds, or less when the zygote reports a job process's end (or any answer).

        A cold process's end is not reported: its waiter wakes at the timeout.
        """
        with self._answered:
            self._answered.wait(timeout)

    def wait_ready(self, timeout: float) -> bool:
        """Whether the zygote has imported its libraries within `timeout` seconds."""
        return self._ready.wait(timeout)

    def close(self) -> None:
        """Stop the zygote; it kills the job processes it still has."""
        zygote, self._zygote = self._zygote, None
        if zygote is None:
            return
        if zygote.stdin is not None:
            with contextlib.suppress(OSError):
                zygote.stdin.close()
        try:
            zygote.wait(timeout=5)
        except subprocess.TimeoutExpired:
            zygote.kill()
            zygote.wait()

    def _start_warm(self, module: str, argv: list[str], cwd: Path, env: dict[str, str],
                    log_path: Path) -> WarmProcess | None:
        zygote = self._zygote
        if zygote is None or zygote.stdin is None:
            return None
        with self._lock:
            self._next_id += 1
            request_id = self._next_id
        request = {"id": request_id, "module": module, "argv": argv, "cwd": str(cwd), "env": env,
                   "log": str(log_path)}
        try:
            zygote.stdin.write((json.dumps(request) + "\n").encode())
            zygote.stdin.flush()
        except (OSError, ValueError):
            return None
        deadline = time.monotonic() + START_TIMEOUT_S
        with self._answered:
            while request_id not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0 or self._zygote is None or zygote.poll() is not None:
                    return None
                self._answered.wait(left)
            answer = self._answers.pop(request_id)
            if "pid" not in answer:
                return None
            process = WarmProcess(int(answer["pid"]))
            if process.pid in self._early_exits:
                process.ended(self._early_exits.pop(process.pid))
            else:
                self._processes[process.pid] = process
            return process

    def _read_answers(self) -> None:
        zygote = self._zygote
        assert zygote is not None and zygote.stdout is not None
        for line in zygote.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._answered:
                if message.get("ready"):
                    self._ready.set()
                elif "exit" in message:
                    pid, code = int(message["exit"]), int(message["returncode"])
                    process = self._processes.pop(pid, None)
                    if process is None:
                        self._early_exits[pid] = code  # it ended before its start was answered
                    else:
                        process.ended(code)
                elif "id" in message:
                    self._answers[int(message["id"])] = message
                self._answered.notify_all()
        # The zygote is gone: whatever it still ran is lost with it, as a host's tasks are.
        with self._answered:
            for process in self._processes.values():
                process.ended(-signal.SIGKILL)
            self._processes.clear()
            self._answered.notify_all()


def _python_module(command: list[str]) -> str | None:
    """`M` for `[this interpreter, "-m", M, ...]`, else None."""
    if len(command) >= 3 and command[0] == sys.executable and command[1] == "-m" and command[2]:
        return command[2]
    return None
