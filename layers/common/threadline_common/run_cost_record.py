"""A finished run's cost, written into its run record (`cost`) by the lineage function.

Only `run_finished` knows every attempt of a run: the Spot attempts Batch
retried, the job the state machine then sent On-Demand, the analysis on its
fallback queue. The post-processing job, which writes the rest of the record,
runs before the run ends and sees none of the earlier jobs. So the lineage
function prices the run when it records `run_finished` and sets the record's
`cost` map with one conditional UpdateItem: a record that does not exist is
not created, and a redelivered event sets the same value again.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from .cost import run_cost
from .lineage.events import RunFinished

_SERIALIZER = TypeSerializer()


def cost_record(event: RunFinished) -> dict[str, Any]:
    """The `cost` map of a finished run: its priced attempts, with the run's team and status."""
    record = run_cost(event.jobs, event.failures).to_record()
    record["team"] = event.source.get("team") if isinstance(event.source, dict) else None
    record["status"] = event.status
    record["finished_at"] = event.at
    return record


def write_cost(dynamodb: Any, table: str, event: RunFinished) -> dict[str, Any]:
    """Set the run record's `cost`; `dynamodb` is a boto3 DynamoDB client. Raises ClientError as boto3 does."""
    record = cost_record(event)
    dynamodb.update_item(
        TableName=table,
        Key={"run_id": {"S": event.run_id}},
        UpdateExpression="SET #cost = :cost",
        ConditionExpression="attribute_exists(run_id)",
        ExpressionAttributeNames={"#cost": "cost"},
        ExpressionAttributeValues={":cost": _SERIALIZER.serialize(_decimals(record))},
    )
    return record


def _decimals(value: Any) -> Any:
    """Floats as Decimal, the only number type DynamoDB's serializer takes."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {str(k): _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value
