"""A twin running inside a command: its workdir lock, waiting for a run with its progress shown, and Ctrl-C.

A command that starts a twin holds its workdir (one twin per workdir) until
the process ends. From the twin's start on, a Ctrl-C silences the twin's
server threads so that only the command says what was interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from rich.markup import escape

from .console import EXIT_INTERRUPTED, console, err_console, exit_now, fail

if TYPE_CHECKING:
    from ..twin.faults import Fault
    from ..twin.runs import RunResult
    from ..twin.server import Twin, TwinConfig

_held_workdirs: list[Any] = []  # the workdir locks this process holds, until it ends


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on host:port now (bound as the twin's server binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if os.name != "nt":  # as werkzeug: connections of an earlier server in TIME_WAIT do not block
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def parse_faults(specs: list[str]) -> list[Fault]:
    """The `--fault` options; a spec that does not parse is a usage error (exit 2)."""
    from ..twin.faults import Fault, FaultSpecError

    try:
        return [Fault.parse(spec) for spec in specs]
    except FaultSpecError as exc:
        fail(str(exc), 2)


def start_twin(config: TwinConfig, workdir: Path) -> Twin:
    """Take the workdir (one twin per workdir) and start the twin; a clear message and exit 2 if it is taken."""
    from ..twin.server import Twin
    from ..twin.workdir_lock import WorkdirInUse, WorkdirLock, in_use_by_database

    try:
        _held_workdirs.append(WorkdirLock(config.workdir).acquire())
    except WorkdirInUse as exc:
        _workdir_in_use(workdir, exc.pid)
    except OSError as exc:
        fail(f"cannot use the workdir {workdir}: {exc.strerror or exc}", 2)
    _quiet_on_interrupt()
    twin = Twin(config)
    try:
        return twin.start()
    except KeyboardInterrupt:
        err_console.print("\n[yellow]interrupted while starting the twin[/]")
        exit_now(EXIT_INTERRUPTED)
    except RuntimeError as exc:  # a process that took no lock file holds the graph (e.g. a script's Twin)
        held = in_use_by_database(exc, config.workdir)
        if held is None:
            raise
        _workdir_in_use(workdir, held.pid, twin_started=True)


def _workdir_in_use(workdir: Path, pid: int | None, twin_started: bool = False) -> NoReturn:
    holder = f"pid {pid}" if pid else "pid unknown"
    fail(f"the workdir {workdir} is in use by another threadline process ({holder}): "
         "its lineage graph takes one twin at a time; stop that process or pass --workdir DIR", 2, twin_started)


class Watch:
    """What the command is waiting for, to say what a Ctrl-C interrupted."""

    def __init__(self) -> None:
        self.what = "starting the twin"
        self.run_id: str | None = None
        self.state: str | None = None
        self.elapsed = 0.0


def wait_showing(twin: Twin, arn: str, watching: Watch, show: bool = True) -> RunResult:
    """`runs.wait` for as long as the execution runs, showing its states and Batch jobs as they change.

    A live view on a terminal, plain lines otherwise, nothing when `show` is off (`--json`).
    """
    from ..twin.run_progress import ProgressReader
    from ..twin.runs import wait
    from .progress import LiveView, PlainLines

    watching.run_id = arn.rsplit(":", 1)[-1]
    watching.what = f"run {watching.run_id}"
    watching.state = None
    reader = ProgressReader(twin.client("stepfunctions"), twin.client("batch"), twin.client("s3"))

    def tick(status: str, state: str | None, elapsed: float) -> None:
        _interrupt_if_signalled()
        watching.state, watching.elapsed = state or watching.state, elapsed
        if show:
            snapshot = reader.read(arn)
            # The view may show a state entered since `state` was read: a Ctrl-C after it names that one.
            entered = [visit.name for visit in snapshot.states if visit.exited is None]
            watching.state = entered[-1] if entered else watching.state
            view.show(snapshot, elapsed)

    view: LiveView | PlainLines
    with _interrupts_between_ticks():
        if show and console.is_terminal:
            with LiveView(watching.run_id) as view:
                result = wait(twin, arn, progress=tick, progress_every=0.25)
        else:
            view = PlainLines()
            result = wait(twin, arn, progress=tick, progress_every=0.25)
            if show:  # what happened since the last tick
                view.show(reader.read(arn), result.seconds)
    watching.what, watching.run_id = f"reporting run {watching.run_id}", None
    return result


def interrupted(twin: Twin, watching: Watch) -> NoReturn:
    """Say what a Ctrl-C interrupted, stop the twin, and exit 130."""
    if watching.run_id:
        where = f" in {watching.state}" if watching.state else ""
        said = (f"interrupted: {watching.what} was RUNNING{where} after {_duration(watching.elapsed)}. "
                "The twin runs inside this command, so the run stopped with it")
    else:
        said = f"interrupted while {watching.what}; the twin is stopped"
    err_console.print(f"\n[yellow]{escape(said)}[/]")
    err_console.print(f"logs so far are under {escape(str(twin.workdir / 'logs'))}; the workdir keeps what was "
                      "done (`threadline runs`); run the command again, or use `threadline up` to keep a twin "
                      "serving", highlight=False)
    with contextlib.suppress(BaseException):  # a second Ctrl-C or a half-stopped twin: exit anyway
        twin.stop()
    exit_now(EXIT_INTERRUPTED)


def _quiet_on_interrupt() -> None:
    """On Ctrl-C or SIGTERM, silence the twin's server threads before the main thread says what was interrupted.

    The twin's Lambda and Batch processes share the terminal and die of the
    same Ctrl-C; the threads that were talking to them would log their errors
    (with tracebacks) over the message. From the signal on, only the main
    thread writes to the terminal. SIGTERM (`kill`, a CI runner's cancel) stops
    the command as Ctrl-C does: runs closed, state saved, the workdir reusable.
    Left alone where a signal is ignored (SIGINT in a background job).
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def on_interrupt(signum: int, frame: Any) -> None:
        logging.disable(logging.CRITICAL)
        threading.excepthook = lambda args: None
        if not isinstance(sys.stdout, _MainThreadOnly):
            sys.stdout, sys.stderr = _MainThreadOnly(sys.stdout), _MainThreadOnly(sys.stderr)
        if _signals.deferred and not _signals.pending:
            _signals.pending = True  # the wait for the run raises it between two looks (a second signal: at once)
            return
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, on_interrupt)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, on_interrupt)


class _Signals:
    """Whether a Ctrl-C or SIGTERM waits for the next look at the run, and whether one came."""

    deferred = False
    pending = False


_signals = _Signals()


@contextlib.contextmanager
def _interrupts_between_ticks() -> Iterator[None]:
    """While a run is waited for, a signal interrupts between two looks at it, not at an arbitrary point.

    The wait spends its time in the twin's in-process API calls (moto and
    botocore code, with their locks and handlers); a KeyboardInterrupt raised in
    the middle of one can leave the twin unable to stop. The next look is at
    most a quarter of a second away.
    """
    _signals.deferred = True
    try:
        yield
    finally:
        _signals.deferred = False
    _interrupt_if_signalled()


def _interrupt_if_signalled() -> None:
    if _signals.pending:
        _signals.pending = False
        raise KeyboardInterrupt


class _MainThreadOnly:
    """A text stream that drops what other threads write (socketserver prints tracebacks straight to stderr)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if threading.current_thread() is threading.main_thread():
            return int(self._stream.write(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"
