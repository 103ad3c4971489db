"""State-machine notices and SNS (CloudWatch alarm) messages -> Slack.

Formats each message with Block Kit (threadline_common.slack_format) and sends
it through the incoming webhook named by the Slack secret; with no webhook
the message only reaches the logs, with a warning. A malformed notice is
logged and skipped. Failed POSTs are retried within the time the invocation
has left (from its Lambda context), keeping a margin; if Slack still refuses a
message, or no time is left, the function fails with SlackDeliveryError, an
error name the state machine can catch.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from threadline_common.observability import lambda_handler
from threadline_common.slack import deadline_in, deliver, webhook_url
from threadline_common.slack_format import NoticeError, SlackMessage, alarm_message, notice_message

logger = Logger()

DEFAULT_PIPELINE_NAME = "threadline"


@lambda_handler(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    pipeline = os.environ.get("PIPELINE_NAME") or DEFAULT_PIPELINE_NAME
    try:
        messages = messages_for(event, pipeline)
    except NoticeError as exc:
        logger.error("Skipped a malformed notice", extra={"reason": str(exc)})
        return {"status": "skipped", "reason": str(exc)}

    url = webhook_url(os.environ.get("SLACK_WEBHOOK_SECRET_ARN"))
    deadline = deadline_in(context.get_remaining_time_in_millis())
    deliveries = [deliver(message, url, deadline=deadline) for message in messages]
    for message, delivery in zip(messages, deliveries, strict=True):
        logger.info("Slack message handled", extra={"kind": message.kind, "run_id": message.run_id,
                                                    "delivery": delivery.status, "attempts": delivery.attempts})
    return {
        "status": deliveries[0].status if deliveries else "skipped",
        "messages": [
            {"kind": m.kind, "delivery": d.status}
            for m, d in zip(messages, deliveries, strict=True)
        ],
    }


def messages_for(event: Any, pipeline: str) -> list[SlackMessage]:
    """One message per SNS record, or one for a state-machine notice."""
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        records = [r for r in event["Records"] if isinstance(r, dict) and r.get("EventSource") == "aws:sns"]
        if not records:
            raise NoticeError("the event has Records but none from SNS")
        messages = []
        for record in records:
            sns = record.get("Sns")
            if not isinstance(sns, dict) or not isinstance(sns.get("Message"), str):
                raise NoticeError("an SNS record has no Sns.Message")
            messages.append(alarm_message(sns["Message"], sns.get("Subject")))
        return messages
    return [notice_message(with_cost(event), pipeline)]


def with_cost(notice: Any) -> Any:
    """A success notice that carries the run's `jobs` and `failures`, with its `cost` added (threadline_common.cost)."""
    if not isinstance(notice, dict) or notice.get("notice") != "run_succeeded" or "cost" in notice:
        return notice
    jobs, failures = notice.get("jobs"), notice.get("failures")
    if not isinstance(jobs, dict) or not jobs:
        return notice
    from threadline_common.cost import run_cost

    try:
        cost = run_cost(jobs, failures if isinstance(failures, dict) else {}).to_record()
    except Exception as exc:  # a run that cannot be priced is still announced
        logger.warning("Run not priced for its Slack message", extra={"run_id": notice.get("run_id"),
                                                                     "error": str(exc)})
        return notice
    return {**notice, "cost": cost}
