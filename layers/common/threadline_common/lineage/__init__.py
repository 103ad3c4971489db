"""Lineage of pipeline runs in a property graph (Neptune openCypher, or the twin's embedded graph)."""

from .events import (
    JobStateChanged,
    LineageEvent,
    LineageEventError,
    NotRecorded,
    RunFinished,
    RunStarted,
    parse_lineage_event,
)
from .neptune import CypherRunner, LineageGraphError, NeptuneCypher
from .reader import (
    attempt_history,
    attempt_links,
    downstream,
    failures,
    run_datasets,
    run_report,
    run_summary,
    runs_for_input,
    upstream,
)
from .record import RecordResult, record_event, record_events

__all__ = [
    "CypherRunner",
    "JobStateChanged",
    "LineageEvent",
    "LineageEventError",
    "LineageGraphError",
    "NeptuneCypher",
    "NotRecorded",
    "RecordResult",
    "RunFinished",
    "RunStarted",
    "attempt_history",
    "attempt_links",
    "downstream",
    "failures",
    "parse_lineage_event",
    "record_event",
    "record_events",
    "run_datasets",
    "run_report",
    "run_summary",
    "runs_for_input",
    "upstream",
]
