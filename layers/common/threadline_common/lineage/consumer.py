"""A batch of lineage events from the lineage queue, written to the graph with partial-batch failures.

The state machine sends its lineage events to an SQS queue, and an EventBridge
rule adds Batch's "Job State Change" events of the pipeline's queues; Lambda
hands the function batches of them. The batch is written as one combined plan
(one round trip per query text). When that fails, the events are written one by one so that
only the ones that cannot be written go back to the queue (the function answers
`batchItemFailures`); once the graph is unreachable or throttling, the rest of
the batch is failed at once instead of waiting on each. A failed message comes
back after the queue's visibility timeout; after `maxReceiveCount` receives it
moves to the dead-letter queue, whose alarm says so. Writes are idempotent, so a
message delivered twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .events import LineageEvent, LineageEventError, NotRecorded, RunFinished, parse_lineage_event
from .graph import ObjectFacts
from .neptune import CypherRunner, LineageGraphError
from .record import record_events

FactsSource = Callable[[RunFinished], Sequence[ObjectFacts]]


@dataclass
class BatchOutcome:
    failed: list[str] = field(default_factory=list)  # message ids to retry
    recorded: list[str] = field(default_factory=list)
    written: list[LineageEvent] = field(default_factory=list)  # the recorded events themselves, in order
    skipped: dict[str, str] = field(default_factory=dict)  # message id -> why (malformed: never retried)
    ignored: dict[str, str] = field(default_factory=dict)  # message id -> why (nothing to record: never retried)
    queries: int = 0
    errors: list[str] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        """The answer Lambda reads with ReportBatchItemFailures."""
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failed]}


def is_sqs_batch(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return isinstance(records, list) and all(
        isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)


def consume(records: Sequence[dict[str, Any]], runner: CypherRunner, pipeline: str,
            facts_for: FactsSource | None = None) -> BatchOutcome:
    outcome = BatchOutcome()
    parsed: list[tuple[str, LineageEvent, Sequence[ObjectFacts]]] = []
    for record in records:
        message_id = str(record.get("messageId") or "")
        try:
            event = parse_lineage_event(record.get("body"))
        except NotRecorded as exc:
            outcome.ignored[message_id] = str(exc)
            continue
        except LineageEventError as exc:
            outcome.skipped[message_id] = str(exc)
            continue
        facts = facts_for(event) if facts_for is not None and isinstance(event, RunFinished) else ()
        parsed.append((message_id, event, facts))
    if not parsed:
        return outcome
    try:
        result = record_events(runner, [(event, facts) for _, event, facts in parsed], pipeline)
    except LineageGraphError as exc:
        outcome.errors.append(str(exc))
        if exc.unavailable:
            outcome.failed.extend(message_id for message_id, _, _ in parsed)
            return outcome
        return _one_by_one(parsed, runner, pipeline, outcome)
    outcome.queries += result.queries
    outcome.recorded.extend(message_id for message_id, _, _ in parsed)
    outcome.written.extend(event for _, event, _ in parsed)
    return outcome


def _one_by_one(parsed: list[tuple[str, LineageEvent, Sequence[ObjectFacts]]], runner: CypherRunner,
                pipeline: str, outcome: BatchOutcome) -> BatchOutcome:
    """Isolate the events the graph refuses; stop trying once it is unavailable."""
    for index, (message_id, event, facts) in enumerate(parsed):
        try:
            result = record_events(runner, [(event, facts)], pipeline)
        except LineageGraphError as exc:
            outcome.errors.append(f"{message_id}: {exc}")
            outcome.failed.append(message_id)
            if exc.unavailable:
                outcome.failed.extend(rest for rest, _, _ in parsed[index + 1:])
                return outcome
            continue
        outcome.queries += result.queries
        outcome.recorded.append(message_id)
        outcome.written.append(event)
    return outcome
