"""The twin's end of lambda_zygote.py, and the two kinds of execution environment process it deals with.

`Zygote` starts the warm parent, asks it for environments (handing over each
one's stdin, control pipe and init log) and hears their pids and exit
statuses; `Forked` is such an environment, `Interpreter` a cold one started by
`subprocess`. `lambda_runtime._Worker` drives either through `Process`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any, Protocol

from .lambda_zygote import BUFFER_BYTES

ZYGOTE = Path(__file__).with_name("lambda_zygote.py")
START_TIMEOUT_S = 10.0  # the longest wait for the zygote's answer to a request (milliseconds once it is up)
EXIT_WAIT_S = 5.0  # the longest wait for a killed or dead environment's exit status


class Process(Protocol):
    """An execution environment's process, however it was started."""

    def running(self) -> bool: ...

    def started(self, timeout: float) -> bool: ...

    def exit_status(self, timeout: float) -> int | None: ...

    def kill(self) -> None: ...


class Interpreter:
    """A cold environment: a process of its own, started by `subprocess`."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    def running(self) -> bool:
        return self._process.poll() is None

    def started(self, timeout: float) -> bool:
        return True

    def exit_status(self, timeout: float) -> int | None:
        try:
            return self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()


class Forked:
    """A warm environment asked of the zygote: started once it answers with the pid, ended when it reports so."""

    def __init__(self, zygote: Zygote) -> None:
        self._zygote = zygote
        self.pid: int | None = None
        self.returncode: int | None = None
        self.lost = False  # refused, or the zygote went away before forking it, or its answer came too late

    def running(self) -> bool:
        """Pending or running, and still the zygote's: an environment it left behind as it went is retired."""
        return not self.lost and self.returncode is None and not self._zygote.gone

    def started(self, timeout: float) -> bool:
        with self._zygote.changed:
            self._zygote.changed.wait_for(lambda: self.pid is not None or self.lost, timeout)
            if self.pid is None:
                self.lost = True  # given up: an answer that still comes is killed on arrival
            return self.pid is not None

    def exit_status(self, timeout: float) -> int | None:
        with self._zygote.changed:
            self._zygote.changed.wait_for(lambda: self.returncode is not None or self.lost or self._zygote.gone,
                                          timeout)
            return self.returncode

    def kill(self) -> None:
        if self.started(START_TIMEOUT_S) and self.returncode is None:
            assert self.pid is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.exit_status(EXIT_WAIT_S)  # at once when the zygote has gone: nobody will report it


class Zygote:
    """The twin's end of lambda_zygote.py: asks it for environments, hears their pids and exit statuses."""

    def __init__(self, process: subprocess.Popen[bytes], channel: socket.socket, env: dict[str, str]) -> None:
        self.process = process
        self.channel = channel
        self.env = env
        self.changed = threading.Condition()
        self.gone = False
        self._next_id = 0
        self._asked: dict[int, Forked] = {}  # not answered yet, by request id
        self._forked: dict[int, Forked] = {}  # running, by pid
        self._reader = threading.Thread(target=self._read_answers, name="lambda-zygote-answers", daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, env: dict[str, str], log_path: Path) -> Zygote:
        """Start the zygote with `env`, outside the twin's import path: it imports while the twin goes on."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER_BYTES)
        # The twin's bytecode cache, where it keeps one, also keeps the functions' modules.
        bytecode = [os.path.abspath(sys.pycache_prefix)] if sys.pycache_prefix else []
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-P", str(ZYGOTE), str(theirs.fileno()), *bytecode],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                    pass_fds=(theirs.fileno(),), start_new_session=True)
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        return cls(process, ours, env)

    def start_environment(self, handler: str, code_dir: Path, env: dict[str, str],
                          init_log: Path) -> tuple[Forked, IO[bytes], int] | None:
        """An environment forked with `env`: its process, stdin and control pipe's read end.

        None when the request cannot reach the zygote (start it cold).
        """
        stdin_read, stdin_write = os.pipe()
        control_read, control_write = os.pipe()
        log = os.open(init_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        forked = Forked(self)
        with self.changed:
            self._next_id += 1
            request_id = self._next_id
            self._asked[request_id] = forked
        request = {"id": request_id, "handler": handler, "cwd": str(code_dir), "env": env}
        try:
            # Never under `changed`: the reader must stay free to take answers while a send waits for room.
            socket.send_fds(self.channel, [json.dumps(request).encode()], [stdin_read, control_write, log])
        except OSError:
            with self.changed:
                self._asked.pop(request_id, None)
            os.close(stdin_write)
            os.close(control_read)
            return None
        finally:  # the child's now, or nobody's
            for fd in (stdin_read, control_write, log):
                os.close(fd)
        return forked, os.fdopen(stdin_write, "wb"), control_read

    def close(self) -> None:
        """End the zygote, which kills what it forked and reports their ends first."""
        with contextlib.suppress(OSError):
            self.channel.shutdown(socket.SHUT_WR)
        try:
            self.process.wait(timeout=EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=EXIT_WAIT_S)
        self.channel.close()

    def _read_answers(self) -> None:
        while True:
            try:
                message = self.channel.recv(65536)
            except OSError:
                break
            if not message:
                break
            with contextlib.suppress(ValueError):
                self._hear(json.loads(message))
        with self.changed:  # gone: what it had not forked never will be; what it forked ends unreported
            self.gone = True
            for forked in self._asked.values():
                forked.lost = True
            self._asked.clear()
            self.changed.notify_all()

    def _hear(self, answer: dict[str, Any]) -> None:
        with self.changed:
            if "exit" in answer:  # always after its start's answer: the zygote answers, then reaps
                ended = self._forked.pop(int(answer["exit"]), None)
                if ended is not None:
                    ended.returncode = int(answer["returncode"])
            elif "id" in answer:
                self._started(self._asked.pop(int(answer["id"]), None), answer.get("pid"))
            self.changed.notify_all()

    def _started(self, forked: Forked | None, pid: int | None) -> None:
        """The zygote's answer to a request: the environment's pid, or none when it could not fork it."""
        if forked is None:
            return
        if pid is None:
            forked.lost = True
        elif forked.lost:  # given up on already (`Forked.started`): nobody will use it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        else:
            forked.pid = pid
            self._forked[pid] = forked
