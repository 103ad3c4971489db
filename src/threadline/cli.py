"""`threadline`: run the pipeline offline in the twin."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .lineage_cli import app as lineage_app

app = typer.Typer(help="threadline: CSV -> Step Functions + Batch pipeline, and its offline twin.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(lineage_app, name="lineage")
console = Console(soft_wrap=True)

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
    from .twin.faults import Fault
    from .twin.runs import TERMINAL, collect, wait
    from .twin.server import Twin, TwinConfig

    twin = Twin(TwinConfig(workdir=workdir.resolve(), port=port)).start()
    for spec in fault or []:
        twin.faults.add(Fault.parse(spec))
    incoming = twin.physical_id("IncomingBucket")
    console.print(f"[bold]threadline twin[/] serving AWS APIs on {twin.endpoint_url}")
    console.print("  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1")
    console.print(f"  aws --endpoint-url {twin.endpoint_url} s3 cp positions.csv s3://{incoming}/incoming/positions.csv")
    _print_cloud_only(twin)
    sfn = twin.client("stepfunctions")
    reported: set[str] = set()
    try:
        while True:
            for execution in sfn.list_executions(stateMachineArn=twin.state_machine_arn)["executions"]:
                arn = execution["executionArn"]
                if arn not in reported and execution["status"] in TERMINAL:
                    reported.add(arn)
                    _print_run(twin, collect(twin, wait(twin, arn)))
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping the twin")
    finally:
        twin.stop()


@app.command()
def sample(argv: Annotated[Optional[list[str]], typer.Argument(help="Generator options, e.g. --rows 1000 --bad-share 0.02 --seed 7 --output f.csv")] = None) -> None:
    """Generate example position CSVs (the same generator the tests and benchmarks use)."""
    from .samples import main as generate

    raise typer.Exit(generate(argv or []))


def _run_one(file: Path, key: str, workdir: Path, faults: list[str], resume: bool = False) -> None:
    from .twin.faults import Fault, FaultSpecError
    from .twin.runs import collect, find_execution, upload, wait
    from .twin.server import Twin, TwinConfig

    try:
        parsed = [Fault.parse(spec) for spec in faults]
    except FaultSpecError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from exc
    started = time.monotonic()
    with Twin(TwinConfig(workdir=workdir.resolve())) as twin:
        for item in parsed:
            twin.faults.add(item)
        ready = time.monotonic() - started
        console.print(f"[bold]threadline twin[/] ready in {ready:.2f}s on {twin.endpoint_url} "
                      f"({len(twin.provisioned.physical_ids)} resources from template.yaml)")
        _print_cloud_only(twin)
        run_started = time.monotonic()
        uploaded = upload(twin, file, key)
        console.print(f"uploaded {file.name} to s3://{uploaded['bucket']}/{key}")
        arn = find_execution(twin, uploaded["bucket"], key, uploaded["version_id"])
        result = collect(twin, wait(twin, arn))
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
            result = collect(twin, wait(twin, arn))
            _print_run(twin, result)
            console.print(f"\nresumed run took {time.monotonic() - rerun_started:.2f}s to {result.status}")
    _exit_now(0 if result.status == "SUCCEEDED" else 1)


def _exit_now(code: int) -> None:
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
