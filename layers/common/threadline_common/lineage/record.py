"""Writes lineage events to the graph: batched UNWIND writes, chained into as few requests as fit (`chain.py`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .chain import chained, requests
from .events import JobStateChanged, LineageEvent, RunStarted
from .graph import GraphWrites, ObjectFacts, combine, plan_job_state_changed, plan_run_finished, plan_run_started
from .neptune import CypherRunner


@dataclass(frozen=True)
class RecordResult:
    queries: int  # requests sent to the graph
    attempts: int
    skipped_jobs: dict[str, str] = field(default_factory=dict)


def plan_for(event: LineageEvent, pipeline: str, facts: Iterable[ObjectFacts] = ()) -> GraphWrites:
    if isinstance(event, RunStarted):
        return plan_run_started(event, pipeline)
    if isinstance(event, JobStateChanged):
        return plan_job_state_changed(event, pipeline)
    return plan_run_finished(event, pipeline, facts)


def run_plan(runner: CypherRunner, plan: GraphWrites) -> int:
    """Send the plan's writes in order, chained into requests of a bounded number of rows; the requests sent."""
    sent = 0
    for request in requests(plan.writes):
        runner.run(*chained(request))
        sent += 1
    return sent


def record_event(runner: CypherRunner, event: LineageEvent, pipeline: str,
                 facts: Iterable[ObjectFacts] = ()) -> RecordResult:
    """Run the event's writes in order; a failure raises (LineageGraphError) and a retry rewrites all, harmlessly."""
    plan = plan_for(event, pipeline, facts)
    sent = run_plan(runner, plan)
    return RecordResult(queries=sent, attempts=len(plan.attempts), skipped_jobs=dict(plan.skipped_jobs))


def record_events(runner: CypherRunner, events: Sequence[tuple[LineageEvent, Sequence[ObjectFacts]]],
                  pipeline: str) -> RecordResult:
    """Write several events as one combined plan: one query text per write, chained into one request or few."""
    plan = combine(plan_for(event, pipeline, facts) for event, facts in events)
    sent = run_plan(runner, plan)
    return RecordResult(queries=sent, attempts=len(plan.attempts), skipped_jobs=dict(plan.skipped_jobs))
