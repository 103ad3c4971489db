"""SNS topics and subscriptions."""

from __future__ import annotations

from typing import Any

from .core import Provisioner, handles


@handles("AWS::SNS::Topic")
def _topic(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("TopicName") or f"{p.stack_name}-{logical_id}"
    attributes = {"KmsMasterKeyId": props["KmsMasterKeyId"]} if "KmsMasterKeyId" in props else {}
    arn = p.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    for subscription in props.get("Subscription", []):
        p.client("sns").subscribe(TopicArn=arn, Protocol=subscription["Protocol"],
                                  Endpoint=subscription["Endpoint"])
    return arn, {"TopicArn": arn, "TopicName": name}


@handles("AWS::SNS::Subscription")
def _subscription(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    arn = p.client("sns").subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"],
                                    Endpoint=props["Endpoint"])["SubscriptionArn"]
    return arn, {}
