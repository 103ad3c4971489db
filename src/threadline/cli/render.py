"""What `threadline demo`, `run` and `up` print: the twin coming up, uploads, and each run's report."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from ..text import short
from ..twin.readiness import HEALTH_PATH
from .console import console, err_console

if TYPE_CHECKING:
    from pathlib import Path

    from ..twin.runs import RunNotStarted, RunResult
    from ..twin.server import Twin


def quiet() -> None:
    """`--json`: nothing on stdout but the result (errors still go to stderr)."""
    console.quiet = True


def twin_ready(twin: Twin, seconds: float) -> None:
    console.print(f"[bold]threadline twin[/] ready in {seconds:.2f}s on {twin.endpoint_url} "
                  f"({len(twin.provisioned.physical_ids)} resources from template.yaml)")
    restored(twin)
    cloud_only(twin)


def restored(twin: Twin) -> None:
    """What the workdir gave back, and the state files it could not read."""
    kept = twin.restored
    if any(kept.values()):
        console.print(f"[dim]continuing from {twin.workdir}: {kept.get('objects', 0)} S3 object versions, "
                      f"{kept.get('items', 0)} run-table items, {kept.get('messages', 0)} queued messages[/]")
    for problem in twin.state_problems:
        err_console.print(f"[yellow]warning:[/] {escape(problem)}", highlight=False)


def twin_serving(twin: Twin) -> None:
    """How to reach the twin of `threadline up` from another terminal."""
    incoming = twin.physical_id("IncomingBucket")
    console.print(f"[bold]threadline twin[/] serving AWS APIs on {twin.endpoint_url}")
    console.print(f"  ready: GET {twin.endpoint_url}{HEALTH_PATH} answers 200 (503 while starting)")
    console.print("  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1")
    console.print(f"  aws --endpoint-url {twin.endpoint_url} s3 cp positions.csv s3://{incoming}/incoming/positions.csv")
    restored(twin)
    cloud_only(twin)


def run_started(run_id: str) -> None:
    console.print(f"run {run_id} started (`threadline graph {run_id}` draws it as it goes)")


def cloud_only(twin: Twin) -> None:
    """The template's resources the twin does not create, if any."""
    if twin.provisioned.cloud_only:
        names = ", ".join(f"{item.logical_id}" for item in twin.provisioned.cloud_only)
        console.print(f"[dim]cloud-only (not in the twin): {names}[/]")


def uploaded(name: str, bucket: str, key: str) -> None:
    console.print(f"uploaded {name} to s3://{bucket}/{key}")


def skipped_upload(skip: RunNotStarted) -> None:
    console.print(f"[yellow]no run started:[/] {escape(str(skip))}")


def not_started(exc: RunNotStarted, as_json: bool = False) -> None:
    """Why an upload started no run: the start function's reason and log, or what else went wrong."""
    from ..twin.runs import RunSkipped

    if as_json:
        _print_json({"status": "NOT_STARTED", "reason": str(exc)})
    if isinstance(exc, RunSkipped):
        err_console.print(f"[red]no run started[/] for {escape(exc.uri)}", highlight=False)
        err_console.print(f"  the start function skipped it: {escape(exc.reason)}", highlight=False)
        if exc.log_path:
            err_console.print(f"  its log: {escape(str(exc.log_path))}", highlight=False)
        err_console.print("  fix the file and run it again", highlight=False)
    else:
        err_console.print(f"[red]no run started:[/] {escape(str(exc))}", highlight=False)


def run(twin: Twin, result: RunResult) -> None:
    """One run: its status, the states it took, its outputs, run record, Slack messages, lineage and graph."""
    from ..lineage.render import summary_lines
    from ..lineage.view import run_lineage
    from ..twin.runs import key_outputs, write_execution_graph

    colour = "green" if result.status == "SUCCEEDED" else "red"
    console.print(f"\n[bold]run[/] {result.run_id}: [{colour}]{result.status}[/] in {result.seconds:.2f}s")
    if result.error:
        console.print(f"  error: [red]{escape(result.error)}[/]  cause: {escape(short(result.cause, 300))}")
    table = Table(title="states taken", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("state")
    table.add_column("type")
    table.add_column("seconds", justify="right")
    for index, visit in enumerate(result.states, 1):
        seconds = "" if visit.seconds is None else f"{visit.seconds:.2f}"
        table.add_row(str(index), visit.name, visit.state_type, seconds)
    console.print(table)
    if result.objects:
        console.print(f"[bold]outputs[/] (kept as files under {twin.s3_store.objects_dir})")
        for uris in result.objects.values():
            for uri in uris:
                console.print(f"  {uri}")
    for label, uri in key_outputs(result):
        console.print(f"[bold]{label}[/]: {uri}", highlight=False)
        console.print(f"  open: {twin.local_path(uri)}", highlight=False)
    if result.record:
        console.print("[bold]DynamoDB run record[/]")
        console.print_json(json.dumps(result.record, default=_plain))  # DynamoDB numbers as numbers
    console.print(f"[bold]Slack[/] ({len(result.slack)} messages, outbox {twin.outbox})")
    for message in result.slack:
        console.print(f"  - {escape(short(message.get('text', ''), 160))}")
    console.print("[bold]lineage[/]")
    for line in summary_lines(result.run_id, run_lineage(twin, result.run_id)):
        console.print(f"  {escape(line)}")
    console.print(f"[bold]execution graph[/] (as the Step Functions console draws it): "
                  f"{write_execution_graph(twin, result)}")


def run_took(seconds: float, status: str, twin_start: float, logs: Path) -> None:
    console.print(f"\nrun took {seconds:.2f}s from upload to {status} "
                  f"(twin start {twin_start:.2f}s); logs under {logs}")


def resuming() -> None:
    console.print("\n[bold]rerun, resumed from the lineage graph[/] (faults applied to the first run only)")


def resuming_kept(uri: str) -> None:
    console.print(f"\n[bold]resumed run[/] of {uri}, kept in the workdir from an earlier run (no new upload)")


def run_json(twin: Twin, result: RunResult, twin_start_s: float, run_s: float,
             first: RunResult | None = None) -> None:
    """The one machine-readable result of `demo`/`run --json`."""
    from ..twin.runs import key_outputs

    labels = {uri: label for label, uri in key_outputs(result)}
    own = [uri for uris in result.objects.values() for uri in uris]
    outputs = [{"s3": uri, "local": str(twin.local_path(uri)), "label": labels.get(uri)}
               for uri in own + [uri for uri in labels if uri not in own]]  # reused: an earlier run's
    payload: dict[str, Any] = {
        "status": result.status, "run_id": result.run_id, "execution_arn": result.execution_arn,
        "error": result.error, "cause": result.cause, "path": result.path,
        "seconds": {"twin_start": round(twin_start_s, 3), "run": round(run_s, 3), "execution": result.seconds,
                    "states": [{"state": visit.name, "type": visit.state_type, "seconds": visit.seconds,
                                "failed": visit.failed} for visit in result.states]},
        "outputs": outputs, "record": result.record, "slack_messages": len(result.slack),
        "workdir": str(twin.workdir),
    }
    if first is not None:
        payload["first_run"] = {"run_id": first.run_id, "status": first.status}
    _print_json(payload)


def _print_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=_plain) + "\n")
    sys.stdout.flush()


def _plain(value: Any) -> Any:
    """DynamoDB numbers (Decimal) as numbers, anything else as text."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def resumed_run_took(seconds: float, status: str) -> None:
    console.print(f"\nresumed run took {seconds:.2f}s to {status}")


def stopping() -> None:
    console.print("stopping the twin: running executions are stopped and their runs closed (ABORTED)")
