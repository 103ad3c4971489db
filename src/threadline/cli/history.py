"""`threadline runs` and `threadline open`: earlier runs of a workdir, read from its files (no twin needed).

Both read what the twin keeps in its workdir (`twin/execution_store.py`,
`twin/s3_store.py`), so they work while a twin serves there and long after it
stopped.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .console import console, err_console, fail

WorkdirOption = Annotated[Path, typer.Option(help="The twin's folder (where `threadline run`/`demo`/`up` kept it).")]


def runs(workdir: WorkdirOption = Path(".threadline"),
         as_json: Annotated[bool, typer.Option("--json", help="Print the runs as one JSON array.")] = False) -> None:
    """List the earlier runs kept in the workdir: status, duration and input, oldest first."""
    from ..twin.execution_store import saved_runs

    problems: list[str] = []
    found = saved_runs(workdir, problems)
    for problem in problems:
        err_console.print(f"[yellow]warning:[/] {escape(problem)}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps([{"run_id": run.name, "status": run.status, "input": run.input_uri,
                                      "started": run.started.isoformat() if run.started else None,
                                      "stopped": run.stopped.isoformat() if run.stopped else None,
                                      "seconds": run.seconds, "error": run.error,
                                      "report": _local(report_path(workdir, run.name))} for run in found],
                                    indent=2) + "\n")
        return
    if not found:
        console.print(f"no runs kept in {workdir} yet: `threadline demo` or `threadline run FILE` makes one")
        return
    rows = [(run.name, run.status, run.started.astimezone().strftime("%Y-%m-%d %H:%M:%S") if run.started else "",
             f"{run.seconds:.2f}" if run.seconds is not None else "", run.input_uri or "") for run in found]
    if not console.is_terminal:  # piped: one whole line per run, nothing folded
        for row in rows:
            console.print("  ".join(row), highlight=False)
        return
    table = Table(title=f"runs in {workdir}")
    table.add_column("run", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("seconds", justify="right", no_wrap=True)
    table.add_column("input", overflow="fold")
    for name, status, started, seconds, input_uri in rows:
        colour = {"SUCCEEDED": "green", "RUNNING": "yellow"}.get(status, "red")
        table.add_row(escape(name), f"[{colour}]{status}[/]", started, seconds, escape(input_uri))
    console.print(table)


def open_run(run: Annotated[str | None, typer.Argument(help="The run id; the latest run when left out.")] = None,
             workdir: WorkdirOption = Path(".threadline"),
             print_only: Annotated[bool, typer.Option("--print", help="Print the report's path; open nothing.")]
             = False) -> None:
    """Open the report of RUN in a web browser (or print its local path where there is none)."""
    from ..twin.execution_store import saved_runs

    if run is None:
        found = saved_runs(workdir)
        if not found:
            fail(f"no runs kept in {workdir}: pass --workdir DIR, or start one with `threadline demo`", 1)
        run = found[-1].name
    report = report_path(workdir, run)
    if report is None:
        known = {saved.name: saved for saved in saved_runs(workdir)}
        if run not in known:
            fail(f"no run {run} in {workdir}; `threadline runs --workdir {workdir}` lists them", 1)
        fail(f"run {run} ended {known[run].status} without a report; `threadline graph {run}` shows where it "
             "stopped", 1)
    if print_only or not _has_browser() or not webbrowser.open(report.resolve().as_uri()):
        console.print(str(report), highlight=False, soft_wrap=True)
        return
    console.print(f"opened {report}", highlight=False)


def report_path(workdir: Path, run: str) -> Path | None:
    """The local copy of the run's report.html, if it exists.

    The run record names the report (a resumed run that reused every step
    names the earlier run's); else the run's own folder in a bucket has one.
    """
    from ..twin.s3_store import S3Store
    from ..twin.server import ACCOUNT_ID
    from ..twin.table_store import saved_item

    if not run or "/" in run or run.startswith("."):
        return None
    workdir = workdir.resolve()
    record = saved_item(workdir / "state" / "dynamodb.json", "run_id", run) or {}
    uri = (record.get("outputs") or {}).get("report_html")
    named = S3Store(workdir, ACCOUNT_ID).local_path(uri) if isinstance(uri, str) else None
    if named is not None and named.is_file():
        return named
    return next(iter(sorted((workdir / "s3").glob(f"*/runs/{glob.escape(run)}/report.html"))), None)


def _has_browser() -> bool:
    """A graphical session to open a page in (a text browser would take over this terminal)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("BROWSER"))
    return True


def _local(path: Path | None) -> str | None:
    return str(path) if path else None
