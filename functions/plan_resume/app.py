"""A resumed run asks the lineage graph which leading steps it can skip.

Invoked by the state machine (`PlanResume`) only for executions started with
`"resume": true` (`threadline run FILE --resume`, `threadline lineage rerun`).
For each reusable step it computes the step's cache key (job definition, image,
parameters, input versions), finds an earlier successful attempt with that key
whose outputs are still in S3, and answers where the run starts and which
datasets the later steps read instead of the run's own (docs/lineage.md).
It only reads: the graph, S3 (HEAD/list of the outputs) and Batch job definitions.

Event: {"run_id", "source", "datasets": {clean_uri, validation_uri, partials_prefix},
        "steps": {"preprocess": {"job_definition", "parameters"}, "analysis": {...}}}
Answer: {"resume": true, "start_at", "datasets", "reused": {step: {attempt_id, run_id, cache_key}},
         "keys", "notes"}
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from threadline_common import aws
from threadline_common.lineage import NeptuneCypher
from threadline_common.lineage.resume import image_reader, plan_resume
from threadline_common.observability import lambda_handler

logger = Logger()


class PlanRequestError(ValueError):
    """The state machine sent something this function cannot plan from."""


@lambda_handler(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not isinstance(event, dict) or not isinstance(event.get("source"), dict) \
            or not isinstance(event.get("datasets"), dict) or not isinstance(event.get("steps"), dict):
        raise PlanRequestError("expected an object with source, datasets and steps")
    logger.append_keys(run_id=event.get("run_id"))
    plan = plan_resume(NeptuneCypher.from_environment(), aws.client("s3"), image_reader(aws.client("batch")),
                       event["source"], event["datasets"], event["steps"])
    logger.info("Planned a resumed run", extra={"start_at": plan.start_at, "reused": plan.reused,
                                                "notes": plan.notes})
    return plan.to_state()
