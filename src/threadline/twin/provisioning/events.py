"""EventBridge rules and their targets."""

from __future__ import annotations

import json
from typing import Any

from .core import Provisioner, handles


@handles("AWS::Events::Rule")
def _rule(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    events = p.client("events")
    name = props.get("Name") or f"{p.stack_name}-{logical_id}"[:64]
    args: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED")}
    if "EventPattern" in props:
        args["EventPattern"] = json.dumps(props["EventPattern"])
    if "ScheduleExpression" in props:
        args["ScheduleExpression"] = props["ScheduleExpression"]
    if "EventBusName" in props:
        args["EventBusName"] = props["EventBusName"]
    arn = events.put_rule(**args)["RuleArn"]
    targets = []
    for target in props.get("Targets", []):
        item = {k: target[k] for k in ("Id", "Arn", "Input", "InputPath", "InputTransformer", "RoleArn",
                                        "RetryPolicy", "DeadLetterConfig") if k in target}
        targets.append(item)
    if targets:
        events.put_targets(Rule=name, Targets=targets, **({"EventBusName": props["EventBusName"]}
                                                          if "EventBusName" in props else {}))
    return name, {"Arn": arn}
