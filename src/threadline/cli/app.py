"""`threadline`: run the pipeline offline in the twin."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .lineage_cli import app as lineage_app

app = typer.Typer(help="threadline: CSV -> Step Functions + Batch pipeline, and its offline twin.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(lineage_app, name="lineage")
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

INCOMING_PREFIX = "incoming/"  # the template's IncomingPrefix default, which the twin provisions
INCOMING_SUFFIXES = (".csv", ".csv.gz")  # what the start function's EventBridge rule matches
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as for any program whose reader went away

SAMPLE = Path(__file__).with_name("data") / "sample-positions.csv"
FaultOption = Annotated[Optional[list[str]], typer.Option(
    "--fault", help="Inject a fault: JOB[@QUEUE]:KIND[:ATTEMPTS], e.g. preprocess@SpotJobQueue:spot")]
WorkdirOption = Annotated[Path, typer.Option(help="Where the twin keeps logs, the Slack outbox and the lineage graph.")]


@app.command()
def demo(workdir: WorkdirOption = Path(".threadline"), fault: FaultOption = None) -> None:
    """Run the whole pipeline offline on the bundled sample CSV."""
    _run_one(SAMPLE, "incoming/sample-positions.csv", workdir, fault or [])


@app.command()
def run(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
        key: Annotated[Optional[str], typer.Option(help="Object key in the incoming bucket.")] = None,
        workdir: WorkdirOption = Path(".threadline"), fault: FaultOption = None,
        resume: Annotated[bool, typer.Option(
            "--resume", help="Then run FILE again, resumed from the lineage graph: steps whose cache key matches "
                             "an earlier successful step with its outputs still there are reused (faults apply "
                             "to the first run only).")] = False) -> None:
    """Run the whole pipeline offline on FILE (.csv or .csv.gz)."""
    _run_one(file, key or f"incoming/{file.name}", workdir, fault or [], resume=resume)


@app.command()
def up(workdir: WorkdirOption = Path(".threadline"),
       port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 4566,
       fault: FaultOption = None) -> None:
    """Keep the twin serving on 127.0.0.1: upload CSVs with `aws --endpoint-url` or boto3 to start runs."""
    from .twin.runs import TERMINAL, collect, skipped_uploads, wait
    from .twin.server import TwinConfig

    parsed = _parse_faults(fault or [])
    if port and not port_free(port):
        _fail(f"port {port} on 127.0.0.1 is in use by another program (another `threadline up`?); "
              "stop it or pass --port N", 2)
    twin = _start_twin(TwinConfig(workdir=workdir.resolve(), port=port), workdir)
    for item in parsed:
        twin.faults.add(item)
    incoming = twin.physical_id("IncomingBucket")
    console.print(f"[bold]threadline twin[/] serving AWS APIs on {twin.endpoint_url}")
    console.print("  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1")
    console.print(f"  aws --endpoint-url {twin.endpoint_url} s3 cp positions.csv s3://{incoming}/incoming/positions.csv")
    _print_cloud_only(twin)
    sfn = twin.client("stepfunctions")
    reported: set[str] = set()
    heard = 0  # start-function invocations looked at for skipped uploads
    try:
        while True:
            for execution in sfn.list_executions(stateMachineArn=twin.state_machine_arn)["executions"]:
                arn = execution["executionArn"]
                if arn not in reported and execution["status"] in TERMINAL:
                    reported.add(arn)
                    _print_run(twin, collect(twin, wait(twin, arn)))
            skipped, heard = skipped_uploads(twin, heard)
            for skip in skipped:
                console.print(f"[yellow]no run started:[/] {escape(str(skip))}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping the twin")
    finally:
        twin.stop()
    _exit_now(0)


@app.command()
def sample(rows: Annotated[int, typer.Option(min=0, help="Data rows to write.")] = 200,
           bad_share: Annotated[float, typer.Option(
               min=0.0, max=1.0, help="Share of rows with one defect each, 0..1.")] = 0.0,
           seed: Annotated[int, typer.Option(help="Random seed; the file depends on rows, share and seed only.")] = 7,
           out: Annotated[str, typer.Option(help="Output path; .gz compresses; - for stdout.")] = "-") -> None:
    """Generate example position CSVs (the same generator the tests and benchmarks use).

    e.g. threadline sample --rows 1000 --bad-share 0.02 --out positions.csv
    """
    from .samples import main as generate

    try:
        code = generate(["--rows", str(rows), "--bad-share", repr(bad_share), "--seed", str(seed), f"--out={out}"])
    except BrokenPipeError:  # `threadline sample | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(EXIT_BROKEN_PIPE) from None
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or exc}", 1)
    raise typer.Exit(code)


def _run_one(file: Path, key: str, workdir: Path, faults: list[str], resume: bool = False) -> None:
    from .twin.runs import RunNotStarted, collect, find_execution, upload
    from .twin.server import TwinConfig

    parsed = _parse_faults(faults)
    if not key.startswith(INCOMING_PREFIX) or not key.endswith(INCOMING_SUFFIXES):
        _fail(f"the key {key} starts no run: runs start for objects under {INCOMING_PREFIX} ending with "
              f"{' or '.join(INCOMING_SUFFIXES)}; rename the file or pass --key {INCOMING_PREFIX}NAME.csv", 2)
    started = time.monotonic()
    twin = _start_twin(TwinConfig(workdir=workdir.resolve()), workdir)
    watching = _Watch()
    try:
        for item in parsed:
            twin.faults.add(item)
        ready = time.monotonic() - started
        console.print(f"[bold]threadline twin[/] ready in {ready:.2f}s on {twin.endpoint_url} "
                      f"({len(twin.provisioned.physical_ids)} resources from template.yaml)")
        _print_cloud_only(twin)
        run_started = time.monotonic()
        uploaded = upload(twin, file, key)
        console.print(f"uploaded {file.name} to s3://{uploaded['bucket']}/{key}")
        watching.what = f"waiting for a run of s3://{uploaded['bucket']}/{key} to start"
        try:
            arn = find_execution(twin, uploaded["bucket"], key, uploaded["version_id"],
                                 since=uploaded["uploaded_at"])
        except RunNotStarted as exc:
            _print_not_started(exc)
            twin.stop()
            _exit_now(1)
        result = collect(twin, _wait_showing(twin, arn, watching))
        elapsed = time.monotonic() - run_started
        _print_run(twin, result)
        console.print(f"\nrun took {elapsed:.2f}s from upload to {result.status} "
                      f"(twin start {ready:.2f}s); logs under {twin.workdir / 'logs'}")
        if resume:  # every `threadline run` starts from empty buckets: the rerun resumes from the run above
            from .rerun import rerun, source_of_run

            twin.faults.clear()
            sfn = twin.client("stepfunctions")
            source = source_of_run(sfn, twin.state_machine_arn, result.run_id)
            console.print("\n[bold]rerun, resumed from the lineage graph[/] (faults applied to the first run only)")
            _, arn = rerun(sfn, twin.state_machine_arn, source, base_run_id=result.run_id)
            rerun_started = time.monotonic()
            result = collect(twin, _wait_showing(twin, arn, watching))
            _print_run(twin, result)
            console.print(f"\nresumed run took {time.monotonic() - rerun_started:.2f}s to {result.status}")
    except KeyboardInterrupt:
        _interrupted(twin, watching)
    twin.stop()
    _exit_now(0 if result.status == "SUCCEEDED" else 1)


class _Watch:
    """What the command is waiting for, to say what a Ctrl-C interrupted."""

    def __init__(self) -> None:
        self.what = "starting the twin"
        self.run_id: str | None = None
        self.state: str | None = None
        self.elapsed = 0.0


def _wait_showing(twin: Any, arn: str, watching: _Watch) -> Any:
    """`runs.wait` for as long as the execution runs, showing its current state and elapsed time."""
    from .twin.runs import wait

    watching.run_id = arn.rsplit(":", 1)[-1]
    watching.what = f"run {watching.run_id}"
    watching.state = None
    if console.is_terminal:
        with console.status(f"starting run {watching.run_id}") as status:
            def show(state_status: str, state: str | None, elapsed: float) -> None:
                watching.state, watching.elapsed = state, elapsed
                status.update(f"[bold]{escape(state or 'starting')}[/] {_duration(elapsed)} "
                              f"({state_status.lower()}; Ctrl-C stops it) run {watching.run_id}")

            result = wait(twin, arn, progress=show)
    else:
        def log(state_status: str, state: str | None, elapsed: float) -> None:  # no terminal: a line per state
            changed = state != watching.state
            watching.state, watching.elapsed = state, elapsed
            if changed:
                console.print(f"  ... {state_status} in {state or '(starting)'} after {_duration(elapsed)}")

        result = wait(twin, arn, progress=log)
    watching.what, watching.run_id = f"reporting run {watching.run_id}", None
    return result


def _interrupted(twin: Any, watching: _Watch) -> None:
    if watching.run_id:
        where = f" in {watching.state}" if watching.state else ""
        said = (f"interrupted: {watching.what} was RUNNING{where} after {_duration(watching.elapsed)}. "
                "The twin runs inside this command, so the run stopped with it")
    else:
        said = f"interrupted while {watching.what}; the twin is stopped"
    err_console.print(f"\n[yellow]{escape(said)}[/]")
    err_console.print(f"logs so far are under {escape(str(twin.workdir / 'logs'))}; run the command again to "
                      "start over, or use `threadline up` to keep a twin serving", highlight=False)
    try:
        twin.stop()
    except BaseException:  # noqa: BLE001 - a second Ctrl-C or a half-stopped twin: exit anyway
        pass
    _exit_now(EXIT_INTERRUPTED)


def _quiet_on_interrupt() -> None:
    """On Ctrl-C, silence the twin's server threads before the main thread says what was interrupted.

    The twin's Lambda and Batch processes share the terminal and die of the
    same Ctrl-C; the threads that were talking to them would log their errors
    (with tracebacks) over the message. From the Ctrl-C on, only the main
    thread writes to the terminal. Left alone where SIGINT is ignored (a
    background job).
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return

    def interrupted(signum: int, frame: Any) -> None:
        logging.disable(logging.CRITICAL)
        threading.excepthook = lambda args: None
        sys.stdout, sys.stderr = _MainThreadOnly(sys.stdout), _MainThreadOnly(sys.stderr)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupted)


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


def _print_not_started(exc: Exception) -> None:
    from .twin.runs import RunSkipped

    if isinstance(exc, RunSkipped):
        err_console.print(f"[red]no run started[/] for {escape(exc.uri)}", highlight=False)
        err_console.print(f"  the start function skipped it: {escape(exc.reason)}", highlight=False)
        if exc.log_path:
            err_console.print(f"  its log: {escape(str(exc.log_path))}", highlight=False)
        err_console.print("  fix the file and run it again", highlight=False)
    else:
        err_console.print(f"[red]no run started:[/] {escape(str(exc))}", highlight=False)


def _parse_faults(specs: list[str]) -> list[Any]:
    from .twin.faults import Fault, FaultSpecError

    try:
        return [Fault.parse(spec) for spec in specs]
    except FaultSpecError as exc:
        _fail(str(exc), 2)


def _start_twin(config: Any, workdir: Path) -> Any:
    """Take the workdir (one twin per workdir) and start the twin; a clear message and exit 2 if it is taken."""
    from .twin.server import Twin
    from .twin.workdir_lock import WorkdirInUse, WorkdirLock, in_use_by_database

    try:
        _held_workdirs.append(WorkdirLock(config.workdir).acquire())  # held until this process ends
    except WorkdirInUse as exc:
        _workdir_in_use(workdir, exc.pid)
    except OSError as exc:
        _fail(f"cannot use the workdir {workdir}: {exc.strerror or exc}", 2)
    _quiet_on_interrupt()
    twin = Twin(config)
    try:
        return twin.start()
    except KeyboardInterrupt:
        err_console.print("\n[yellow]interrupted while starting the twin[/]")
        _exit_now(EXIT_INTERRUPTED)
    except RuntimeError as exc:  # a process that took no lock file holds the graph (e.g. a script's Twin)
        held = in_use_by_database(exc, config.workdir)
        if held is None:
            raise
        _workdir_in_use(workdir, held.pid, twin_started=True)


_held_workdirs: list[Any] = []


def _workdir_in_use(workdir: Path, pid: int | None, twin_started: bool = False) -> NoReturn:
    holder = f"pid {pid}" if pid else "pid unknown"
    _fail(f"the workdir {workdir} is in use by another threadline process ({holder}): "
          "its lineage graph takes one twin at a time; stop that process or pass --workdir DIR", 2, twin_started)


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


def _fail(message: str, code: int, twin_started: bool = False) -> NoReturn:
    """Say what happened and what to do, and exit with `code`.

    Once a twin has started (its server threads may still run) the exit is
    immediate, as at the end of a run.
    """
    err_console.print(f"[red]error:[/] {escape(message)}", highlight=False)
    if twin_started:
        _exit_now(code)
    raise typer.Exit(code)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _exit_now(code: int) -> NoReturn:
    """Exit once the twin is stopped and the output flushed.

    Tearing down moto's in-memory backends at interpreter exit takes ~1.5 s and
    holds nothing that still needs writing, so skip it.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_cloud_only(twin: object) -> None:
    cloud_only = twin.provisioned.cloud_only  # type: ignore[attr-defined]
    if cloud_only:
        names = ", ".join(f"{item.logical_id}" for item in cloud_only)
        console.print(f"[dim]cloud-only (not in the twin): {names}[/]")


def _print_run(twin: object, result: object) -> None:
    from .lineage_view import lineage_summary
    from .twin.runs import write_execution_graph

    r = result  # type: ignore[assignment]
    colour = "green" if r.status == "SUCCEEDED" else "red"
    console.print(f"\n[bold]run[/] {r.run_id}: [{colour}]{r.status}[/] in {r.seconds:.2f}s")
    if r.error:
        console.print(f"  error: [red]{escape(r.error)}[/]  cause: {escape(_short(r.cause, 300))}")
    table = Table(title="states taken", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("state")
    table.add_column("type")
    table.add_column("seconds", justify="right")
    for index, visit in enumerate(r.states, 1):
        seconds = "" if visit.seconds is None else f"{visit.seconds:.2f}"
        table.add_row(str(index), visit.name, visit.state_type, seconds)
    console.print(table)
    if r.objects:
        console.print("[bold]outputs[/]")
        for logical_id, uris in r.objects.items():
            for uri in uris:
                console.print(f"  {uri}")
    if r.record:
        console.print("[bold]DynamoDB run record[/]")
        console.print_json(json.dumps(r.record, default=str))
    console.print(f"[bold]Slack[/] ({len(r.slack)} messages, outbox {twin.outbox})")  # type: ignore[attr-defined]
    for message in r.slack:
        console.print(f"  - {escape(_short(message.get('text', ''), 160))}")
    console.print("[bold]lineage[/]")
    for line in lineage_summary(twin, r.run_id):
        console.print(f"  {escape(line)}")
    console.print(f"[bold]execution graph[/] (as the Step Functions console draws it): "
                  f"{write_execution_graph(twin, r)}")  # type: ignore[arg-type]


def _short(text: str | None, limit: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


if __name__ == "__main__":
    app()
