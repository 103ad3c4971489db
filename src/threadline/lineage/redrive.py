"""Lineage events that waited out Neptune in the dead-letter queue, moved back to be written.

SQS's redrive (`StartMessageMoveTask`) moves every message of the lineage
dead-letter queue back to the lineage queue, where the lineage function takes
them as it takes new ones. The same call works against AWS and the twin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

DEAD_LETTER_LOGICAL_ID = "LineageDeadLetterQueue"


@dataclass(frozen=True)
class Redrive:
    queue_url: str
    queue_arn: str
    messages: int
    task_handle: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dead_letter_queue(sqs: Any, stack: str, queue_arn: str | None = None,
                      cloudformation: Any | None = None) -> tuple[str, str]:
    """(URL, ARN) of the stack's lineage dead-letter queue.

    The stack's `LineageDeadLetterQueueArn` output names it; without a stack to ask
    (the twin), the name does: CloudFormation calls it
    `<stack>-LineageDeadLetterQueue-<suffix>` and the twin `<stack>-LineageDeadLetterQueue`.
    """
    if not queue_arn and cloudformation is not None:
        from .rerun import stack_output

        queue_arn = stack_output(cloudformation, stack, "LineageDeadLetterQueueArn")
    if queue_arn:
        url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
        return url, queue_arn
    prefix = f"{stack}-{DEAD_LETTER_LOGICAL_ID}"
    urls = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    if len(urls) != 1:
        raise LookupError(f"expected one queue named {prefix}*, found {len(urls)}; pass --queue-arn")
    arn = sqs.get_queue_attributes(QueueUrl=urls[0], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return urls[0], arn


def waiting(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(value) for value in attributes["Attributes"].values())


def redrive(sqs: Any, stack: str = "threadline", queue_arn: str | None = None,
            cloudformation: Any | None = None) -> Redrive:
    """Move the dead letters back to the lineage queue (nothing to do when there are none)."""
    url, arn = dead_letter_queue(sqs, stack, queue_arn, cloudformation)
    count = waiting(sqs, url)
    if count == 0:
        return Redrive(url, arn, 0, None)
    handle = sqs.start_message_move_task(SourceArn=arn)["TaskHandle"]
    return Redrive(url, arn, count, handle)
