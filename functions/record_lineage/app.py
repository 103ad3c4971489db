"""State-machine lineage events -> the lineage graph (Neptune, openCypher through boto3 `neptunedata`).

`run_started` records the Run and its input; `run_finished` records the final
status and one StepAttempt per Batch attempt of every job that ran, failed ones
included, with the datasets they read and wrote. Writes are idempotent, so a
retried invocation is harmless. A malformed event is logged and skipped; a
graph that cannot be reached raises LineageGraphError (the state machine
catches it and goes on: lineage must not fail a run).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from threadline_common.lineage import (
    LineageEventError,
    NeptuneCypher,
    RunStarted,
    parse_lineage_event,
    record_event,
)
from threadline_common.observability import lambda_handler

logger = Logger()

DEFAULT_PIPELINE_NAME = "threadline"


@lambda_handler(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        lineage_event = parse_lineage_event(event)
    except LineageEventError as exc:
        logger.error("Skipped a malformed lineage event", extra={"reason": str(exc)})
        return {"status": "skipped", "reason": str(exc)}

    logger.append_keys(run_id=lineage_event.run_id)
    pipeline = os.environ.get("PIPELINE_NAME") or DEFAULT_PIPELINE_NAME
    result = record_event(NeptuneCypher.from_environment(), lineage_event, pipeline)
    if result.skipped_jobs:
        logger.warning("Some job entries had no readable job description", extra={"skipped_jobs": result.skipped_jobs})
    kind = "run_started" if isinstance(lineage_event, RunStarted) else "run_finished"
    logger.info("Recorded lineage", extra={"event": kind, "attempts": result.attempts, "queries": result.queries})
    return {
        "status": "recorded",
        "event": kind,
        "run_id": lineage_event.run_id,
        "attempts": result.attempts,
        "queries": result.queries,
        "skipped_jobs": result.skipped_jobs,
    }
