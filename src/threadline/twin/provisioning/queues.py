"""SQS queues."""

from __future__ import annotations

import json
from typing import Any

from .core import Provisioner, handles


@handles("AWS::SQS::Queue")
def _queue(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("QueueName") or f"{p.stack_name}-{logical_id}"
    attributes = {k: (json.dumps(v) if isinstance(v, dict) else str(v)) for k, v in props.items()
                  if k in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy",
                           "KmsMasterKeyId", "SqsManagedSseEnabled", "DelaySeconds")}
    url = p.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = p.arn("sqs", name)
    return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}
