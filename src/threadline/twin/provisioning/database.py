"""DynamoDB tables."""

from __future__ import annotations

from typing import Any

from .core import Provisioner, handles


@handles("AWS::DynamoDB::Table")
def _table(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    ddb = p.client("dynamodb")
    name = p.physical_name(logical_id, props, "TableName")
    args: dict[str, Any] = {"TableName": name, "KeySchema": props["KeySchema"],
                            "AttributeDefinitions": props["AttributeDefinitions"],
                            "BillingMode": props.get("BillingMode", "PROVISIONED")}
    if args["BillingMode"] == "PROVISIONED":
        args["ProvisionedThroughput"] = {k: int(v) for k, v in props["ProvisionedThroughput"].items()}
    if "GlobalSecondaryIndexes" in props:
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("SSESpecification", {}).get("SSEEnabled"):
        sse = {"Enabled": True}
        if props["SSESpecification"].get("SSEType"):
            sse["SSEType"] = props["SSESpecification"]["SSEType"]
        if props["SSESpecification"].get("KMSMasterKeyId"):
            sse["KMSMasterKeyId"] = props["SSESpecification"]["KMSMasterKeyId"]
        args["SSESpecification"] = sse
    table = ddb.create_table(**args)["TableDescription"]
    return name, {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn", "")}
