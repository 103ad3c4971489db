"""Writes one lineage event to the graph, in batches."""

from __future__ import annotations

from dataclasses import dataclass, field

from .events import LineageEvent, RunStarted
from .graph import Plan, plan_run_finished, plan_run_started
from .neptune import CypherRunner

BATCH_ROWS = 500


@dataclass(frozen=True)
class RecordResult:
    queries: int
    attempts: int
    skipped_jobs: dict[str, str] = field(default_factory=dict)


def plan_for(event: LineageEvent, pipeline: str) -> Plan:
    if isinstance(event, RunStarted):
        return plan_run_started(event, pipeline)
    return plan_run_finished(event, pipeline)


def record_event(runner: CypherRunner, event: LineageEvent, pipeline: str) -> RecordResult:
    """Run the event's writes in order; a failure raises (LineageGraphError) and a retry rewrites all, harmlessly."""
    plan = plan_for(event, pipeline)
    sent = 0
    for write in plan.writes:
        for start in range(0, len(write.rows), BATCH_ROWS):
            runner.run(write.query, {"rows": write.rows[start:start + BATCH_ROWS]})
            sent += 1
    return RecordResult(queries=sent, attempts=len(plan.attempts), skipped_jobs=dict(plan.skipped_jobs))
