"""A warm parent for the twin's Batch job processes: it imports the jobs' heavy libraries once, then forks.

A job's command is `python -m <module> ...`. Started cold, each such process
spends most of a small job importing NumPy, DuckDB, pyarrow and boto3. This
process imports them once and forks a child per job; the child takes the job's
working directory, environment, arguments and log file and runs the module as
`python -m` would, so it starts from a fresh process state except for those
already-imported third-party modules (never threadline's own job packages).

What else keeps a child's start short, none of it visible to the job:
- the imported objects are frozen out of the garbage collector (`gc.freeze`)
  before the first fork, so a child's collections do not walk, and so copy, the
  pages it shares with this process;
- the children compile the job's own modules once for the twin: they keep the
  bytecode in this process's cache folder (`sys.pycache_prefix`), never in the
  job's folder, which PYTHONDONTWRITEBYTECODE in the job's environment guards;
- a child's end wakes this process at once (SIGCHLD through a wake-up pipe);
- `SPARES` children are forked ahead of their request and wait for it on a pipe
  of their own: an attempt's containers and nodes, asked for together, start at
  once instead of one fork (10 to 30 ms with this heap) after another. A spare
  is the same fork, made earlier; it reads its request, then goes on as any
  child does.

Protocol, one JSON object a line. Requests on stdin:
  {"id": N, "module": M, "argv": [...], "cwd": DIR, "env": {...}, "log": FILE}
Answers on stdout:
  {"ready": true}                      once the libraries are imported
  {"id": N, "pid": P}                  the child started
  {"id": N, "error": TEXT}             it could not
  {"exit": P, "returncode": R}         a child ended (R = -N when killed by signal N)
When stdin closes, the children still running are killed and the process exits.

For profiling the twin only: with THREADLINE_JOB_PROFILE naming a folder in the
zygote's own environment, each child runs its module under cProfile and writes
`<module>-<pid>.prof` there as it exits (the job's environment never has it).
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import importlib
import json
import os
import runpy
import select
import signal
import sys
import tempfile
import traceback
from dataclasses import dataclass
from typing import Any

from .fork_parent import ended_children, exit_code, share_botocore_models, wake_on_child_exit

BACKSTOP_S = 10.0  # the longest wait between two looks for ended children (a SIGCHLD ends it at once)
SPARES = 4  # children forked ahead: the analysis asks for two nodes and their sidecars at once
PROFILE_ENV = "THREADLINE_JOB_PROFILE"
# The AWS services the jobs call (jobs/jobkit/aws.py): their botocore models are parsed here once.
BOTOCORE_SERVICES = ("s3", "dynamodb")


@dataclass(frozen=True)
class _ForkSettings:
    """What every child needs from this process, besides its request."""

    base_path: list[str]
    bytecode_dir: str
    wake_fds: tuple[int, int]
    profile_dir: str | None


def main(preload: list[str]) -> None:
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # a job that needs it imports it (and fails) itself
            print(f"job zygote: could not preload {name}: {exc}", file=sys.stderr)
    share_botocore_models(BOTOCORE_SERVICES, "job zygote")
    with tempfile.TemporaryDirectory(prefix="threadline-job-bytecode-") as bytecode_dir:
        settings = _ForkSettings([entry for entry in sys.path if entry not in ("", os.getcwd())], bytecode_dir,
                                 wake_on_child_exit(), os.environ.get(PROFILE_ENV) or None)
        gc.collect()
        gc.freeze()
        _send({"ready": True})
        _serve(settings)
        # Left frozen: the interpreter's last collection would walk the whole preloaded heap
        # (about 0.15 s of every twin stop) only to free memory the process gives back anyway.


@dataclass(frozen=True)
class _Spare:
    """A child forked ahead of its request, reading it from its own pipe."""

    pid: int
    requests: int  # the pipe's write end: the request, then end of file


def _serve(settings: _ForkSettings) -> None:
    """Start a child per request until stdin closes; report each child's end."""
    children: set[int] = set()
    spares: list[_Spare] = []
    wake = settings.wake_fds[0]
    pending = b""
    while True:
        _fork_spares(spares, settings)
        readable, _, _ = select.select([0, wake], [], [], BACKSTOP_S)
        if wake in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake, 4096)
        _reap(children, spares)
        if 0 not in readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                _start(json.loads(line), settings, children, spares)
    for spare in spares:  # end of file: a spare that got no request exits
        os.close(spare.requests)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(len(children) + len(spares)):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-1, 0)
    _reap(children, [])


def _fork_spares(spares: list[_Spare], settings: _ForkSettings) -> None:
    while len(spares) < SPARES:
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            # Nothing of this process's stays open but the request pipe and stderr: not the twin's pipes
            # (stdin, stdout), not the other spares' pipes.
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.close(devnull)
            os.closerange(3, read_end)
            os.closerange(read_end + 1, os.sysconf("SC_OPEN_MAX"))
            request = _read_request(read_end)
            if request is None:
                os._exit(0)
            _child(request, None, settings)  # never returns
        os.close(read_end)
        spares.append(_Spare(pid, write_end))


def _start(request: dict[str, Any], settings: _ForkSettings, children: set[int], spares: list[_Spare]) -> None:
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except (OSError, KeyError) as exc:
        _send({"id": request.get("id"), "error": f"cannot open the job's log: {exc}"})
        return
    while spares:
        spare = spares.pop(0)
        os.close(log)  # the spare opens it again, emptied now
        try:
            _write_all(spare.requests, json.dumps(request).encode())
        except OSError:  # it died waiting: reaped as a spare, and the next one takes the request
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            continue
        finally:
            os.close(spare.requests)
        children.add(spare.pid)
        _send({"id": request["id"], "pid": spare.pid})
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(request, log, settings)  # never returns
    os.close(log)
    children.add(pid)
    _send({"id": request["id"], "pid": pid})


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_request(requests: int) -> dict[str, Any] | None:
    """A spare's request: all its pipe holds until end of file (none when the zygote closes it unused)."""
    data = b""
    while chunk := os.read(requests, 65536):
        data += chunk
    os.close(requests)
    return json.loads(data) if data else None


def _child(request: dict[str, Any], log: int | None, settings: _ForkSettings) -> None:
    """Become the job: `python -m module argv...` in its folder, with its environment only.

    `log` is the job's log, opened by the zygote; a spare (None) opens it itself.
    """
    code = 1
    profiler = cProfile.Profile() if settings.profile_dir else None
    try:
        signal.set_wakeup_fd(-1)  # SIGCHLD as a fresh process has it: the job's own children are its business
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in settings.wake_fds:
            with contextlib.suppress(OSError):  # a spare closed them already
                os.close(fd)
        if log is None:
            log = os.open(request["log"], os.O_WRONLY | os.O_APPEND)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(devnull)
        os.close(log)
        # Line-buffered, as the job images set PYTHONUNBUFFERED: a killed job leaves its log.
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the process's own stdout
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        env = {str(k): str(v) for k, v in request["env"].items()}
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(env)
        python_path = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
        sys.path[:] = [request["cwd"], *python_path, *settings.base_path]
        sys.pycache_prefix = settings.bytecode_dir  # the twin's cache, outside the job's folder
        sys.dont_write_bytecode = False
        sys.argv = [request["module"], *request["argv"]]
        code = 0
        if profiler is not None:
            profiler.enable()
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            if profiler is not None and settings.profile_dir is not None:
                profiler.disable()
                profiler.dump_stats(os.path.join(settings.profile_dir, f"{request['module']}-{os.getpid()}.prof"))
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _reap(children: set[int], spares: list[_Spare]) -> None:
    """Report each ended child; a spare that ended before its request is forgotten (another is forked)."""
    if not (children or spares):
        return
    try:
        for pid, returncode in ended_children():
            if pid in children:
                children.discard(pid)
                _send({"exit": pid, "returncode": returncode})
                continue
            for spare in [spare for spare in spares if spare.pid == pid]:
                os.close(spare.requests)
                spares.remove(spare)
    except ChildProcessError:
        children.clear()


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
