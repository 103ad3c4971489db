"""Update the run record in DynamoDB with one UpdateItem.

Only the attributes named here are set, so whatever else others wrote on the
item (start time, source, execution ARN, ...) stays. Numbers go in as Decimal.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from jobkit.aws import aws_errors

_SERIALIZER = TypeSerializer()


def to_dynamo(value: Any) -> Any:
    """Python values to what the DynamoDB resource layer accepts (floats to Decimal)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"DynamoDB cannot store {value}")
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {str(k): to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dynamo(v) for v in value]
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def update_expression(attributes: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """`SET #a0 = :v0, ...` with every name aliased (so reserved words like `status` work).

    Values come back in DynamoDB's typed wire form ({"N": "1.5"}, {"M": {...}}).
    """
    names, values, assignments = {}, {}, []
    for i, (name, value) in enumerate(attributes.items()):
        names[f"#a{i}"] = name
        values[f":v{i}"] = _SERIALIZER.serialize(to_dynamo(value))
        assignments.append(f"#a{i} = :v{i}")
    return "SET " + ", ".join(assignments), names, values


def update_run(dynamodb: Any, table: str, run_id: str, attributes: dict[str, Any]) -> None:
    """`dynamodb` is a boto3 DynamoDB client."""
    expression, names, values = update_expression(attributes)
    with aws_errors(f"cannot update run {run_id} in table {table}"):
        dynamodb.update_item(
            TableName=table,
            Key={"run_id": {"S": run_id}},
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
