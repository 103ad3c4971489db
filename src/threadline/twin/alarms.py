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
  (what the functions sent with PutMetricData), read as GetMetricStatistics
  reads them over the alarm's last `EvaluationPeriods` periods, each period lasting
  `Period` x `time_scale` seconds (1/60: a 300 s period is 5 s, 900 s is 15 s,
  never under 1 s), with `DatapointsToAlarm` and `TreatMissingData` applied as
  CloudWatch applies them. The twin publishes no AWS/Lambda or AWS/States
  metrics, so alarms on those read missing data (as do alarms on the AWS/S3
  bucket-size metrics moto makes up on request). Alarms on metric math or
  percentiles stay as moto keeps them.

Each pass reads the alarms, the queue depths and the datapoints from moto's
models in the twin's process, as moto would answer DescribeAlarms,
GetQueueAttributes and GetMetricStatistics would (a pass through botocore
cost about 36 ms of CPU a second, most of it serialising and parsing, and
moto sizing every bucket for each GetMetricStatistics). The datapoints are
indexed by metric and time as they arrive, so a pass reads only its windows.
Changes still go through the API (SetAlarmState, SNS Publish), as CloudWatch's
would, so that moto's side effects stay.
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

# SQS metric -> the queue attribute that answers it, and moto's property for that attribute.
SQS_METRIC_ATTRIBUTES = {
    "ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed": "ApproximateNumberOfMessagesDelayed",
}
_QUEUE_PROPERTIES = {
    "ApproximateNumberOfMessages": "approximate_number_of_messages",
    "ApproximateNumberOfMessagesNotVisible": "approximate_number_of_messages_not_visible",
    "ApproximateNumberOfMessagesDelayed": "approximate_number_of_messages_delayed",
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


class Datapoints:
    """moto's PutMetricData datapoints by (namespace, metric), in time order, read up to where moto has them.

    moto only ever appends to its list, so each pass indexes just the new ones;
    a backend that was replaced (or shrank) is indexed afresh.
    """

    def __init__(self) -> None:
        self._source: list[Any] | None = None
        self._seen = 0
        self._order = count()  # ties in time keep arrival order and never compare datums
        self._by_metric: dict[tuple[str, str], list[tuple[datetime, int, Any]]] = {}

    def update(self, data: list[Any]) -> None:
        if data is not self._source or len(data) < self._seen:
            self._source, self._seen, self._by_metric = data, 0, {}
        fresh = data[self._seen:]
        self._seen += len(fresh)
        for datum in fresh:
            insort(self._by_metric.setdefault((datum.namespace, datum.name), []),
                   (_aware(datum.timestamp), next(self._order), datum))

    def has(self, namespace: str, metric: str) -> bool:
        return bool(self._by_metric.get((namespace, metric)))

    def between(self, namespace: str, metric: str, start: datetime, end: datetime) -> list[Any]:
        """The datums of the metric with `start` <= timestamp < `end`."""
        points = self._by_metric.get((namespace, metric), [])
        return [datum for _, _, datum in points[bisect_left(points, (start,)):bisect_left(points, (end,))]]


@dataclass
class AlarmEvaluator:
    session: Any
    endpoint_url: str
    region: str = "us-east-1"
    interval: float = 1.0
    time_scale: float = TIME_SCALE  # how long a metric alarm's period lasts here, per second of Period
    account_id: str | None = None  # whose moto backends hold the alarms, queues, datapoints; None: moto's default
    fired: list[dict[str, Any]] = field(default_factory=list)  # alarm messages published
    _datapoints: Datapoints = field(default_factory=Datapoints)
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
        cloudwatch, sns = self.client("cloudwatch"), self.client("sns")
        while not self._stop.wait(self.interval):
            try:
                self.evaluate(cloudwatch, sns)
            except (ClientError, BotoCoreError):
                if self._stop.is_set():
                    return

    def evaluate(self, cloudwatch: Any, sns: Any) -> None:
        """One pass over the alarms: SQS metrics from their queues, the others from their datapoints."""
        from moto.cloudwatch.models import cloudwatch_backends

        backend = cloudwatch_backends[self._account()][self.region]
        alarms = [described(alarm) for alarm in list(backend.alarms.values()) if alarm.rule is None]
        self._evaluate_sqs(cloudwatch, sns, [a for a in alarms if a.get("Namespace") == "AWS/SQS"])
        metric_alarms = [a for a in alarms if a.get("Namespace") not in (None, "AWS/SQS")]
        if metric_alarms:
            self._datapoints.update(backend.metric_data)
            self._evaluate_metrics(cloudwatch, sns, metric_alarms)

    def _account(self) -> str:
        from moto.core import DEFAULT_ACCOUNT_ID

        return self.account_id or DEFAULT_ACCOUNT_ID

    def _evaluate_sqs(self, cloudwatch: Any, sns: Any, alarms: list[dict[str, Any]]) -> None:
        from moto.sqs.models import sqs_backends

        queues = sqs_backends[self._account()][self.region].queues
        for alarm in alarms:
            attribute = SQS_METRIC_ATTRIBUTES.get(alarm.get("MetricName", ""))
            name = next((d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == "QueueName"), None)
            compare = _COMPARE.get(alarm.get("ComparisonOperator", ""))
            queue = queues.get(name) if name is not None else None
            if attribute is None or queue is None or compare is None:
                continue
            value = int(getattr(queue, _QUEUE_PROPERTIES[attribute]))
            state = "ALARM" if compare(value, float(alarm["Threshold"])) else "OK"
            if state != alarm.get("StateValue"):
                self._change(cloudwatch, sns, alarm, state, value)

    def _evaluate_metrics(self, cloudwatch: Any, sns: Any, alarms: list[dict[str, Any]]) -> None:
        now = datetime.now(UTC)
        for alarm in alarms:
            statistic = alarm.get("Statistic")
            compare = _COMPARE.get(alarm.get("ComparisonOperator", ""))
            if statistic not in _STATISTICS or compare is None or not alarm.get("MetricName"):
                continue  # metric math, percentiles, anomaly bands: stored, not evaluated
            values: list[float | None] = self._period_values(alarm, statistic, now) \
                if self._datapoints.has(alarm["Namespace"], alarm["MetricName"]) \
                else [None] * max(1, int(alarm.get("EvaluationPeriods") or 1))
            judged = judge(alarm, values, compare)
            if judged is not None and judged[0] != alarm.get("StateValue"):
                self._set(cloudwatch, sns, alarm, judged[0], judged[1])

    def _period_values(self, alarm: dict[str, Any], statistic: str, now: datetime) -> list[float | None]:
        """The statistic of each of the alarm's last EvaluationPeriods (scaled) periods, newest first."""
        seconds = max(1, round(int(alarm.get("Period") or 60) * self.time_scale))
        end = now.replace(microsecond=0)  # periods end on a whole second, as moto's GetMetricStatistics takes them
        values: list[float | None] = []
        for index in range(max(1, int(alarm.get("EvaluationPeriods") or 1))):
            stop = end - timedelta(seconds=seconds * index)
            points = self._datapoints.between(alarm["Namespace"], alarm["MetricName"],
                                              stop - timedelta(seconds=seconds), stop)
            values.append(period_statistic(points, statistic, alarm.get("Dimensions", []), alarm.get("Unit")))
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


def period_statistic(points: list[Any], statistic: str, dimensions: list[dict[str, str]],
                     unit: str | None) -> float | None:
    """The statistic over one period's datums, filtered and computed as moto's GetMetricStatistics does."""
    from moto.cloudwatch.models import Statistics

    chosen = [p for p in points if (not unit or p.unit == unit)
              and (not dimensions or p.filter(None, None, dimensions))]
    if not chosen:
        return None
    period = Statistics([statistic], chosen[0].timestamp)
    period.metric_data = chosen
    value = period.get_statistics_for_type(statistic)
    return None if value is None else float(value)


def described(alarm: Any) -> dict[str, Any]:
    """A moto metric alarm as DescribeAlarms lists it (the fields the evaluator reads; absent ones left out)."""
    fields = {
        "AlarmName": alarm.name, "AlarmArn": alarm.alarm_arn, "AlarmDescription": alarm.description,
        "Namespace": alarm.namespace, "MetricName": alarm.metric_name,
        "Dimensions": [{"Name": d.name, "Value": d.value} for d in alarm.dimensions],
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": None if alarm.threshold is None else float(alarm.threshold),
        "StateValue": alarm.state_value, "Statistic": alarm.statistic,
        "EvaluationPeriods": _integer(alarm.evaluation_periods),
        "DatapointsToAlarm": _integer(alarm.datapoints_to_alarm), "Period": _integer(alarm.period),
        "TreatMissingData": alarm.treat_missing_data, "Unit": alarm.unit, "AlarmActions": alarm.alarm_actions,
        "OKActions": alarm.ok_actions, "InsufficientDataActions": alarm.insufficient_data_actions,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


def _aware(moment: datetime) -> datetime:
    """moto keeps a datum's time naive (UTC) when PutMetricData gave none, aware when it gave one."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
