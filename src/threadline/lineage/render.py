"""The lineage as text for the terminal: trees of datasets and steps, a run's attempts, failures.

Each function prints one answer (of `threadline_common.lineage.reader`, or a
redrive or rerun) to a rich console; the HTML page of `lineage show` is
`html.py`. `summary_lines` says a run's lineage in a few plain lines for the end
of `threadline demo` / `run`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from ..text import short

if TYPE_CHECKING:
    from threadline_common.lineage.reader import (
        Dataset,
        Failures,
        Lineage,
        LineageAttempt,
        LineageNode,
        ReportAttempt,
        RunReport,
    )

    from .redrive import Redrive
    from .view import RunLineage

VERBS = {"upstream": "made by", "downstream": "read by"}  # how a tree's steps relate to the dataset above them


def missing_run(console: Console, run_id: str) -> None:
    console.print(f"[red]no lineage recorded for run {run_id}[/]")


def missing_dataset(console: Console, uri: str) -> None:
    console.print(f"[yellow]no dataset recorded for {uri}[/]")


def lineage_tree(console: Console, result: Lineage) -> None:
    """An `upstream` or `downstream` answer: a tree per dataset found, then the runs that took it as input."""
    verb = VERBS[result.direction]
    for entry in result.tree:
        tree = Tree(_dataset_label(entry.dataset))
        _grow(tree, entry, verb)
        console.print(tree)
    if result.runs:
        console.print(f"[bold]runs that took it as input[/] ({len(result.runs)})")
        for run in result.runs:
            console.print(f"  {run.run_id}  {run.status}  {run.started_at or ''}"
                          + (f"  {run.error}" if run.error else ""))


def run_report(console: Console, report: RunReport) -> None:
    """A `run_report` answer: the run, its attempts in order with why each ended as it did, what it read and wrote."""
    run = report.run
    colour = "green" if run.status == "SUCCEEDED" else "red" if run.status == "FAILED" else "yellow"
    console.print(f"[bold]run[/] {run.run_id}: [{colour}]{run.status}[/]  "
                  f"{run.started_at or '?'} → {run.ended_at or '…'}")
    if run.error:
        console.print(f"  error [red]{run.error}[/]: {short(run.cause, 300)}")
    table = Table(show_lines=False)
    for column in ("#", "job", "try", "capacity", "status", "exit", "reason / note", "image", "cache key"):
        table.add_column(column)
    for a in report.attempts:
        table.add_row(str(a.seq), a.job_key or "", str(a.attempt or ""), a.capacity or "", a.status or "",
                      _exit_code(a.exit_code), _attempt_note(a), short((a.image or "").rsplit("/", 1)[-1], 30),
                      (a.cache_key or "")[:10])
    console.print(table)
    if report.containers:
        containers = Table(title="containers of multi-container attempts")
        for column in ("attempt", "node", "container", "essential", "exit", "reason"):
            containers.add_column(column)
        for c in report.containers:
            essential = "?" if c.essential is None else "yes" if c.essential else "no"
            containers.add_row(c.attempt_id, str(c.node_index), c.name, essential, _exit_code(c.exit_code),
                               short(c.reason, 60))
        console.print(containers)
    written = [d for d in report.datasets if d.rel in ("PRODUCED", "CONTAINS")]
    read = [d for d in report.datasets if d.rel == "CONSUMED"]
    console.print(f"read {len({d.dataset_id for d in read})} datasets, "
                  f"wrote {len({d.dataset_id for d in written})}")


def failures(console: Console, result: Failures) -> None:
    """A `failures` answer: failed step attempts grouped by reason, then the failed runs and why."""
    console.print(f"[bold]failures since[/] {result.since}")
    table = Table(title="failed step attempts by reason")
    for column in ("step", "reason", "exit", "attempts", "runs", "last"):
        table.add_column(column)
    for group in result.by_reason:
        table.add_row(group.step or "", short(group.reason, 80), _exit_code(group.exit_code),
                      str(group.attempts), str(group.runs), group.last_at or "")
    console.print(table)
    runs = Table(title="failed runs")
    for column in ("run", "ended", "error", "at step", "why"):
        runs.add_column(column)
    for run in result.runs:
        why = run.reason or ""
        if run.exit_code is not None:
            why = f"{why} (exit {run.exit_code})".strip()
        if run.error == "ValidationFailed" or not why:
            why = short(run.cause, 120)
        runs.add_row(run.run_id, run.ended_at or "", run.error or "", run.step or "", why)
    console.print(runs)


def redrive(console: Console, result: Redrive) -> None:
    if result.messages == 0:
        console.print(f"no dead letters in {result.queue_arn}")
    else:
        console.print(f"moving {result.messages} lineage events from {result.queue_arn} back to the lineage queue "
                      f"(task {result.task_handle})")


def rerun_started(console: Console, run_id: str, execution_arn: str, resume: bool) -> None:
    console.print(f"started {run_id} ({'resumed' if resume else 'every step'}): {execution_arn}")


def summary_lines(run_id: str, lineage: RunLineage | None) -> list[str]:
    """A few lines about the run's lineage: its attempts in order and how many dataset links it has."""
    if lineage is None:
        return [f"no lineage recorded for {run_id}"]
    lines = [f"run {run_id}: {lineage.run.status} ({len(lineage.attempts)} step attempts)"]
    for attempt in lineage.attempts:
        if attempt.status == "REUSED":
            lines.append(f"  {attempt.step}: REUSED (not run) - {attempt.status_reason}")
            continue
        reason = "" if attempt.status == "SUCCEEDED" else (attempt.status_reason or "")
        lines.append(f"  {attempt.step}#{attempt.attempt} on {attempt.capacity}: {attempt.status} {reason}".rstrip())
    lines.append(f"  {sum(1 for d in lineage.datasets if d.rel == 'CONSUMED')} consumed / "
                 f"{sum(1 for d in lineage.datasets if d.rel == 'PRODUCED')} produced dataset links")
    return lines


def _exit_code(exit_code: int | None) -> str:
    return "" if exit_code is None else str(exit_code)


def _attempt_note(attempt: ReportAttempt) -> str:
    """Why an attempt is in the report as it is: reused from where, why it failed, what it fell back from."""
    note = ""
    if attempt.status == "REUSED":
        note = f"reused {attempt.reused_attempt} of run {attempt.reused_run}"
    elif attempt.status != "SUCCEEDED":
        note = attempt.status_reason or ""
        if attempt.retried:
            note += " → retried by Batch"
    if attempt.fallback_of:
        note = (note + "; " if note else "") + f"fallback of {attempt.fallback_of}"
    return note


def _grow(branch: Tree, entry: LineageNode, verb: str) -> None:
    if entry.repeated:
        branch.add("[dim](shown above)[/]")
        return
    for step in entry.steps:
        child = branch.add(_attempt_label(step.attempt, verb))
        for dataset in step.datasets:
            _grow(child.add(_dataset_label(dataset.dataset)), dataset, verb)


def _dataset_label(dataset: Dataset) -> str:
    facts = [f"{dataset.row_count} rows" if dataset.row_count is not None else "",
             f"{dataset.size} bytes" if dataset.size is not None else "",
             f"etag {dataset.etag[:12]}" if dataset.etag else "",
             f"version {dataset.version[:12]}" if dataset.version else "",
             f"schema {dataset.schema_hash}" if dataset.schema_hash else ""]
    shown = ", ".join(f for f in facts if f)
    return f"[cyan]{dataset.uri}[/]" + (f" [dim]({shown})[/]" if shown else "")


def _attempt_label(attempt: LineageAttempt, verb: str) -> str:
    colour = "green" if attempt.status == "SUCCEEDED" else "red"
    params = {k: v for k, v in attempt.parameters.items() if not str(v).startswith("s3://")}
    parts = [f"{verb} [bold]{attempt.step}[/]#{attempt.attempt} [{colour}]{attempt.status}[/]",
             f"run {attempt.run_id}", attempt.capacity or "",
             f"image {attempt.image}" if attempt.image else "",
             f"params {json.dumps(params, sort_keys=True)}" if params else "",
             f"key {attempt.cache_key[:10]}" if attempt.cache_key else ""]
    if attempt.status != "SUCCEEDED" and attempt.status_reason:
        parts.append(f"reason {attempt.status_reason}")
    return "  ".join(p for p in parts if p)
