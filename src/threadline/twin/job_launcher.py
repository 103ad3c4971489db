"""Starting a Batch job's node process: forked from a warm zygote where it can be, else a cold process.

Both give the runtime the same handle (`poll`, `kill`, `wait`, `returncode`,
`pid`), so what Batch does with the process (time limits, kill faults, exit
codes) does not depend on how it was started. A command of another shape than
`python -m <module> ...`, a zygote that is not running, or one that cannot start
the child, all fall back to `subprocess.Popen`: slower, never different.
A warm start does not wait for the zygote's answer (`WarmProcess`), so the
processes of a multi-node or multi-container attempt are forked back to back.
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
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

# What the three job images import (jobs/*/requirements.txt), in the order they load, and the parts of
# those libraries and of the standard library that the jobs load later, as they run.
PRELOAD = ("numpy", "pyarrow", "pyarrow.parquet", "pyarrow.compute", "duckdb", "boto3", "botocore.session",
           "botocore.client", "numpy.random", "numpy.ma", "pyarrow.dataset", "boto3.s3.transfer",
           "boto3.dynamodb.types", "s3transfer.subscribers", "argparse", "csv", "gettext", "resource",
           "encodings.idna")
START_TIMEOUT_S = 10.0


class JobProcess(Protocol):
    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def kill(self) -> None: ...

    def wait(self) -> int: ...


class ColdProcess:
    """A job process started by `subprocess.Popen` (its log file closed when it ends)."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> None:
        self._log: IO[bytes] = log_path.open("wb")
        self._process = subprocess.Popen(command, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # the twin stops it, not the terminal's Ctrl-C
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


class WarmProcess:
    """A job process asked of the zygote, which forks it; started cold instead if the zygote cannot.

    Asking does not wait for the zygote's answer, so that the containers and
    nodes of one attempt are all asked for in one go and forked back to back.
    The answer (the child's pid) and the child's end arrive on the launcher's
    reader thread, under `changed`, which it notifies after each. Until the
    answer, the process counts as running; what needs its pid waits for it.
    """

    def __init__(self, start_cold: Callable[[], ColdProcess], deadline: float,
                 changed: threading.Condition) -> None:
        self._start_cold = start_cold
        self._deadline = deadline
        self._changed = changed
        self._pid: int | None = None
        self._refused = False
        self._cold: ColdProcess | None = None
        self._returncode: int | None = None

    # -- the reader thread's news (under `changed`) ---------------------------------

    def started(self, pid: int) -> None:
        if self._cold is not None:  # answered too late: the job runs cold already
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        self._pid = pid

    def refused(self) -> None:
        self._refused = True

    def ended(self, returncode: int) -> None:
        self._returncode = returncode

    # -- the handle ---------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._wait_started()

    @property
    def returncode(self) -> int | None:
        return self._cold.returncode if self._cold is not None else self._returncode

    def poll(self) -> int | None:
        with self._changed:
            if self._pid is None and self._cold is None and (self._refused or time.monotonic() >= self._deadline):
                self._cold = self._start_cold()
        return self._cold.poll() if self._cold is not None else self._returncode

    def kill(self) -> None:
        pid = self._wait_started()
        if self._cold is not None:
            self._cold.kill()
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def wait(self) -> int:
        self._wait_started()
        if self._cold is not None:
            return self._cold.wait()
        with self._changed:
            self._changed.wait_for(lambda: self._returncode is not None)
        assert self._returncode is not None
        return self._returncode

    def _wait_started(self) -> int:
        """The pid, once the zygote answered; a cold start's if it refused, went away or did not answer in time."""
        with self._changed:
            while self._pid is None and self._cold is None and not self._refused:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            if self._cold is None and self._pid is None:
                self._cold = self._start_cold()
            if self._cold is not None:
                return self._cold.pid
            assert self._pid is not None
            return self._pid


class JobLauncher:
    """Starts job processes, through the zygote when it is up (`warm=True`), else cold."""

    def __init__(self, warm: bool = True, zygote_log: Path | None = None) -> None:
        self.warm = warm
        self._zygote_log = zygote_log
        self._zygote: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._next_id = 0
        self._answered = threading.Condition(self._lock)
        self._pending: dict[int, WarmProcess] = {}  # asked of the zygote, not answered yet, by request id
        self._processes: dict[int, WarmProcess] = {}  # forked and running, by pid
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
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            start_new_session=True)  # the terminal's Ctrl-C is the twin's to handle: it ends when stdin closes
        if not isinstance(log, int):
            log.close()
        threading.Thread(target=self._read_answers, name="job-zygote-answers", daemon=True).start()

    def start(self, command: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> JobProcess:
        module = _python_module(command)
        if module is not None and self._zygote is not None and self._zygote.poll() is None:
            warm = self._start_warm(module, command, cwd, env, log_path)
            if warm is not None:
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

    def _start_warm(self, module: str, command: list[str], cwd: Path, env: dict[str, str],
                    log_path: Path) -> WarmProcess | None:
        zygote = self._zygote
        if zygote is None or zygote.stdin is None:
            return None

        def start_cold() -> ColdProcess:  # called under the lock, by the process handle
            self.started_warm -= 1
            self.started_cold += 1
            return ColdProcess(command, cwd, env, log_path)

        with self._lock:
            self._next_id += 1
            request_id = self._next_id
            process = WarmProcess(start_cold, time.monotonic() + START_TIMEOUT_S, self._answered)
            self._pending[request_id] = process
            self.started_warm += 1
        request = {"id": request_id, "module": module, "argv": command[3:], "cwd": str(cwd), "env": env,
                   "log": str(log_path)}
        try:
            zygote.stdin.write((json.dumps(request) + "\n").encode())
            zygote.stdin.flush()
        except (OSError, ValueError):
            with self._lock:
                self._pending.pop(request_id, None)
                self.started_warm -= 1
            return None
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
                elif "exit" in message:  # always after its start's answer: the zygote answers, then reaps
                    ended = self._processes.pop(int(message["exit"]), None)
                    if ended is not None:
                        ended.ended(int(message["returncode"]))
                elif "id" in message:
                    asked = self._pending.pop(int(message["id"]), None)
                    if asked is not None and "pid" in message:
                        self._processes[int(message["pid"])] = asked
                        asked.started(int(message["pid"]))
                    elif asked is not None:
                        asked.refused()
                self._answered.notify_all()
        # The zygote is gone: whatever it still ran is lost with it, as a host's tasks are.
        with self._answered:
            for running in self._processes.values():
                running.ended(-signal.SIGKILL)
            self._processes.clear()
            for asked in self._pending.values():
                asked.refused()
            self._pending.clear()
            self._answered.notify_all()


def _python_module(command: list[str]) -> str | None:
    """`M` for `[this interpreter, "-m", M, ...]`, else None."""
    if len(command) >= 3 and command[0] == sys.executable and command[1] == "-m" and command[2]:
        return command[2]
    return None
