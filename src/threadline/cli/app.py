"""`threadline`: run the pipeline offline in the twin."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from ..lineage.clients import StepFunctionsClient
from . import render
from .console import EXIT_BROKEN_PIPE, exit_now, fail
from .cost import cost
from .deploy import deploy
from .graph import graph
from .history import open_run, runs
from .lineage import app as lineage_app
from .twin_session import Watch, interrupted, parse_faults, port_free, start_twin, wait_showing

app = typer.Typer(help="threadline: CSV -> Step Functions + Batch pipeline, and its offline twin.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(lineage_app, name="lineage")
app.command()(deploy)
app.command()(graph)
app.command()(runs)
app.command(name="open")(open_run)
app.command()(cost)

INCOMING_PREFIX = "incoming/"  # the template's IncomingPrefix default, which the twin provisions
INCOMING_SUFFIXES = (".csv", ".csv.gz")  # what the start function's EventBridge rule matches

SAMPLE = Path(__file__).parents[1] / "data" / "sample-positions.csv"
FaultOption = Annotated[list[str] | None, typer.Option(
    "--fault", help="Inject a fault: JOB[@QUEUE]:KIND[:ATTEMPTS], e.g. preprocess@SpotJobQueue:spot")]
WorkdirOption = Annotated[Path, typer.Option(
    help="Where the twin keeps its state (S3 objects, run records, executions, queues), logs, the Slack outbox "
         "and the lineage graph; a later twin there continues from it.")]
JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print one JSON result (status, run id, path, outputs with s3 and local paths, seconds) and "
                   "nothing else on stdout.")]


@app.command()
def demo(workdir: WorkdirOption = Path(".threadline"), fault: FaultOption = None, as_json: JsonOption = False) -> None:
    """Run the whole pipeline offline on the bundled sample CSV."""
    _run_one(SAMPLE, "incoming/sample-positions.csv", workdir, fault or [], as_json=as_json)


@app.command()
def run(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
        key: Annotated[str | None, typer.Option(help="Object key in the incoming bucket.")] = None,
        workdir: WorkdirOption = Path(".threadline"), fault: FaultOption = None,
        resume: Annotated[bool, typer.Option(
            "--resume", help="Resume from the lineage graph: steps whose cache key matches an earlier successful "
                             "step with its outputs still there are reused. When the workdir has FILE from an "
                             "earlier run, only the resumed run runs; else FILE runs first, then resumed (faults "
                             "apply to that first run only).")] = False,
        as_json: JsonOption = False) -> None:
    """Run the whole pipeline offline on FILE (.csv or .csv.gz)."""
    _run_one(file, key or f"incoming/{file.name}", workdir, fault or [], resume=resume, as_json=as_json)


@app.command()
def up(workdir: WorkdirOption = Path(".threadline"),
       port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 4566,
       fault: FaultOption = None) -> None:
    """Keep the twin serving on 127.0.0.1: upload CSVs with `aws --endpoint-url` or boto3 to start runs."""
    from ..twin.runs import TERMINAL, collect, skipped_uploads, wait
    from ..twin.server import TwinConfig

    parsed = parse_faults(fault or [])
    if port and not port_free(port):
        fail(f"port {port} on 127.0.0.1 is in use by another program (another `threadline up`?); "
             "stop it or pass --port N", 2)
    twin = start_twin(TwinConfig(workdir=workdir.resolve(), port=port), workdir)
    for item in parsed:
        twin.faults.add(item)
    render.twin_serving(twin)
    steps = StepFunctionsClient(twin.client("stepfunctions"))
    reported: set[str] = set()
    announced: set[str] = set()
    heard = 0  # start-function invocations looked at for skipped uploads
    try:
        while True:
            for execution in steps.executions(twin.state_machine_arn):
                arn = execution["executionArn"]
                if arn not in announced:
                    announced.add(arn)
                    render.run_started(execution["name"])
                if arn not in reported and execution["status"] in TERMINAL:
                    reported.add(arn)
                    render.run(twin, collect(twin, wait(twin, arn)))
            skipped, heard = skipped_uploads(twin, heard)
            for skip in skipped:
                render.skipped_upload(skip)
            time.sleep(0.5)
    except KeyboardInterrupt:
        render.stopping()
    finally:
        twin.stop()
    exit_now(0)


@app.command()
def sample(rows: Annotated[int, typer.Option(min=0, help="Data rows to write.")] = 200,
           bad_share: Annotated[float, typer.Option(
               min=0.0, max=1.0, help="Share of rows with one defect each, 0..1.")] = 0.0,
           seed: Annotated[int, typer.Option(help="Random seed; the file depends on rows, share and seed only.")] = 7,
           out: Annotated[str, typer.Option(help="Output path; .gz compresses; - for stdout.")] = "-") -> None:
    """Generate example position CSVs (the same generator the tests and benchmarks use).

    e.g. threadline sample --rows 1000 --bad-share 0.02 --out positions.csv
    """
    from ..samples import main as generate

    try:
        code = generate(["--rows", str(rows), "--bad-share", repr(bad_share), "--seed", str(seed), f"--out={out}"])
    except BrokenPipeError:  # `threadline sample | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(EXIT_BROKEN_PIPE) from None
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}", 1)
    raise typer.Exit(code)


def _run_one(file: Path, key: str, workdir: Path, faults: list[str], resume: bool = False,
             as_json: bool = False) -> None:
    """Start a twin, upload `file` as `key`, report the run it starts (and, with `resume`, a resumed run).

    With `resume`, a workdir that still holds `file` at `key` (from an earlier
    run there) starts only the resumed run; otherwise `file` runs first.
    """
    from ..lineage.rerun import rerun, source_of_run
    from ..twin.runs import RunNotStarted, collect, find_execution, kept_upload, upload
    from ..twin.server import TwinConfig

    parsed = parse_faults(faults)
    if not key.startswith(INCOMING_PREFIX) or not key.endswith(INCOMING_SUFFIXES):
        fail(f"the key {key} starts no run: runs start for objects under {INCOMING_PREFIX} ending with "
             f"{' or '.join(INCOMING_SUFFIXES)}; rename the file or pass --key {INCOMING_PREFIX}NAME.csv", 2)
    if as_json:
        render.quiet()
    started = time.monotonic()
    twin = start_twin(TwinConfig(workdir=workdir.resolve()), workdir)
    watching = Watch()
    show = not as_json
    try:
        for item in parsed:
            twin.faults.add(item)
        ready = time.monotonic() - started
        render.twin_ready(twin, ready)
        steps = StepFunctionsClient(twin.client("stepfunctions"))
        kept = kept_upload(twin, file, key) if resume else None
        first = None
        run_started = time.monotonic()
        if kept is None:
            uploaded = upload(twin, file, key)
            render.uploaded(file.name, uploaded["bucket"], key)
            watching.what = f"waiting for a run of s3://{uploaded['bucket']}/{key} to start"
            try:
                arn = find_execution(twin, uploaded["bucket"], key, uploaded["version_id"],
                                     since=uploaded["uploaded_at"])
            except RunNotStarted as exc:
                render.not_started(exc, as_json)
                twin.stop()
                exit_now(1)
            result = first = collect(twin, wait_showing(twin, arn, watching, show))
            if show:  # --json: the one result at the end says it all
                render.run(twin, result)
            render.run_took(time.monotonic() - run_started, result.status, ready, twin.workdir / "logs")
        if resume:
            twin.faults.clear()
            if kept is None:  # the run above is what the resumed run resumes from, once its lineage is in
                if twin.event_sources is not None:
                    twin.event_sources.wait_idle(60)
                kept = source_of_run(steps, twin.state_machine_arn, result.run_id)
                render.resuming()
            else:
                render.resuming_kept(kept["uri"])
            rerun_started = time.monotonic()
            _, arn = rerun(steps, twin.state_machine_arn, kept, base_run_id=first.run_id if first else None)
            result = collect(twin, wait_showing(twin, arn, watching, show))
            if show:
                render.run(twin, result)
            render.resumed_run_took(time.monotonic() - rerun_started, result.status)
        if as_json:
            render.run_json(twin, result, twin_start_s=ready, run_s=time.monotonic() - run_started,
                            first=first if first is not result else None)
    except KeyboardInterrupt:
        interrupted(twin, watching)
    twin.stop()
    exit_now(0 if result.status == "SUCCEEDED" else 1)
