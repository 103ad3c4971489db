"""CloudWatch alarms and dashboards, CloudWatch Logs log groups."""

from __future__ import annotations

import json
from typing import Any

from .core import Provisioner, handles


@handles("AWS::Logs::LogGroup")
def _log_group(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("LogGroupName") or f"/threadline/{p.stack_name}/{logical_id}"
    p.client("logs").create_log_group(logGroupName=name)
    if "RetentionInDays" in props:
        p.client("logs").put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    return name, {"Arn": p.arn("logs", f"log-group:{name}:*")}


@handles("AWS::CloudWatch::Alarm")
def _alarm(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("AlarmName") or f"{p.stack_name}-{logical_id}"
    keys = ("AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions", "InsufficientDataActions",
            "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit",
            "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
            "TreatMissingData", "Metrics")
    args = {k: props[k] for k in keys if k in props}
    for number in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if number in args:
            args[number] = int(args[number])
    if "Threshold" in args:
        args["Threshold"] = float(args["Threshold"])
    p.client("cloudwatch").put_metric_alarm(AlarmName=name, **args)
    return name, {"Arn": p.arn("cloudwatch", f"alarm:{name}")}


@handles("AWS::CloudWatch::Dashboard")
def _dashboard(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("DashboardName") or f"{p.stack_name}-{logical_id}"
    body = props["DashboardBody"]
    p.client("cloudwatch").put_dashboard(DashboardName=name,
                                         DashboardBody=body if isinstance(body, str) else json.dumps(body))
    return name, {}
