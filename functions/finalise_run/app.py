"""The safety net: closes a run that ended outside the state machine's own failure path.

An EventBridge rule sends every "Step Functions Execution Status Change" event
of the pipeline with status FAILED, TIMED_OUT or ABORTED here. Those end an
execution without its `MarkRunFailed` -> `RecordRunFailed` -> `NotifyRunFailed`
path when the cause is an error `States.ALL` cannot catch
(`States.Runtime`, `States.DataLimitExceeded`), the execution's time limit, or
a person stopping it. The function then marks the run record, queues the
lineage `run_finished` event and sends the Slack notice, exactly once:

1. A conditional UpdateItem claims the record. It succeeds only while the
   record is missing, `RUNNING`, or `SUCCEEDED` by post-processing though the
   execution did not succeed; a run the state machine closed itself is left
   alone. The claim stores the notices still owed in the string set `pending`.
2. Each owed notice is sent, then deleted from `pending`. A retried delivery
   (EventBridge or Lambda async retries) finds the claim taken and sends only
   what is still pending: lineage writes are idempotent, and a Slack notice is
   repeated only if the function died between sending it and recording that.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from threadline_common import aws
from threadline_common.observability import lambda_handler

logger = Logger()

DETAIL_TYPE = "Step Functions Execution Status Change"
CLOSING_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
CAUSE_MAX = 4000  # of the execution's cause kept in the record and the notices (AWS allows 32,768)
NOTICES = ("lineage", "slack")
DEFAULT_ERRORS = {
    "TIMED_OUT": ("States.Timeout", "The execution ran past the state machine's TimeoutSeconds."),
    "ABORTED": ("ExecutionAborted", "The execution was stopped (StopExecution or the console)."),
    "FAILED": ("States.Runtime", "The execution failed outside the pipeline's own failure path."),
}


class NotAnExecutionEnd(ValueError):
    """The event is not a closing status change of one execution; it is logged and skipped."""


@dataclass(frozen=True)
class ExecutionEnd:
    run_id: str
    execution_arn: str
    status: str
    error: str
    cause: str
    ended_at: str
    source: dict[str, Any]


@lambda_handler(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        end = execution_end(event)
    except NotAnExecutionEnd as exc:
        logger.error("Skipped an event that is not a closing execution status change", extra={"reason": str(exc)})
        return {"status": "skipped", "reason": str(exc)}
    logger.append_keys(run_id=end.run_id)

    pending = claim(end)
    if pending is None:
        logger.info("The state machine closed this run itself", extra={"execution_status": end.status})
        return {"status": "already_closed", "run_id": end.run_id}
    sent = []
    for notice in [n for n in NOTICES if n in pending]:
        SENDERS[notice](end)
        settle(end.run_id, notice)
        sent.append(notice)
    logger.warning("Closed a run the state machine could not close",
                   extra={"execution_status": end.status, "error": end.error, "sent": sent})
    return {"status": "closed", "run_id": end.run_id, "run_status": end.status, "sent": sent}


def execution_end(event: Any) -> ExecutionEnd:
    """The ended execution an EventBridge event describes; raises NotAnExecutionEnd saying why not."""
    if not isinstance(event, dict):
        raise NotAnExecutionEnd(f"the event is a {type(event).__name__}, not an object")
    try:
        source, detail_type, detail = event["source"], event["detail-type"], event["detail"]
    except KeyError as exc:
        raise NotAnExecutionEnd(f"the event has no {exc}") from None
    if (source, detail_type) != ("aws.states", DETAIL_TYPE) or not isinstance(detail, dict):
        raise NotAnExecutionEnd(f"{source!r} / {detail_type!r} is not aws.states / {DETAIL_TYPE}")
    status, arn, name = detail.get("status"), detail.get("executionArn"), detail.get("name")
    if status not in CLOSING_STATUSES:
        raise NotAnExecutionEnd(f"status {status!r} does not end a run")
    if not isinstance(arn, str) or not isinstance(name, str) or not name:
        raise NotAnExecutionEnd("the detail names no executionArn and name")
    run_input = _json_object(detail.get("input"))
    default_error, default_cause = DEFAULT_ERRORS[status]
    given_run_id, given_source = run_input.get("run_id"), run_input.get("source")
    return ExecutionEnd(
        run_id=given_run_id if isinstance(given_run_id, str) else name,
        execution_arn=arn,
        status=status,
        error=str(detail.get("error") or default_error),
        cause=_clip(str(detail.get("cause") or default_cause)),
        ended_at=_iso_millis(detail.get("stopDate")),
        source=given_source if isinstance(given_source, dict) else {},
    )


def claim(end: ExecutionEnd) -> set[str] | None:
    """Take the run over from the state machine; the notices still owed, or None if it closed the run."""
    table = aws.client("dynamodb")
    try:
        table.update_item(
            TableName=os.environ["RUN_TABLE"],
            Key={"run_id": {"S": end.run_id}},
            UpdateExpression="SET #status = :status, error_name = :error, error_cause = :cause, ended_at = :at, "
                             "execution_arn = :arn, closed_by = :closer, #pending = :pending",
            ConditionExpression="attribute_not_exists(run_id) OR #status IN (:running, :succeeded)",
            ExpressionAttributeNames={"#status": "status", "#pending": "pending"},
            ExpressionAttributeValues={
                ":status": {"S": end.status}, ":error": {"S": end.error}, ":cause": {"S": end.cause},
                ":at": {"S": end.ended_at}, ":arn": {"S": end.execution_arn}, ":closer": {"S": "finaliser"},
                ":pending": {"SS": list(NOTICES)}, ":running": {"S": "RUNNING"}, ":succeeded": {"S": "SUCCEEDED"},
            },
        )
        return set(NOTICES)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
    item = table.get_item(TableName=os.environ["RUN_TABLE"], Key={"run_id": {"S": end.run_id}},
                          ConsistentRead=True).get("Item", {})
    if item.get("closed_by", {}).get("S") != "finaliser":
        return None
    return set(item.get("pending", {}).get("SS", []))


def settle(run_id: str, notice: str) -> None:
    aws.client("dynamodb").update_item(
        TableName=os.environ["RUN_TABLE"], Key={"run_id": {"S": run_id}},
        UpdateExpression="DELETE #pending :sent", ExpressionAttributeNames={"#pending": "pending"},
        ExpressionAttributeValues={":sent": {"SS": [notice]}},
    )


def send_lineage(end: ExecutionEnd) -> None:
    """The `run_finished` event, as the state machine would have queued it (docs/design.md)."""
    event = {"event": "run_finished", "status": end.status, "run_id": end.run_id,
             "execution_arn": end.execution_arn, "at": end.ended_at,
             "error": {"Error": end.error, "Cause": end.cause}}
    if end.source:
        event["source"] = end.source
    aws.client("sqs").send_message(QueueUrl=os.environ["LINEAGE_QUEUE_URL"], MessageBody=json.dumps(event))


def send_slack(end: ExecutionEnd) -> None:
    """A `run_failed` notice to the Slack function, asynchronously: its retries and dead letters apply."""
    notice = {"notice": "run_failed", "run_id": end.run_id, "execution_arn": end.execution_arn,
              "error": {"Error": end.error, "Cause": end.cause}, "status": end.status}
    if end.source:
        notice["source"] = end.source
    aws.client("lambda").invoke(FunctionName=os.environ["NOTIFY_SLACK_FUNCTION"], InvocationType="Event",
                                Payload=json.dumps(notice).encode())


SENDERS = {"lineage": send_lineage, "slack": send_slack}


def _json_object(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _clip(text: str) -> str:
    return text if len(text) <= CAUSE_MAX else text[: CAUSE_MAX - 1] + "…"


def _iso_millis(epoch_ms: Any) -> str:
    """EventBridge gives stopDate in epoch milliseconds; the record and lineage use ISO-8601 with `Z`."""
    moment = (datetime.fromtimestamp(epoch_ms / 1000, UTC) if isinstance(epoch_ms, int | float)
              and not isinstance(epoch_ms, bool) else datetime.now(UTC))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
