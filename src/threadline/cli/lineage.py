"""`threadline lineage ...`: ask the lineage graph what produced a result, what an input touched,
what a run did and what failed; redrive lineage dead letters.

The same functions are the Python API (`threadline_common.lineage.reader`);
`--json` prints what they return. By default the commands read the twin's graph
in `--workdir`; `--endpoint URL` reads any neptunedata endpoint and `--neptune
HOST` a Neptune cluster with IAM auth (see `lineage_access.py`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from .lineage_access import aws_session, explain_aws_error, open_graph
from .lineage_view import layer_modules

app = typer.Typer(help="Query the lineage graph: upstream, downstream, run, failures, show; redrive dead letters.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, soft_wrap=True)

WorkdirOption = Annotated[Path, typer.Option(help="The twin's folder holding the lineage graph.")]
EndpointOption = Annotated[Optional[str], typer.Option(
    help="A neptunedata endpoint URL, e.g. the twin's while `threadline up` runs.")]
NeptuneOption = Annotated[Optional[str], typer.Option(
    help="Neptune cluster endpoint (host[:port]); IAM auth with your AWS credentials.")]
AwsEndpointOption = Annotated[Optional[str], typer.Option(
    help="AWS endpoint, e.g. http://127.0.0.1:4566 for `threadline up` (region us-east-1 unless --region).")]
RegionOption = Annotated[Optional[str], typer.Option(
    help="AWS region of the stack and its Neptune cluster (default: the AWS SDK's).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _reader() -> Any:
    layer_modules()
    from threadline_common.lineage import reader

    return reader


def _emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


@app.command()
def upstream(uri: Annotated[str, typer.Argument(help="s3:// URI of an object or prefix (a ?versionId= pins one version).")],
             workdir: WorkdirOption = Path(".threadline"), endpoint: EndpointOption = None,
             neptune: NeptuneOption = None, region: RegionOption = None, as_json: JsonOption = False) -> None:
    """The datasets and steps behind URI: which input, image and parameters produced it."""
    result = _query(lambda graph: _reader().upstream(graph, uri), workdir, endpoint, neptune, region)
    if as_json:
        _emit_json(result)
        return
    _print_tree(result, "produced_by", "consumed", "made by")


@app.command()
def downstream(uri: Annotated[str, typer.Argument(help="s3:// URI of an object or prefix (a ?versionId= pins one version).")],
               workdir: WorkdirOption = Path(".threadline"), endpoint: EndpointOption = None,
               neptune: NeptuneOption = None, region: RegionOption = None, as_json: JsonOption = False) -> None:
    """The steps and datasets after URI: everything that read it, and what they wrote, onward."""
    result = _query(lambda graph: _reader().downstream(graph, uri), workdir, endpoint, neptune, region)
    if as_json:
        _emit_json(result)
        return
    _print_tree(result, "consumed_by", "produced", "read by")
    if result.get("runs"):
        console.print(f"[bold]runs that took it as input[/] ({len(result['runs'])})")
        for run in result["runs"]:
            console.print(f"  {run['run_id']}  {run['status']}  {run.get('started_at') or ''}"
                          + (f"  {run['error']}" if run.get("error") else ""))


@app.command("run")
def run_command(run_id: Annotated[str, typer.Argument(help="The run id (the execution name).")],
                workdir: WorkdirOption = Path(".threadline"), endpoint: EndpointOption = None,
                neptune: NeptuneOption = None, region: RegionOption = None, as_json: JsonOption = False) -> None:
    """The run's steps and attempts in order: retries, fallbacks, reuse and failure reasons."""
    report = _query(lambda graph: _reader().run_report(graph, run_id), workdir, endpoint, neptune, region)
    if report is None:
        console.print(f"[red]no lineage recorded for run {run_id}[/]")
        raise typer.Exit(1)
    if as_json:
        _emit_json(report)
        return
    run = report["run"]
    colour = "green" if run["status"] == "SUCCEEDED" else "red" if run["status"] == "FAILED" else "yellow"
    console.print(f"[bold]run[/] {run['run_id']}: [{colour}]{run['status']}[/]  "
                  f"{run.get('started_at') or '?'} → {run.get('ended_at') or '…'}")
    if run.get("error"):
        console.print(f"  error [red]{run['error']}[/]: {_short(run.get('cause'), 300)}")
    table = Table(show_lines=False)
    for column in ("#", "job", "try", "capacity", "status", "exit", "reason / note", "image", "cache key"):
        table.add_column(column)
    for a in report["attempts"]:
        note = ""
        if a["status"] == "REUSED":
            note = f"reused {a.get('reused_attempt')} of run {a.get('reused_run')}"
        elif a["status"] != "SUCCEEDED":
            note = a.get("status_reason") or ""
            if a.get("retried"):
                note += " → retried by Batch"
        if a.get("fallback_of"):
            note = (note + "; " if note else "") + f"fallback of {a['fallback_of']}"
        table.add_row(str(a.get("seq")), a.get("job_key") or "", str(a.get("attempt") or ""),
                      a.get("capacity") or "", a.get("status") or "",
                      "" if a.get("exit_code") is None else str(a["exit_code"]), note,
                      _short((a.get("image") or "").rsplit("/", 1)[-1], 30), (a.get("cache_key") or "")[:10])
    console.print(table)
    written = [d for d in report["datasets"] if d["rel"] in ("PRODUCED", "CONTAINS")]
    read = [d for d in report["datasets"] if d["rel"] == "CONSUMED"]
    console.print(f"read {len({d['dataset_id'] for d in read})} datasets, "
                  f"wrote {len({d['dataset_id'] for d in written})}")


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
    result = _query(lambda graph: reader.failures(graph, moment), workdir, endpoint, neptune, region)
    if as_json:
        _emit_json(result)
        return
    console.print(f"[bold]failures since[/] {result['since']}")
    table = Table(title="failed step attempts by reason")
    for column in ("step", "reason", "exit", "attempts", "runs", "last"):
        table.add_column(column)
    for group in result["by_reason"]:
        table.add_row(group["step"] or "", _short(group.get("reason"), 80),
                      "" if group.get("exit_code") is None else str(group["exit_code"]),
                      str(group["attempts"]), str(group["runs"]), group.get("last_at") or "")
    console.print(table)
    runs = Table(title="failed runs")
    for column in ("run", "ended", "error", "at step", "why"):
        runs.add_column(column)
    for run in result["runs"]:
        why = run.get("reason") or ""
        if run.get("exit_code") is not None:
            why = f"{why} (exit {run['exit_code']})".strip()
        if run.get("error") == "ValidationFailed" or not why:
            why = _short(run.get("cause"), 120)
        runs.add_row(run["run_id"], run.get("ended_at") or "", run.get("error") or "", run.get("step") or "", why)
    console.print(runs)


@app.command()
def show(run_id: Annotated[str, typer.Argument(help="The run id.")],
         output: Annotated[Optional[Path], typer.Option("--output", "-o", help="HTML file to write.")] = None,
         workdir: WorkdirOption = Path(".threadline"), endpoint: EndpointOption = None,
         neptune: NeptuneOption = None, region: RegionOption = None) -> None:
    """Write a self-contained HTML picture of the run's lineage graph."""
    from .lineage_html import render

    report = _query(lambda graph: _reader().run_report(graph, run_id), workdir, endpoint, neptune, region)
    if report is None:
        console.print(f"[red]no lineage recorded for run {run_id}[/]")
        raise typer.Exit(1)
    path = output or Path(f"lineage-{run_id}.html")
    path.write_text(render(report), encoding="utf-8")
    console.print(f"wrote {path}")


@app.command()
def redrive(stack: Annotated[str, typer.Option(help="Stack name (finds <stack>-LineageDeadLetterQueue*).")] = "threadline",
            queue_arn: Annotated[Optional[str], typer.Option(help="The dead-letter queue's ARN, if not found by name.")] = None,
            endpoint_url: AwsEndpointOption = None,
            region: RegionOption = None, as_json: JsonOption = False) -> None:
    """Move lineage events that waited out Neptune in the dead-letter queue back to be written."""
    from .lineage_redrive import redrive as move

    with _aws_errors(endpoint_url):
        session = aws_session(endpoint_url, region)
        sqs = session.client("sqs", endpoint_url=endpoint_url)
        cloudformation = session.client("cloudformation", endpoint_url=endpoint_url)
        try:
            result = move(sqs, stack, queue_arn, cloudformation)
        except LookupError as exc:
            raise typer.BadParameter(str(exc)) from exc
    if as_json:
        _emit_json(result.to_dict())
        return
    if result.messages == 0:
        console.print(f"no dead letters in {result.queue_arn}")
    else:
        console.print(f"moving {result.messages} lineage events from {result.queue_arn} back to the lineage queue "
                      f"(task {result.task_handle})")


@app.command()
def rerun(run_id: Annotated[str, typer.Argument(help="The run whose input to run again.")],
          resume: Annotated[bool, typer.Option(help="Reuse the leading steps an earlier run already did.")] = True,
          stack: Annotated[str, typer.Option(help="Stack name (finds <stack>-PipelineStateMachine*).")] = "threadline",
          endpoint_url: AwsEndpointOption = None,
          region: RegionOption = None, as_json: JsonOption = False) -> None:
    """Run a run's input again as a new execution, resumed from the lineage graph (a redrive)."""
    from .rerun import rerun as start, source_of_run, state_machine_arn

    with _aws_errors(endpoint_url):
        session = aws_session(endpoint_url, region)
        sfn = session.client("stepfunctions", endpoint_url=endpoint_url)
        cloudformation = session.client("cloudformation", endpoint_url=endpoint_url)
        try:
            machine = state_machine_arn(sfn, stack, cloudformation)
        except LookupError as exc:
            raise typer.BadParameter(str(exc)) from exc
        new_run_id, execution_arn = start(sfn, machine, source_of_run(sfn, machine, run_id), resume=resume,
                                          base_run_id=run_id)
    if as_json:
        _emit_json({"run_id": new_run_id, "execution_arn": execution_arn, "resume": resume})
        return
    console.print(f"started {new_run_id} ({'resumed' if resume else 'every step'}): {execution_arn}")


def _query(read: Any, workdir: Path, endpoint: str | None, neptune: str | None, region: str | None) -> Any:
    layer_modules()
    from threadline_common.lineage.neptune import LineageGraphError

    try:
        with _aws_errors(endpoint or neptune):
            with open_graph(workdir.resolve(), endpoint, neptune, region) as graph:
                return read(graph)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    except LineageGraphError as exc:
        where = endpoint or neptune or str(workdir)
        hint = "; is it up, and reachable from here?" if exc.unavailable else ""
        err_console.print(f"[red]error:[/] the lineage graph at {escape(where)} failed: {escape(str(exc))}{hint}",
                          highlight=False)
        raise typer.Exit(1) from exc


@contextmanager
def _aws_errors(endpoint_url: str | None) -> Iterator[None]:
    """AWS failures (no region, no credentials, endpoint down, an API error) as one clear line and exit 1 or 2."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - only AWS failures are said here; others re-raise
        said = explain_aws_error(exc, endpoint_url)
        if said is None:
            raise
        from botocore.exceptions import ClientError, EndpointConnectionError

        err_console.print(f"[red]error:[/] {escape(said)}", highlight=False)
        raise typer.Exit(1 if isinstance(exc, (ClientError, EndpointConnectionError)) else 2) from exc


def _print_tree(result: dict[str, Any], steps_key: str, datasets_key: str, verb: str) -> None:
    if not result["roots"]:
        console.print(f"[yellow]no dataset recorded for {result['uri']}[/]")
        raise typer.Exit(1)
    for entry in result["tree"]:
        tree = Tree(_dataset_label(entry["dataset"]))
        _grow(tree, entry, steps_key, datasets_key, verb)
        console.print(tree)


def _grow(branch: Tree, entry: dict[str, Any], steps_key: str, datasets_key: str, verb: str) -> None:
    if entry.get("repeated"):
        branch.add("[dim](shown above)[/]")
        return
    for step in entry.get(steps_key, []):
        child = branch.add(_attempt_label(step["attempt"], verb))
        for dataset in step.get(datasets_key, []):
            _grow(child.add(_dataset_label(dataset["dataset"])), dataset, steps_key, datasets_key, verb)


def _dataset_label(dataset: dict[str, Any]) -> str:
    facts = [f"{dataset['row_count']} rows" if dataset.get("row_count") is not None else "",
             f"{dataset['size']} bytes" if dataset.get("size") is not None else "",
             f"etag {dataset['etag'][:12]}" if dataset.get("etag") else "",
             f"version {dataset['version'][:12]}" if dataset.get("version") else "",
             f"schema {dataset['schema_hash']}" if dataset.get("schema_hash") else ""]
    shown = ", ".join(f for f in facts if f)
    return f"[cyan]{dataset['uri']}[/]" + (f" [dim]({shown})[/]" if shown else "")


def _attempt_label(attempt: dict[str, Any], verb: str) -> str:
    colour = "green" if attempt.get("status") == "SUCCEEDED" else "red"
    params = {k: v for k, v in (attempt.get("parameters") or {}).items() if not str(v).startswith("s3://")}
    parts = [f"{verb} [bold]{attempt.get('step')}[/]#{attempt.get('attempt')} [{colour}]{attempt.get('status')}[/]",
             f"run {attempt.get('run_id')}", attempt.get("capacity") or "",
             f"image {attempt.get('image')}" if attempt.get("image") else "",
             f"params {json.dumps(params, sort_keys=True)}" if params else "",
             f"key {attempt['cache_key'][:10]}" if attempt.get("cache_key") else ""]
    if attempt.get("status") != "SUCCEEDED" and attempt.get("status_reason"):
        parts.append(f"reason {attempt['status_reason']}")
    return "  ".join(p for p in parts if p)


def _short(text: str | None, limit: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
