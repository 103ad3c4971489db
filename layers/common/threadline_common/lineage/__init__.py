"""Lineage of pipeline runs in a property graph (Neptune openCypher, or the twin's embedded graph)."""

from .events import LineageEvent, LineageEventError, RunFinished, RunStarted, parse_lineage_event
from .neptune import CypherRunner, LineageGraphError, NeptuneCypher
from .reader import attempt_history, attempt_links, run_datasets, run_summary, runs_for_input
from .record import RecordResult, record_event

__all__ = [
    "CypherRunner",
    "LineageEvent",
    "LineageEventError",
    "LineageGraphError",
    "NeptuneCypher",
    "RecordResult",
    "RunFinished",
    "RunStarted",
    "attempt_history",
    "attempt_links",
    "parse_lineage_event",
    "record_event",
    "run_datasets",
    "run_summary",
    "runs_for_input",
]
