"""A run shown while it runs: states entered and left, Batch jobs with queue, capacity, attempts, nodes
and, while the analysis runs, the blocks its nodes have done.

On a terminal it is a live view (redrawn in place, gone once the run's report
prints); otherwise one plain line per change, so logs and CI show the same
story in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .console import console

if TYPE_CHECKING:
    from ..twin.run_progress import JobView, Snapshot

SHOWN_STATES = 12  # the live view keeps the latest states; the report lists them all
_MARK = {"SUCCEEDED": "[green]ok[/]", "FAILED": "[red]failed[/]"}


class LiveView:
    """A rich Live display of the latest snapshot (a terminal only)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._live = Live(Text(f"starting run {run_id}"), console=console, transient=True,
                          refresh_per_second=8)

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def show(self, snapshot: Snapshot, elapsed: float) -> None:
        self._live.update(_view(self.run_id, snapshot, elapsed))


class PlainLines:
    """One line per state entered or left and per change of a Batch job (no terminal)."""

    def __init__(self) -> None:
        self._entered = 0
        self._exited: set[int] = set()
        self._jobs: dict[str, tuple[str, int, str]] = {}

    def show(self, snapshot: Snapshot, elapsed: float) -> None:
        for index, visit in enumerate(snapshot.states):
            if index >= self._entered:
                at = (visit.entered - snapshot.started).total_seconds()
                console.print(f"  {at:6.2f}s  RUNNING in {visit.name} ({visit.state_type})",
                              highlight=False)
            if visit.exited is not None and index not in self._exited:
                self._exited.add(index)
                at = (visit.exited - snapshot.started).total_seconds()
                failed = " (failed)" if visit.failed else ""
                console.print(f"  {at:6.2f}s  left {visit.name} after {visit.seconds or 0:.2f}s{failed}",
                              highlight=False)
        self._entered = len(snapshot.states)
        for job in snapshot.jobs:
            seen = (job.status, job.attempts, job.progress)
            if self._jobs.get(job.job_id) != seen:
                self._jobs[job.job_id] = seen
                console.print(f"  {elapsed:6.2f}s  batch {escape(job_line(job))}", highlight=False)


def job_line(job: JobView) -> str:
    capacity = f" ({job.capacity})" if job.capacity else ""
    nodes = f", {job.nodes} nodes" if job.nodes > 1 else ""
    attempt = f", attempt {job.attempts}" if job.attempts else ""
    reason = f": {job.reason}" if job.reason and job.status == "FAILED" else ""
    progress = f", {job.progress}" if job.progress else ""
    return f"{job.name} {job.status} on {job.queue or '?'}{capacity}{attempt}{nodes}{progress}{reason}"


def _view(run_id: str, snapshot: Snapshot, elapsed: float) -> Group:
    header = Text.from_markup(f"[bold]run[/] {escape(run_id)}  {snapshot.status}  {elapsed:.1f}s  "
                              "[dim](Ctrl-C stops it)[/]")
    states = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
    for column in ("state", "type", "", "seconds"):
        states.add_column(column, justify="right" if column == "seconds" else "left")
    for visit in snapshot.states[-SHOWN_STATES:]:
        if visit.exited is None:
            mark, seconds = "[yellow]running[/]", ""
        else:
            mark, seconds = ("[red]failed[/]" if visit.failed else "[green]ok[/]"), f"{visit.seconds or 0:.2f}"
        states.add_row(escape(visit.name), visit.state_type, mark, seconds)
    parts: list[Text | Table] = [header, states]
    if snapshot.jobs:
        jobs = Table(box=None, show_header=True, header_style="dim", pad_edge=False, title_justify="left")
        for column in ("batch job", "status", "queue", "capacity", "attempt", "nodes", "progress"):
            jobs.add_column(column)
        for job in snapshot.jobs:
            status = _MARK.get(job.status, f"[yellow]{job.status}[/]")
            jobs.add_row(escape(job.name), status, escape(job.queue), job.capacity, str(job.attempts or ""),
                         str(job.nodes), escape(job.progress))
        parts.append(jobs)
    return Group(*parts)
