"""Which OpenLineage events a batch of recorded lineage events calls for, read back from the graph.

After the graph write, each run the batch touched is read with `reader.run_report`
and the events are built from that, as `threadline lineage export` builds them:

- `run_started`: the run's START;
- `run_finished`: every attempt's START and end (the graph then has their cache keys,
  fallbacks and dataset facts), then the run's end;
- a Batch job that ended: its attempts' events, but only once the run has ended;
  until then `run_finished` sends them.

Each attempt's events are therefore sent when its run ends, or when its job ends
after its run did (a stopped run: the finaliser's `run_finished` may come first). A
redelivered message, or two writers racing, can send an event twice; the ids are
derived, so a consumer sees the same run again, not another one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .events import JobStateChanged, LineageEvent, RunFinished, RunStarted
from .neptune import CypherRunner
from .openlineage import ENDED, run_events
from .reader import run_report


@dataclass
class _Wanted:
    start: bool = False
    end: bool = False
    all_attempts: bool = False
    jobs: set[str] = field(default_factory=set)


def events_for(runner: CypherRunner, recorded: Iterable[LineageEvent], pipeline: str) -> list[dict[str, Any]]:
    """The OpenLineage events for what was just recorded, run by run."""
    wanted: dict[str, _Wanted] = {}
    for event in recorded:
        entry = wanted.setdefault(event.run_id, _Wanted())
        if isinstance(event, RunStarted):
            entry.start = True
        elif isinstance(event, RunFinished):
            entry.end = entry.all_attempts = True
        elif isinstance(event, JobStateChanged):
            entry.jobs.add(event.job_id)
    events: list[dict[str, Any]] = []
    for run_id, entry in wanted.items():
        report = run_report(runner, run_id)
        if report is None:
            continue
        run_ended = (report.run.status or "") in ENDED
        if entry.all_attempts:
            attempts = None
        elif run_ended:
            attempts = [a.attempt_id for a in report.attempts if a.job_id in entry.jobs]
        else:
            attempts = []
        if entry.start or entry.end or attempts is None or attempts:
            events.extend(run_events(report, pipeline, run_start=entry.start, run_end=entry.end, attempts=attempts))
    return events
