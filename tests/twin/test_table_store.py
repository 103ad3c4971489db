"""The run table's saved items are what a Scan answers, every attribute type included, and come back as they were."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
from moto import mock_aws

from threadline.twin.server import ACCOUNT_ID, REGION
from threadline.twin.table_store import TableStore

KEY = {"AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
       "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}
ITEM = {"id": {"S": "run-1"}, "n": {"N": "1.50"}, "b": {"B": b"\x00\xff"}, "t": {"BOOL": False},
        "m": {"M": {"x": {"L": [{"S": "y"}, {"N": "2"}, {"B": b"\x01"}]}, "z": {"NULL": True}}},
        "ss": {"SS": ["p", "q"]}, "ns": {"NS": ["1", "2"]}}


def _as_json(value: Any) -> Any:
    """botocore's parsed item as typed JSON: binary values as base64 text, as the wire carries them."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {key: _as_json(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_as_json(inner) for inner in value]
    return value


def test_saved_items_are_what_a_scan_answers_and_are_restored_as_they_were(tmp_path):
    path = tmp_path / "dynamodb.json"
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(TableName="runs", **KEY)
        dynamodb.put_item(TableName="runs", Item=ITEM)
        dynamodb.update_item(TableName="runs", Key={"id": {"S": "run-1"}}, UpdateExpression="SET s = :s",
                             ExpressionAttributeValues={":s": {"S": "SUCCEEDED"}})
        dynamodb.put_item(TableName="runs", Item={"id": {"S": "run-2"}})
        store = TableStore(path, dynamodb, ACCOUNT_ID, REGION)
        store.save()
        scanned = [_as_json(item) for item in dynamodb.scan(TableName="runs")["Items"]]
        assert json.loads(path.read_text(encoding="utf-8")) == {"tables": {"runs": scanned}}

        dynamodb.delete_table(TableName="runs")
        dynamodb.create_table(TableName="runs", **KEY)
        problems: list[str] = []
        assert store.restore(problems) == 2 and problems == []
        restored = dynamodb.get_item(TableName="runs", Key={"id": {"S": "run-1"}})["Item"]
        assert restored == {**ITEM, "s": {"S": "SUCCEEDED"}}
