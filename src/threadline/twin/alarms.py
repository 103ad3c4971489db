"""CloudWatch alarms on SQS queue metrics, evaluated by the twin.

moto stores alarms but never evaluates them, and nothing publishes SQS metrics.
The twin reads the queue attribute behind each supported SQS metric every
`interval` seconds, compares it with the alarm's threshold and, when the state
changes, sets the alarm's state and publishes the alarm message to its actions'
SNS topics, as CloudWatch does (the Slack function is subscribed to the alarm
topic). Alarms on other metrics stay as moto keeps them.

Said out loud: one reading stands for the alarm's whole period (CloudWatch
would wait for `Period` x `EvaluationPeriods` seconds of datapoints).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


@dataclass
class SqsAlarmEvaluator:
    session: Any
    endpoint_url: str
    region: str = "us-east-1"
    interval: float = 1.0
    fired: list[dict[str, Any]] = field(default_factory=list)  # alarm messages published
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url, region_name=self.region)

    def start(self) -> SqsAlarmEvaluator:
        self._thread = threading.Thread(target=self._loop, name="sqs-alarms", daemon=True)
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
        """One pass over the alarms on SQS metrics."""
        for alarm in cloudwatch.describe_alarms().get("MetricAlarms", []):
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

    def _change(self, cloudwatch: Any, sns: Any, alarm: dict[str, Any], state: str, value: int) -> None:
        reason = (f"Threshold Crossed: 1 datapoint [{float(value)}] was "
                  f"{'' if state == 'ALARM' else 'not '}{alarm['ComparisonOperator']} ({alarm['Threshold']}).")
        cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason)
        old = alarm.get("StateValue") or "INSUFFICIENT_DATA"
        actions = alarm.get("AlarmActions", []) if state == "ALARM" else alarm.get("OKActions", [])
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
