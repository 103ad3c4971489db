"""A finished run's right-sizing hints, written into its run record (`rightsizing`) by the lineage function.

The jobs leave one usage record per attempt (and node) under
`runs/<run id>/usage/` of the intermediate bucket; only `run_finished` knows
every attempt and its request. So, as for the run's cost (run_cost_record), the
lineage function reads the records, computes the hints (rightsizing) and sets
the record's `rightsizing` map with one conditional UpdateItem: a record that
does not exist is not created, and a redelivered event sets the same value again.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from .lineage.events import RunFinished
from .rightsizing import Usage, parse_usage, run_sizing

MAX_RECORDS = 1000
_SERIALIZER = TypeSerializer()


def usage_prefix(run_id: str) -> str:
    """Where a run's jobs write their usage records in the intermediate bucket."""
    return f"runs/{run_id}/usage/"


def read_usage(s3: Any, bucket: str, run_id: str) -> tuple[list[Usage], list[str]]:
    """(the run's usage records, what could not be read); `s3` is a boto3 S3 client. Listing errors raise."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=usage_prefix(run_id), MaxKeys=MAX_RECORDS)
    found: list[Usage] = []
    problems: list[str] = []
    for item in listed.get("Contents", []):
        key = item["Key"]
        try:
            usage = parse_usage(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        except Exception as exc:  # one unreadable record leaves the others
            problems.append(f"{key}: {type(exc).__name__}: {exc}")
            continue
        if usage is None:
            problems.append(f"{key}: not a usage record")
        else:
            found.append(usage)
    return found, problems


def rightsizing_record(event: RunFinished, usage: list[Usage]) -> dict[str, Any]:
    """The `rightsizing` map of a finished run: each step's use, request and hint."""
    steps = run_sizing(event.jobs, event.failures, usage)
    return {"finished_at": event.at, "steps": {name: sizing.to_record() for name, sizing in steps.items()}}


def write_rightsizing(dynamodb: Any, s3: Any, table: str, bucket: str, event: RunFinished) -> dict[str, Any]:
    """Read the run's usage records and set its record's `rightsizing`; raises ClientError as boto3 does."""
    usage, problems = read_usage(s3, bucket, event.run_id)
    record = rightsizing_record(event, usage)
    record["unreadable"] = problems[:10]
    dynamodb.update_item(
        TableName=table,
        Key={"run_id": {"S": event.run_id}},
        UpdateExpression="SET #sizing = :sizing",
        ConditionExpression="attribute_exists(run_id)",
        ExpressionAttributeNames={"#sizing": "rightsizing"},
        # DynamoDB takes numbers as Decimal only.
        ExpressionAttributeValues={":sizing": _SERIALIZER.serialize(json.loads(json.dumps(record),
                                                                               parse_float=Decimal))},
    )
    return record
