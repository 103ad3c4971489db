"""CloudWatch alarms, evaluated by the twin.

moto stores alarms but never evaluates them. Every `interval` seconds the twin
judges each alarm and, when its state changes, sets the alarm's state and
publishes the alarm message to the SNS topics of that state's actions, as
CloudWatch does (the Slack function is subscribed to the alarm topic):

- `AWS/SQS` queue-depth alarms: nothing publishes SQS metrics, so the twin
  reads the queue attribute behind the metric; one reading stands for the
  alarm's whole period (CloudWatch would wait for `Period` x
  `EvaluationPeriods` seconds of datapoints). SQS metrics without such an
  attribute stay as moto keeps them.
- alarms on any other namespace: judged from the datapoints the twin holds
  (what the functions sent with PutMetricData), read with GetMetricStatistics
  over the alarm's last `EvaluationPeriods` periods, each period lasting
  `Period` x `time_scale` seconds (1/60: a 300 s period is 5 s, 900 s is 15 s,
  never under 1 s), with `DatapointsToAlarm` and `TreatMissingData` applied as
  CloudWatch applies them. The twin publishes no AWS/Lambda or AWS/States
  metrics, so alarms on those read missing data. Alarms on metric math or
  percentiles stay as moto keeps them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

# SQS metric -> the queue attribute that answers it.
SQS_METRIC_ATTRIBUTES = {
    "ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed": "ApproximateNumberOfMessagesDelayed",
}
_COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
TIME_SCALE = 1 / 60  # a metric alarm's Period of 60 s lasts 1 s in the twin
_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
_TRIGGER = "Threshold Crossed"


@dataclass
class AlarmEvaluator:
    session: Any
    endpoint_url: str
    region: str = "us-east-1"
    interval: float = 1.0
    time_scale: float = TIME_SCALE  # how long a metric alarm's period lasts here, per second of Period
    fired: list[dict[str, Any]] = field(default_factory=list)  # alarm messages published
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url, region_name=self.region)

    def start(self) -> AlarmEvaluator:
        self._thread = threading.Thread(target=self._loop, name="alarms", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)

    def _loop(self) -> None:
        cloudwatch, sqs, sns = self.client("cloudwatch"), self.client("sqs"), self.client("sns")
        while not self._stop.wait(self.interval):
            try:
                self.evaluate(cloudwatch, sqs, sns)
            except (ClientError, BotoCoreError):
                if self._stop.is_set():
                    return

    def evaluate(self, cloudwatch: Any, sqs: Any, sns: Any) -> None:
        """One pass over the alarms: SQS metrics from their queues, the others from their datapoints."""
        alarms = [alarm for page in cloudwatch.get_paginator("describe_alarms").paginate()
                  for alarm in page.get("MetricAlarms", [])]
        self._evaluate_sqs(cloudwatch, sqs, sns, [a for a in alarms if a.get("Namespace") == "AWS/SQS"])
        self._evaluate_metrics(cloudwatch, sns, [a for a in alarms if a.get("Namespace") not in (None, "AWS/SQS")])

    def _evaluate_sqs(self, cloudwatch: Any, sqs: Any, sns: Any, alarms: list[dict[str, Any]]) -> None:
        for alarm in alarms:
            attribute = SQS_METRIC_ATTRIBUTES.get(alarm.get("MetricName", ""))
            queue = next((d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == "QueueName"), None)
            compare = _COMPARE.get(alarm.get("ComparisonOperator", ""))
            if alarm.get("Namespace") != "AWS/SQS" or attribute is None or queue is None or compare is None:
                continue
            try:
                url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            except ClientError:
                continue
            value = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[attribute])["Attributes"][attribute])
            state = "ALARM" if compare(value, float(alarm["Threshold"])) else "OK"
            if state != alarm.get("StateValue"):
                self._change(cloudwatch, sns, alarm, state, value)

    def _evaluate_metrics(self, cloudwatch: Any, sns: Any, alarms: list[dict[str, Any]]) -> None:
        if not alarms:
            return
        now = datetime.now(UTC)
        published = {(m["Namespace"], m["MetricName"]) for page in cloudwatch.get_paginator("list_metrics").paginate()
                     for m in page.get("Metrics", [])}
        for alarm in alarms:
            statistic = alarm.get("Statistic")
            compare = _COMPARE.get(alarm.get("ComparisonOperator", ""))
            if statistic not in _STATISTICS or compare is None or not alarm.get("MetricName"):
                continue  # metric math, percentiles, anomaly bands: stored, not evaluated
            has_data = (alarm["Namespace"], alarm["MetricName"]) in published
            values: list[float | None] = self._period_values(cloudwatch, alarm, statistic, now) if has_data \
                else [None] * max(1, int(alarm.get("EvaluationPeriods") or 1))
            judged = judge(alarm, values, compare)
            if judged is not None and judged[0] != alarm.get("StateValue"):
                self._set(cloudwatch, sns, alarm, judged[0], judged[1])

    def _period_values(self, cloudwatch: Any, alarm: dict[str, Any], statistic: str,
                       now: datetime) -> list[float | None]:
        """The statistic of each of the alarm's last EvaluationPeriods (scaled) periods, newest first."""
        seconds = max(1, round(int(alarm.get("Period") or 60) * self.time_scale))
        # moto drops the fraction of a second from StartTime and EndTime: end on a whole second.
        end = now.replace(microsecond=0)
        values: list[float | None] = []
        for index in range(max(1, int(alarm.get("EvaluationPeriods") or 1))):
            stop = end - timedelta(seconds=seconds * index)
            points = cloudwatch.get_metric_statistics(
                Namespace=alarm["Namespace"], MetricName=alarm["MetricName"],
                Dimensions=alarm.get("Dimensions", []), StartTime=stop - timedelta(seconds=seconds), EndTime=stop,
                Period=seconds, Statistics=[statistic], **({"Unit": alarm["Unit"]} if alarm.get("Unit") else {}),
            ).get("Datapoints", [])
            values.append(_combine(statistic, points))
        return values

    def _change(self, cloudwatch: Any, sns: Any, alarm: dict[str, Any], state: str, value: int) -> None:
        reason = (f"{_TRIGGER}: 1 datapoint [{float(value)}] was "
                  f"{'' if state == 'ALARM' else 'not '}{alarm['ComparisonOperator']} ({alarm['Threshold']}).")
        self._set(cloudwatch, sns, alarm, state, reason)

    def _set(self, cloudwatch: Any, sns: Any, alarm: dict[str, Any], state: str, reason: str) -> None:
        cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason)
        old = alarm.get("StateValue") or "INSUFFICIENT_DATA"
        actions = {"ALARM": alarm.get("AlarmActions", []), "OK": alarm.get("OKActions", []),
                   "INSUFFICIENT_DATA": alarm.get("InsufficientDataActions", [])}[state]
        now = datetime.now(UTC)
        message = {
            "AlarmName": alarm["AlarmName"], "AlarmDescription": alarm.get("AlarmDescription"),
            "AWSAccountId": alarm["AlarmArn"].split(":")[4], "NewStateValue": state, "NewStateReason": reason,
            "StateChangeTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000",
            "Region": self.region, "AlarmArn": alarm["AlarmArn"], "OldStateValue": old,
            "AlarmActions": alarm.get("AlarmActions", []), "OKActions": alarm.get("OKActions", []),
            "Trigger": {"MetricName": alarm["MetricName"], "Namespace": alarm["Namespace"],
                        "Statistic": alarm.get("Statistic"), "Dimensions": alarm.get("Dimensions", []),
                        "Period": alarm.get("Period"), "EvaluationPeriods": alarm.get("EvaluationPeriods"),
                        "ComparisonOperator": alarm["ComparisonOperator"], "Threshold": alarm["Threshold"]},
        }
        for topic in actions:
            if ":sns:" in topic:
                sns.publish(TopicArn=topic, Subject=f'{state}: "{alarm["AlarmName"]}" in {self.region}'[:100],
                            Message=json.dumps(message))
        self.fired.append(message)


SqsAlarmEvaluator = AlarmEvaluator  # the name from when only SQS alarms were evaluated


def judge(alarm: dict[str, Any], values: list[float | None],
          compare: Any) -> tuple[str, str] | None:
    """CloudWatch's verdict on the newest-first period values: (state, reason), or None to keep the state.

    `DatapointsToAlarm` (M, default EvaluationPeriods) of the periods must
    breach for ALARM. Missing periods follow `TreatMissingData`: `notBreaching`
    counts them as good, `breaching` as bad, `ignore` keeps the state when all
    are missing, and `missing` (the default) then means INSUFFICIENT_DATA.
    """
    treat = alarm.get("TreatMissingData") or "missing"
    threshold = float(alarm["Threshold"])
    needed = int(alarm.get("DatapointsToAlarm") or len(values))
    present = [v for v in values if v is not None]
    missing = len(values) - len(present)
    breaching = sum(1 for v in present if compare(v, threshold)) + (missing if treat == "breaching" else 0)
    if not present and treat in ("missing", "ignore"):
        if treat == "ignore":
            return None
        return "INSUFFICIENT_DATA", (f"Insufficient Data: {len(values)} datapoint"
                                      f"{'s were' if len(values) != 1 else ' was'} unknown.")
    state = "ALARM" if breaching >= needed else "OK"
    shown = ", ".join("missing" if v is None else f"{v:g}" for v in values)
    verb = "was" if state == "ALARM" else "was not"
    treated = "" if not missing or treat in ("missing", "ignore") else \
        f" {missing} missing datapoint{'s were' if missing != 1 else ' was'} treated as " \
        f"[{'Breaching' if treat == 'breaching' else 'NonBreaching'}]."
    return state, (f"{_TRIGGER}: {breaching} out of the last {len(values)} datapoints [{shown}] {verb} "
                   f"{alarm['ComparisonOperator']} ({threshold:g}) (minimum {needed} datapoint"
                   f"{'s' if needed != 1 else ''} for ALARM).{treated}")


def _combine(statistic: str, points: list[dict[str, Any]]) -> float | None:
    """One value for the statistic over the datapoints GetMetricStatistics gave for one period."""
    values = [float(p[statistic]) for p in points if p.get(statistic) is not None]
    if not values:
        return None
    if statistic in ("Sum", "SampleCount"):
        return sum(values)
    if statistic == "Maximum":
        return max(values)
    if statistic == "Minimum":
        return min(values)
    counts = [float(p.get("SampleCount") or 1) for p in points if p.get(statistic) is not None]
    return sum(v * c for v, c in zip(values, counts, strict=True)) / sum(counts)
