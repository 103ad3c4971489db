"""Lineage events that waited out Neptune in the dead-letter queue, moved back to be written.

SQS's redrive (`StartMessageMoveTask`) moves every message of the lineage
dead-letter queue back to the lineage queue, where the lineage function takes
them as it takes new ones. The same calls work against AWS and the twin.

Each function takes boto3 clients or the matching clients of `clients.py`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .clients import SqsClient
from .rerun import stack_output

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
    queues = SqsClient.of(sqs)
    if not queue_arn and cloudformation is not None:
        queue_arn = stack_output(cloudformation, stack, "LineageDeadLetterQueueArn")
    if queue_arn:
        return queues.queue_url(queue_arn.rsplit(":", 1)[-1]), queue_arn
    prefix = f"{stack}-{DEAD_LETTER_LOGICAL_ID}"
    urls = queues.queue_urls(prefix)
    if len(urls) != 1:
        raise LookupError(f"expected one queue named {prefix}*, found {len(urls)}; pass --queue-arn")
    return urls[0], queues.queue_arn(urls[0])


def waiting(sqs: Any, queue_url: str) -> int:
    return SqsClient.of(sqs).waiting(queue_url)


def redrive(sqs: Any, stack: str = "threadline", queue_arn: str | None = None,
            cloudformation: Any | None = None) -> Redrive:
    """Move the dead letters back to the lineage queue (nothing to do when there are none)."""
    queues = SqsClient.of(sqs)
    url, arn = dead_letter_queue(queues, stack, queue_arn, cloudformation)
    count = queues.waiting(url)
    if count == 0:
        return Redrive(url, arn, 0, None)
    return Redrive(url, arn, count, queues.move_back(arn))
