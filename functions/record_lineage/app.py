"""Lineage events -> the lineage graph (Neptune, openCypher through boto3 `neptunedata`).

The state machine sends its lineage events to the lineage queue, and an
EventBridge rule adds AWS Batch's "Job State Change" events (SUCCEEDED or
FAILED) of the pipeline's job queues; Lambda hands them to this function in batches (an SQS event source with
ReportBatchItemFailures). Events that cannot be written are answered as
`batchItemFailures` and come back after the queue's visibility timeout, then go
to the dead-letter queue: a run never waits on Neptune and no event is lost.

`run_started` records the Run and its input; a Batch event records the ended
job's attempts as they happen, so a run that never reaches its own end (stopped,
timed out) still has them; `run_finished` records the final status and one
StepAttempt per Batch attempt of every job that ran, failed ones included, with
their cache keys and the datasets they read and wrote (with ETags, sizes, row
counts and schema read from S3 and the validation report). Writes are
idempotent, so a redelivered event is harmless, and an attempt written from both
its Batch event and `run_finished` is one node. A malformed event is logged and
skipped; so is a Batch event of a job that is not threadline's. After the write, when
OPENLINEAGE_URL is set, what was written goes to that endpoint as OpenLineage RunEvents
(openlineage_emit): best effort, never at the cost of the graph write.

Invoked directly with one event (tests, `sam local invoke -e events/...`), it
records that event and raises LineageGraphError when the graph cannot be reached.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from threadline_common import aws
from threadline_common.lineage import (
    JobStateChanged,
    LineageEvent,
    LineageEventError,
    NeptuneCypher,
    NotRecorded,
    RunFinished,
    RunStarted,
    parse_lineage_event,
    record_event,
)
from threadline_common.lineage.consumer import consume, is_sqs_batch
from threadline_common.lineage.events import JOB_STATE_CHANGED, RUN_FINISHED, RUN_STARTED
from threadline_common.lineage.facts import collect_facts
from threadline_common.lineage.graph import ObjectFacts
from threadline_common.lineage.neptune import CypherRunner
from threadline_common.observability import lambda_handler

if TYPE_CHECKING:
    from threadline_common.cost import SpotPrices

logger = Logger()

DEFAULT_PIPELINE_NAME = "threadline"


@lambda_handler(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    pipeline = os.environ.get("PIPELINE_NAME") or DEFAULT_PIPELINE_NAME
    if is_sqs_batch(event):
        return _handle_batch(event["Records"], pipeline, context)
    return _handle_one(event, pipeline, context)


def _handle_batch(records: list[dict[str, Any]], pipeline: str, context: Any) -> dict[str, Any]:
    runner = NeptuneCypher.from_environment()
    outcome = consume(records, runner, pipeline, facts_for=_facts)
    _record_costs(outcome.written, runner)  # first: the OpenLineage run event carries the cost from the graph
    _send_openlineage(runner, outcome.written, pipeline, context)
    for message_id, reason in outcome.skipped.items():
        logger.error("Skipped a malformed lineage event", extra={"message_id": message_id, "reason": reason})
    for message_id, reason in outcome.ignored.items():
        logger.info("Skipped an event with nothing to record", extra={"message_id": message_id, "reason": reason})
    if outcome.failed:
        logger.warning("Lineage events left for a later delivery", extra={
            "failed": outcome.failed, "errors": outcome.errors[:5]})
    logger.info("Recorded lineage batch", extra={
        "records": len(records), "recorded": len(outcome.recorded), "failed": len(outcome.failed),
        "skipped": len(outcome.skipped), "ignored": len(outcome.ignored), "queries": outcome.queries})
    return outcome.response()


def _handle_one(event: dict[str, Any], pipeline: str, context: Any) -> dict[str, Any]:
    try:
        lineage_event = parse_lineage_event(event)
    except NotRecorded as exc:
        logger.info("Skipped an event with nothing to record", extra={"reason": str(exc)})
        return {"status": "skipped", "reason": str(exc)}
    except LineageEventError as exc:
        logger.error("Skipped a malformed lineage event", extra={"reason": str(exc)})
        return {"status": "skipped", "reason": str(exc)}

    logger.append_keys(run_id=lineage_event.run_id)
    facts = _facts(lineage_event) if isinstance(lineage_event, RunFinished) else []
    runner = NeptuneCypher.from_environment()
    result = record_event(runner, lineage_event, pipeline, facts)
    _record_costs([lineage_event], runner)
    _send_openlineage(runner, [lineage_event], pipeline, context)
    if result.skipped_jobs:
        logger.warning("Some job entries had no readable job description", extra={"skipped_jobs": result.skipped_jobs})
    kind = _kind(lineage_event)
    logger.info("Recorded lineage", extra={"event": kind, "attempts": result.attempts, "queries": result.queries})
    return {
        "status": "recorded",
        "event": kind,
        "run_id": lineage_event.run_id,
        "attempts": result.attempts,
        "queries": result.queries,
        "skipped_jobs": result.skipped_jobs,
    }


def _kind(event: RunStarted | RunFinished | JobStateChanged) -> str:
    if isinstance(event, RunStarted):
        return RUN_STARTED
    return JOB_STATE_CHANGED if isinstance(event, JobStateChanged) else RUN_FINISHED


def _send_openlineage(runner: CypherRunner, recorded: list[LineageEvent], pipeline: str, context: Any) -> None:
    """After the graph write: the OpenLineage events it calls for, to OPENLINEAGE_URL when one is set.

    Best effort: a failure is logged and never fails the graph write (see openlineage_transport).
    Its modules (urllib.request among them) are imported here, not at init: a function with no
    OPENLINEAGE_URL never needs them (bench/README.md, cold start).
    """
    from threadline_common.lineage.openlineage_emit import events_for
    from threadline_common.lineage.openlineage_transport import HttpTransport

    try:
        transport = HttpTransport.from_environment()
        if transport is None or not recorded:
            return
        events = events_for(runner, recorded, pipeline)
        result = transport.send(events, lambda: context.get_remaining_time_in_millis() / 1000 - 2)
    except Exception as exc:  # the graph write stands, whatever went wrong here
        logger.exception("OpenLineage events not built or sent", extra={"error": str(exc)})
        return
    log = logger.error if result.failed else logger.info
    log("Sent OpenLineage events", extra={"sent": result.sent, "failed": result.failed[:5]})


def _record_costs(recorded: list[LineageEvent], runner: CypherRunner) -> None:
    """After the graph write: each finished run's cost into its run record (RUN_TABLE), the graph and,
    for a run that succeeded, its report; best effort.

    This function is the one place that sees all of a run's attempts (threadline_common.run_cost_record).
    A failure is logged and never fails the graph write.
    """
    table = os.environ.get("RUN_TABLE")
    finished = [event for event in recorded if isinstance(event, RunFinished)]
    if not finished:
        return
    from threadline_common.run_cost_record import record_run_cost

    dynamodb, s3, spot = aws.client("dynamodb"), aws.client("s3"), _spot_prices()
    for event in finished:
        try:
            done = record_run_cost(event, spot=spot, dynamodb=dynamodb, table=table, runner=runner, s3=s3)
        except Exception as exc:  # the lineage stands, whatever went wrong here
            logger.warning("Run cost not priced", extra={"run_id": event.run_id, "error": str(exc)})
            continue
        if done.problems:
            logger.warning("Run cost not written everywhere", extra={"run_id": event.run_id, "problems": done.problems})
        logger.info("Recorded run cost", extra={
            "run_id": event.run_id, "total_usd": done.record["total"], "unpriced": len(done.record["unpriced"]),
            "written": done.written, "report": done.report})
    if table:
        _record_rightsizing(dynamodb, table, finished)


def _record_rightsizing(dynamodb: Any, table: str, finished: list[RunFinished]) -> None:
    """Each finished run's right-sizing hints from its jobs' usage records (INTERMEDIATE_BUCKET), best effort."""
    bucket = os.environ.get("INTERMEDIATE_BUCKET")
    if not bucket:
        return
    from threadline_common.run_rightsizing_record import write_rightsizing

    s3 = aws.client("s3")
    for event in finished:
        try:
            sizing = write_rightsizing(dynamodb, s3, table, bucket, event)
        except Exception as exc:  # the lineage stands, whatever went wrong here
            logger.warning("Right-sizing hints not written to the run record",
                           extra={"run_id": event.run_id, "error": str(exc)})
            continue
        logger.info("Recorded right-sizing hints", extra={"run_id": event.run_id, "steps": sorted(sizing["steps"]),
                                                          "unreadable": sizing["unreadable"]})


@cache
def _spot_prices() -> SpotPrices | None:
    """EC2's Spot price history where the template allows it (SPOT_PRICE_LOOKUP; off in the twin), one per container."""
    if os.environ.get("SPOT_PRICE_LOOKUP", "").lower() != "true":
        return None
    from threadline_common.spot_prices import SpotPriceHistory

    return SpotPriceHistory(lambda region: aws.client("ec2", region_name=region))


def _facts(event: RunFinished) -> list[ObjectFacts]:
    """ETags, sizes, row counts and schema of what the run wrote; nothing when S3 cannot tell."""
    found = collect_facts(aws.client("s3"), event)
    if found.problems:
        logger.warning("Some dataset facts could not be read", extra={"problems": found.problems[:5]})
    return found.facts
