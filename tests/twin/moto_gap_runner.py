"""Runs moto gap scenarios, each in a fresh process, without paying for imports each time.

Importing moto, boto3 and the twin takes seconds, so one server process per
test worker imports them once (`moto_gap_scenarios.preload()`) and forks a
child per scenario. The fixes patch moto globally: each child applies exactly
its own set, runs its scenario, answers and exits, and the server never applies
any. Forking is only safe with no other thread running, so the server checks
that before every fork. Where `os.fork` is missing, each scenario runs in a
cold interpreter instead (`python moto_gap_scenarios.py`).

Protocol: one JSON line per request on the server's stdin
(`{"id", "scenario", "with_fix", "timeout_s"}`), one JSON line per answer on
its stdout (`{"id", "returncode", "stdout", "stderr", "timed_out"}`), in the
order the children end.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

SCENARIOS = Path(__file__).with_name("moto_gap_scenarios.py")
TIMEOUT_S = 120.0  # for one scenario
STDERR_TAIL = 2000  # characters of a failed scenario's stderr quoted in the failure
REAP_INTERVAL_S = 0.05  # how often the server looks for ended children while no request comes


class ScenarioFailed(AssertionError):
    """A scenario's process ended without printing its result."""


def parse_result(name: str, with_fix: bool, returncode: int | None, stdout: str, stderr: str) -> dict:
    """The scenario's JSON line, or a failure naming the scenario and quoting its stderr."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if returncode == 0 and lines:
        return json.loads(lines[-1])
    how = "timed out" if returncode is None else f"exited {returncode}"
    variant = "with its fix" if with_fix else "without its fix"
    raise ScenarioFailed(f"scenario {name} ({variant}) {how}:\n{stderr[-STDERR_TAIL:]}")


class ScenarioRunner:
    """Runs a scenario with and without its fix, both at once, each in a process of its own."""

    def __init__(self, fork: bool = hasattr(os, "fork")) -> None:
        self.fork = fork
        self._server: subprocess.Popen[bytes] | None = None
        self._server_log: IO[bytes] | None = None
        self._pending = b""
        self._next_id = 0
        self._answers: dict[int, dict] = {}  # by request id, until taken
        self._started: dict[str, tuple[int, int]] = {}  # pairs started ahead, by scenario: their request ids

    def pair(self, name: str, timeout_s: float = TIMEOUT_S) -> tuple[dict, dict]:
        """(without the fix, with it); each run is killed after `timeout_s`."""
        if not self.fork:
            return _cold_pair(name, timeout_s)
        server = self._running_server()
        ahead = self._started.pop(name, None) if timeout_s == TIMEOUT_S else None
        broken, fixed = ahead or self._start(server, name, timeout_s)
        answers = self._await(server, {broken, fixed}, timeout_s)
        return (parse_result(name, False, *_fields(answers[broken])),
                parse_result(name, True, *_fields(answers[fixed])))

    def start_ahead(self, name: str) -> None:
        """Start `name`'s pair now, so that it runs while the caller does other work; `pair(name)` takes it."""
        if self.fork and name not in self._started:
            self._started[name] = self._start(self._running_server(), name, TIMEOUT_S)

    def close(self) -> None:
        """End the server: it kills any child still running when its stdin closes."""
        if self._server is None:
            return
        assert self._server.stdin is not None and self._server.stdout is not None
        self._server.stdin.close()
        try:
            self._server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._server.kill()
            self._server.wait()
        self._server.stdout.close()
        self._server = None
        if self._server_log is not None:
            self._server_log.close()
            self._server_log = None

    def _running_server(self) -> subprocess.Popen[bytes]:
        """The server, started anew if it is not running (say, after an earlier failure)."""
        if self._server is None or self._server.poll() is not None:
            if self._server_log is not None:
                self._server_log.close()
            self._server_log = tempfile.TemporaryFile()  # noqa: SIM115 - kept open for the server's life
            self._server = subprocess.Popen([sys.executable, str(Path(__file__)), "--serve"],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._server_log)
            self._pending = b""
            self._answers.clear()  # what the old server was asked, it will never answer
            self._started.clear()
        return self._server

    def _start(self, server: subprocess.Popen[bytes], name: str, timeout_s: float) -> tuple[int, int]:
        return self._ask(server, name, False, timeout_s), self._ask(server, name, True, timeout_s)

    def _ask(self, server: subprocess.Popen[bytes], name: str, with_fix: bool, timeout_s: float) -> int:
        assert server.stdin is not None
        self._next_id += 1
        request = {"id": self._next_id, "scenario": name, "with_fix": with_fix, "timeout_s": timeout_s}
        server.stdin.write(json.dumps(request).encode() + b"\n")
        server.stdin.flush()
        return self._next_id

    def _await(self, server: subprocess.Popen[bytes], ids: set[int], timeout_s: float) -> dict[int, dict]:
        """Read answers until every one of `ids` has come (the server itself times out each child).

        Answers to other requests (pairs started ahead) are kept for their turn.
        """
        assert server.stdout is not None
        answers = self._answers
        deadline = time.monotonic() + timeout_s + 60  # the server's own deadline, then some
        with selectors.DefaultSelector() as selector:
            selector.register(server.stdout, selectors.EVENT_READ)
            while not ids <= answers.keys():
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(timeout=left):
                    raise ScenarioFailed(f"the scenario server did not answer in time{self._server_tail()}")
                chunk = os.read(server.stdout.fileno(), 1 << 16)
                if not chunk:
                    raise ScenarioFailed(f"the scenario server ended{self._server_tail()}")
                *lines, self._pending = (self._pending + chunk).split(b"\n")
                for line in lines:
                    answer = json.loads(line)
                    answers[answer["id"]] = answer
        return {request: answers.pop(request) for request in ids}

    def _server_tail(self) -> str:
        if self._server_log is None:
            return ""
        self._server_log.seek(0)
        return ":\n" + self._server_log.read().decode(errors="replace")[-STDERR_TAIL:]


def _fields(answer: dict) -> tuple[int | None, str, str]:
    returncode = None if answer["timed_out"] else answer["returncode"]
    return returncode, answer["stdout"], answer["stderr"]


def _cold_pair(name: str, timeout_s: float) -> tuple[dict, dict]:
    """Both runs at once, each in a cold interpreter (where there is no fork)."""
    processes = [subprocess.Popen([sys.executable, str(SCENARIOS), name, *([] if with_fix else ["--without-fix"])],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for with_fix in (False, True)]
    results = []
    for process in processes:
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
            returncode: int | None = process.returncode
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            returncode = None
        results.append((returncode, stdout, stderr))
    return parse_result(name, False, *results[0]), parse_result(name, True, *results[1])


# The server side: runs as `python moto_gap_runner.py --serve`.


@dataclass
class Child:
    request: dict
    deadline: float
    stdout: Path
    stderr: Path


def serve() -> None:
    """Answer requests until stdin closes; each scenario runs in a child forked from this warm process."""
    import moto_gap_scenarios

    moto_gap_scenarios.preload()
    work = Path(tempfile.mkdtemp(prefix="moto-gap-"))
    children: dict[int, Child] = {}
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
        open_ = True
        while open_ or children:
            if not open_:
                _kill_all(children)  # the client has gone: no one will read their answers
            elif selector.select(timeout=REAP_INTERVAL_S):
                chunk = os.read(sys.stdin.fileno(), 1 << 16)
                open_ = bool(chunk)
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    pid, child = _fork(json.loads(line), work)
                    children[pid] = child
            _reap(children)
    for leftover in work.iterdir():
        leftover.unlink()
    work.rmdir()


def _other_threads() -> list[str]:
    """Threads besides this one: Python's, and on Linux any a native library started."""
    others = [thread.name for thread in threading.enumerate() if thread is not threading.current_thread()]
    tasks = Path("/proc/self/task")
    native = len(list(tasks.iterdir())) - 1 - len(others) if tasks.is_dir() else 0
    if native > 0:
        others.append(f"{native} native thread(s)")
    return others


def _fork(request: dict, work: Path) -> tuple[int, Child]:
    others = _other_threads()
    if others:
        raise RuntimeError(f"cannot fork a scenario: threads are running in the scenario server: {others}")
    child = Child(request, time.monotonic() + request["timeout_s"],
                  work / f"{request['id']}.out", work / f"{request['id']}.err")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _run_child(request, child)
    with contextlib.suppress(OSError):  # the child got there first
        os.setpgid(pid, pid)  # as the child does too: its group exists before either goes on
    return pid, child


def _run_child(request: dict, child: Child) -> NoReturn:
    """In the forked child: its own process group (killed whole on timeout), its own output files."""
    code = 1
    try:
        os.setpgid(0, 0)
        _redirect(0, os.devnull, os.O_RDONLY)
        _redirect(1, child.stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        _redirect(2, child.stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        import moto_gap_scenarios

        result = moto_gap_scenarios.run(request["scenario"], request["with_fix"])
        print(json.dumps(result, default=str))
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # moto's daemon threads must not keep the child alive, nor run the server's cleanup


def _redirect(fd: int, path: os.PathLike[str] | str, flags: int) -> None:
    target = os.open(path, flags, 0o600)
    os.dup2(target, fd)
    os.close(target)


def _reap(children: dict[int, Child]) -> None:
    """Answer for every child that has ended, and kill those past their deadline."""
    for pid, child in list(children.items()):
        timed_out = time.monotonic() > child.deadline
        if timed_out:
            _kill_group(pid)
        ended, status = os.waitpid(pid, 0 if timed_out else os.WNOHANG)
        if not ended:
            continue
        _kill_group(pid)  # whatever the scenario left behind
        del children[pid]
        _answer({"id": child.request["id"], "returncode": os.waitstatus_to_exitcode(status),
                 "timed_out": timed_out, "stdout": _read_and_remove(child.stdout),
                 "stderr": _read_and_remove(child.stderr)})


def _kill_all(children: dict[int, Child]) -> None:
    for child in children.values():
        child.deadline = 0.0


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _read_and_remove(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    path.unlink()
    return text


def _answer(answer: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    serve()
    sys.stdout.flush()
    os._exit(0)  # skip tearing down the thousands of modules imported: nothing is left to clean
