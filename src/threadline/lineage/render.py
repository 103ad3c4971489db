"""The lineage as text for the terminal: trees of datasets and steps, a run's attempts, failures.

Each function prints one answer (of `threadline_common.lineage.reader`, or a
redrive or rerun) to a rich console; the HTML page of `lineage show` is
`html.py`. `summary_lines` says a run's lineage in a few plain lines for the end
of `threadline demo` / `run`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from ..text import short

if TYPE_CHECKING:
    from .redrive import Redrive
    from .view import RunLineage

UPSTREAM = ("produced_by", "consumed", "made by")  # a tree's step key, dataset key, and how a step relates
DOWNSTREAM = ("consumed_by", "produced", "read by")


def missing_run(console: Console, run_id: str) -> None:
    console.print(f"[red]no lineage recorded for run {run_id}[/]")


def missing_dataset(console: Console, uri: str) -> None:
    console.print(f"[yellow]no dataset recorded for {uri}[/]")


def lineage_tree(console: Console, result: dict[str, Any], shape: tuple[str, str, str]) -> None:
    """An `upstream` or `downstream` answer: a tree per dataset found, then the runs that took it as input."""
    steps_key, datasets_key, verb = shape
    for entry in result["tree"]:
        tree = Tree(_dataset_label(entry["dataset"]))
        _grow(tree, entry, steps_key, datasets_key, verb)
        console.print(tree)
    if result.get("runs"):
        console.print(f"[bold]runs that took it as input[/] ({len(result['runs'])})")
        for run in result["runs"]:
            console.print(f"  {run['run_id']}  {run['status']}  {run.get('started_at') or ''}"
                          + (f"  {run['error']}" if run.get("error") else ""))


def run_report(console: Console, report: dict[str, Any]) -> None:
    """A `run_report` answer: the run, its attempts in order with why each ended as it did, what it read and wrote."""
    run = report["run"]
    colour = "green" if run["status"] == "SUCCEEDED" else "red" if run["status"] == "FAILED" else "yellow"
    console.print(f"[bold]run[/] {run['run_id']}: [{colour}]{run['status']}[/]  "
                  f"{run.get('started_at') or '?'} → {run.get('ended_at') or '…'}")
    if run.get("error"):
        console.print(f"  error [red]{run['error']}[/]: {short(run.get('cause'), 300)}")
    table = Table(show_lines=False)
    for column in ("#", "job", "try", "capacity", "status", "exit", "reason / note", "image", "cache key"):
        table.add_column(column)
    for a in report["attempts"]:
        table.add_row(str(a.get("seq")), a.get("job_key") or "", str(a.get("attempt") or ""),
                      a.get("capacity") or "", a.get("status") or "", _exit_code(a), _attempt_note(a),
                      short((a.get("image") or "").rsplit("/", 1)[-1], 30), (a.get("cache_key") or "")[:10])
    console.print(table)
    written = [d for d in report["datasets"] if d["rel"] in ("PRODUCED", "CONTAINS")]
    read = [d for d in report["datasets"] if d["rel"] == "CONSUMED"]
    console.print(f"read {len({d['dataset_id'] for d in read})} datasets, "
                  f"wrote {len({d['dataset_id'] for d in written})}")


def failures(console: Console, result: dict[str, Any]) -> None:
    """A `failures` answer: failed step attempts grouped by reason, then the failed runs and why."""
    console.print(f"[bold]failures since[/] {result['since']}")
    table = Table(title="failed step attempts by reason")
    for column in ("step", "reason", "exit", "attempts", "runs", "last"):
        table.add_column(column)
    for group in result["by_reason"]:
        table.add_row(group["step"] or "", short(group.get("reason"), 80), _exit_code(group),
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
            why = short(run.get("cause"), 120)
        runs.add_row(run["run_id"], run.get("ended_at") or "", run.get("error") or "", run.get("step") or "", why)
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
    lines = [f"run {run_id}: {lineage.run.get('status')} ({len(lineage.attempts)} step attempts)"]
    for attempt in lineage.attempts:
        if attempt.get("status") == "REUSED":
            lines.append(f"  {attempt.get('step')}: REUSED (not run) - {attempt.get('status_reason')}")
            continue
        reason = "" if attempt.get("status") == "SUCCEEDED" else (attempt.get("status_reason") or "")
        lines.append(f"  {attempt.get('step')}#{attempt.get('attempt')} on {attempt.get('capacity')}: "
                     f"{attempt.get('status')} {reason}".rstrip())
    lines.append(f"  {sum(1 for d in lineage.datasets if d['rel'] == 'CONSUMED')} consumed / "
                 f"{sum(1 for d in lineage.datasets if d['rel'] == 'PRODUCED')} produced dataset links")
    return lines


def _exit_code(row: dict[str, Any]) -> str:
    return "" if row.get("exit_code") is None else str(row["exit_code"])


def _attempt_note(attempt: dict[str, Any]) -> str:
    """Why an attempt is in the report as it is: reused from where, why it failed, what it fell back from."""
    note = ""
    if attempt["status"] == "REUSED":
        note = f"reused {attempt.get('reused_attempt')} of run {attempt.get('reused_run')}"
    elif attempt["status"] != "SUCCEEDED":
        note = attempt.get("status_reason") or ""
        if attempt.get("retried"):
            note += " → retried by Batch"
    if attempt.get("fallback_of"):
        note = (note + "; " if note else "") + f"fallback of {attempt['fallback_of']}"
    return note


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
