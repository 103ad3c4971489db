"""`threadline lineage ...`: ask the lineage graph what produced a result, what an input touched,
what a run did and what failed; redrive lineage dead letters; rerun a run's input.

The same functions are the Python API (`threadline_common.lineage.reader`);
`--json` prints the `to_dict()` of what they return. By default the commands
read the twin's graph in `--workdir`; `--endpoint URL` reads any neptunedata
endpoint and `--neptune HOST` a Neptune cluster with IAM auth (see
`threadline/lineage/clients.py`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ..lineage import render
from ..lineage.clients import (
    CloudFormationClient,
    GraphClient,
    SqsClient,
    StepFunctionsClient,
    aws_session,
    explain_aws_error,
)
from .console import say_error

if TYPE_CHECKING:
    from threadline_common.lineage.reader import Lineage, RunReport


app = typer.Typer(help="Query the lineage graph: upstream, downstream, run, failures, show, export; redrive dead "
                       "letters.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)

WorkdirOption = Annotated[Path, typer.Option(help="The twin's folder holding the lineage graph.")]
EndpointOption = Annotated[str | None, typer.Option(
    help="A neptunedata endpoint URL, e.g. the twin's while `threadline up` runs.")]
NeptuneOption = Annotated[str | None, typer.Option(
    help="Neptune cluster endpoint (host[:port]); IAM auth with your AWS credentials.")]
AwsEndpointOption = Annotated[str | None, typer.Option(
    help="AWS endpoint, e.g. http://127.0.0.1:4566 for `threadline up` (region us-east-1 unless --region).")]
RegionOption = Annotated[str | None, typer.Option(
    help="AWS region of the stack and its Neptune cluster (default: the AWS SDK's).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
UriArgument = Annotated[str, typer.Argument(help="s3:// URI of an object or prefix (a ?versionId= pins one version).")]


@app.command()
def upstream(uri: UriArgument, workdir: WorkdirOption = Path(".threadline"), endpoint: EndpointOption = None,
             neptune: NeptuneOption = None, region: RegionOption = None, as_json: JsonOption = False) -> None:
    """The datasets and steps behind URI: which input, image and parameters produced it."""
    _tree(lambda graph: _reader().upstream(graph, uri), GraphClient(workdir, endpoint, neptune, region), as_json)


@app.command()
def downstream(uri: UriArgument, workdir: WorkdirOption = Path(".threadline"), endpoint: EndpointOption = None,
               neptune: NeptuneOption = None, region: RegionOption = None, as_json: JsonOption = False) -> None:
    """The steps and datasets after URI: everything that read it, and what they wrote, onward."""
    _tree(lambda graph: _reader().downstream(graph, uri), GraphClient(workdir, endpoint, neptune, region), as_json)


@app.command("run")
def run_command(run_id: Annotated[str, typer.Argument(help="The run id (the execution name).")],
                workdir: WorkdirOption = Path(".threadline"), endpoint: EndpointOption = None,
                neptune: NeptuneOption = None, region: RegionOption = None, as_json: JsonOption = False) -> None:
    """The run's steps and attempts in order: retries, fallbacks, reuse and failure reasons."""
    report = _run_report(run_id, GraphClient(workdir, endpoint, neptune, region))
    if as_json:
        _emit_json(report.to_dict())
        return
    render.run_report(console, report)


@app.command()
def failures(since: Annotated[str, typer.Option(help="How far back: 7d, 24h, 30m, 2w or an ISO date.")] = "7d",
             workdir: WorkdirOption = Path(".threadline"), endpoint: EndpointOption = None,
             neptune: NeptuneOption = None, region: RegionOption = None, as_json: JsonOption = False) -> None:
    """Failed steps grouped by reason, and the failed runs with the step they failed at and why."""
    reader = _reader()
    try:
        moment = reader.parse_since(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    result = _query(lambda graph: reader.failures(graph, moment), GraphClient(workdir, endpoint, neptune, region))
    if as_json:
        _emit_json(result.to_dict())
        return
    render.failures(console, result)


@app.command()
def show(run_id: Annotated[str, typer.Argument(help="The run id.")],
         output: Annotated[Path | None, typer.Option("--output", "-o", help="HTML file to write.")] = None,
         workdir: WorkdirOption = Path(".threadline"), endpoint: EndpointOption = None,
         neptune: NeptuneOption = None, region: RegionOption = None) -> None:
    """Write a self-contained HTML picture of the run's lineage graph."""
    from ..lineage import html

    report = _run_report(run_id, GraphClient(workdir, endpoint, neptune, region))
    path = output or Path(f"lineage-{run_id}.html")
    path.write_text(html.render(report), encoding="utf-8")
    console.print(f"wrote {path}")


@app.command()
def export(run_id: Annotated[str, typer.Argument(help="The run id.")],
           openlineage: Annotated[bool, typer.Option(
               "--openlineage", help="OpenLineage RunEvents (the run and a child run per attempt), one per line.")
           ] = False,
           output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
                             ] = None,
           workdir: WorkdirOption = Path(".threadline"), endpoint: EndpointOption = None,
           neptune: NeptuneOption = None, region: RegionOption = None) -> None:
    """The run as JSON lines of OpenLineage RunEvents, built as the lineage function sends them."""
    if not openlineage:
        raise typer.BadParameter("say which format: --openlineage (the one there is)")
    from threadline_common.lineage.openlineage import run_events

    report = _run_report(run_id, GraphClient(workdir, endpoint, neptune, region))
    lines = "".join(json.dumps(event, separators=(",", ":")) + "\n" for event in run_events(report))
    if output is None:
        typer.echo(lines, nl=False)
        return
    output.write_text(lines, encoding="utf-8")
    console.print(f"wrote {output}")


@app.command()
def redrive(stack: Annotated[str, typer.Option(
                help="Stack name (finds <stack>-LineageDeadLetterQueue*).")] = "threadline",
            queue_arn: Annotated[str | None, typer.Option(
                help="The dead-letter queue's ARN, if not found by name.")] = None,
            endpoint_url: AwsEndpointOption = None,
            region: RegionOption = None, as_json: JsonOption = False) -> None:
    """Move lineage events that waited out Neptune in the dead-letter queue back to be written."""
    from ..lineage.redrive import redrive as move

    with _aws_errors(endpoint_url):
        queues, stacks = _connect(SqsClient, endpoint_url, region)
        result = _found(lambda: move(queues, stack, queue_arn, stacks))
    if as_json:
        _emit_json(result.to_dict())
        return
    render.redrive(console, result)


@app.command()
def rerun(run_id: Annotated[str, typer.Argument(help="The run whose input to run again.")],
          resume: Annotated[bool, typer.Option(help="Reuse the leading steps an earlier run already did.")] = True,
          stack: Annotated[str, typer.Option(help="Stack name (finds <stack>-PipelineStateMachine*).")] = "threadline",
          endpoint_url: AwsEndpointOption = None,
          region: RegionOption = None, as_json: JsonOption = False) -> None:
    """Run a run's input again as a new execution, resumed from the lineage graph (a redrive)."""
    from ..lineage.rerun import rerun as start, source_of_run, state_machine_arn

    with _aws_errors(endpoint_url):
        steps, stacks = _connect(StepFunctionsClient, endpoint_url, region)
        machine = _found(lambda: state_machine_arn(steps, stack, stacks))
        new_run_id, execution_arn = start(steps, machine, source_of_run(steps, machine, run_id), resume=resume,
                                          base_run_id=run_id)
    if as_json:
        _emit_json({"run_id": new_run_id, "execution_arn": execution_arn, "resume": resume})
        return
    render.rerun_started(console, new_run_id, execution_arn, resume)


def _connect[Service: (SqsClient, StepFunctionsClient)](
        service: type[Service], endpoint_url: str | None, region: str | None) -> tuple[Service, CloudFormationClient]:
    """The service's client and the stacks' (for the outputs that name the stack's pieces), on one session."""
    session = aws_session(endpoint_url, region)
    return service.connect(session, endpoint_url), CloudFormationClient.connect(session, endpoint_url)


def _found[Found](lookup: Callable[[], Found]) -> Found:
    """What `lookup` finds; finding nothing (a LookupError: a wrong stack name or queue) is a usage error."""
    try:
        return lookup()
    except LookupError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _reader() -> Any:
    """The layer's lineage queries (imported when a command needs them: `--help` stays quick)."""
    from threadline_common.lineage import reader

    return reader


def _emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def _tree(walk: Callable[[Any], Lineage], graph: GraphClient, as_json: bool) -> None:
    """`upstream` and `downstream`: one walk of the graph, printed as JSON or as trees (exit 1: no such dataset)."""
    result: Lineage = _query(walk, graph)
    if as_json:
        _emit_json(result.to_dict())
        return
    if not result.roots:
        render.missing_dataset(console, result.uri)
        raise typer.Exit(1)
    render.lineage_tree(console, result)


def _run_report(run_id: str, graph: GraphClient) -> RunReport:
    """The run's report; exit 1 when the graph holds no such run."""
    reader = _reader()
    report: RunReport | None = _query(lambda runner: reader.run_report(runner, run_id), graph)
    if report is None:
        render.missing_run(console, run_id)
        raise typer.Exit(1)
    return report


def _query(read: Callable[[Any], Any], graph: GraphClient) -> Any:
    """`read` on the graph; a missing graph file exits 2, a graph that fails or is unreachable exits 1."""
    from threadline_common.lineage.neptune import LineageGraphError

    try:
        with _aws_errors(graph.endpoint or graph.neptune), graph.open() as runner:
            return read(runner)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    except LineageGraphError as exc:
        hint = "; is it up, and reachable from here?" if exc.unavailable else ""
        say_error(f"the lineage graph at {graph.where} failed: {exc}{hint}")
        raise typer.Exit(1) from exc


@contextmanager
def _aws_errors(endpoint_url: str | None) -> Iterator[None]:
    """AWS failures (no region, no credentials, endpoint down, an API error) as one clear line and exit 1 or 2."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as exc:
        said = explain_aws_error(exc, endpoint_url)
        if said is None:
            raise
        from botocore.exceptions import ClientError, EndpointConnectionError

        say_error(said)
        raise typer.Exit(1 if isinstance(exc, (ClientError, EndpointConnectionError)) else 2) from exc
