"""The alarm evaluator reads moto's models as the API would answer, and changes alarms through the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from threadline.twin.alarms import AlarmEvaluator, Datapoints, described, period_statistic
from threadline.twin.server import ACCOUNT_ID, REGION

QUEUE_ALARM = {
    "AlarmName": "dead-letters", "AlarmDescription": "lineage events dead-lettered", "Namespace": "AWS/SQS",
    "MetricName": "ApproximateNumberOfMessagesVisible", "Dimensions": [{"Name": "QueueName", "Value": "dlq"}],
    "Statistic": "Maximum", "Period": 60, "EvaluationPeriods": 1, "Threshold": 0.0,
    "ComparisonOperator": "GreaterThanThreshold",
}
METRIC_ALARM = {
    "AlarmName": "job-failures", "Namespace": "threadline/Batch", "MetricName": "JobFailures",
    "Dimensions": [{"Name": "JobDefinition", "Value": "analysis"}], "Statistic": "Sum", "Period": 60,
    "EvaluationPeriods": 5, "DatapointsToAlarm": 1, "Threshold": 2.0, "Unit": "Count",
    "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
}
MATH_ALARM = {
    "AlarmName": "error-rate", "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold",
    "Metrics": [{"Id": "e", "Expression": "m / 2", "ReturnData": True},
                {"Id": "m", "ReturnData": False, "MetricStat": {
                    "Metric": {"Namespace": "threadline/Batch", "MetricName": "JobFailures"},
                    "Period": 60, "Stat": "Sum"}}],
}


@pytest.fixture
def aws() -> Any:
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def _evaluator(session: Any) -> AlarmEvaluator:
    return AlarmEvaluator(session, endpoint_url=None, region=REGION, account_id=ACCOUNT_ID)  # moto mocks the API


def _topic_with_inbox(session: Any) -> tuple[str, str]:
    """An SNS topic and the URL of an SQS queue subscribed to it (raw delivery), to read what was published."""
    sns, sqs = session.client("sns"), session.client("sqs")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return topic, inbox


def _published(session: Any, inbox: str) -> list[dict[str, Any]]:
    messages = session.client("sqs").receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_the_alarms_read_from_moto_are_what_describe_alarms_lists(aws):
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(**QUEUE_ALARM, AlarmActions=["arn:aws:sns:us-east-1:123456789012:a"])
    cloudwatch.put_metric_alarm(**METRIC_ALARM, OKActions=["arn:aws:sns:us-east-1:123456789012:b"],
                                InsufficientDataActions=["arn:aws:sns:us-east-1:123456789012:c"])
    cloudwatch.put_metric_alarm(**MATH_ALARM)
    cloudwatch.set_alarm_state(AlarmName="job-failures", StateValue="ALARM", StateReason="test")
    from moto.cloudwatch.models import cloudwatch_backends

    ours = {view["AlarmName"]: view for alarm in cloudwatch_backends[ACCOUNT_ID][REGION].alarms.values()
            if alarm.rule is None for view in [described(alarm)]}
    listed = {alarm["AlarmName"]: alarm for alarm in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert ours.keys() == listed.keys() == {"dead-letters", "job-failures", "error-rate"}
    for name, view in ours.items():
        assert view == {key: listed[name][key] for key in view}, name
        assert view.get("Namespace") == listed[name].get("Namespace")  # None for metric math in both
    assert ours["job-failures"]["StateValue"] == "ALARM"


def test_each_period_statistic_is_what_get_metric_statistics_answers(aws):
    cloudwatch = aws.client("cloudwatch")
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    analysis, other = [{"Name": "JobDefinition", "Value": "analysis"}], [{"Name": "JobDefinition", "Value": "post"}]
    for second, value, dimensions, unit in [(0, 1.0, analysis, "Count"), (0.5, 4.0, analysis, "Count"),
                                            (1, 2.0, analysis, "Seconds"), (2, 8.0, other, "Count"),
                                            (2.9, 3.0, analysis, "Count"), (4, 5.0, [], "Count")]:
        cloudwatch.put_metric_data(Namespace="threadline/Batch", MetricData=[{
            "MetricName": "JobFailures", "Value": value, "Dimensions": dimensions, "Unit": unit,
            "Timestamp": base + timedelta(seconds=second)}])
    cloudwatch.put_metric_data(Namespace="threadline/Batch", MetricData=[{
        "MetricName": "JobFailures", "Dimensions": analysis, "Unit": "Count", "Timestamp": base + timedelta(seconds=3),
        "StatisticValues": {"SampleCount": 3, "Sum": 9, "Minimum": 1, "Maximum": 6}}])
    from moto.cloudwatch.models import cloudwatch_backends

    datapoints = Datapoints()
    datapoints.update(cloudwatch_backends[ACCOUNT_ID][REGION].metric_data)
    compared = 0
    for statistic in ("SampleCount", "Average", "Sum", "Minimum", "Maximum"):
        for dimensions, unit in [(analysis, "Count"), (analysis, None), ([], None), (other, "Count")]:
            for start_s, seconds in [(0, 1), (0, 3), (1, 2), (3, 2), (5, 1), (0, 5)]:
                start = base + timedelta(seconds=start_s)
                end = start + timedelta(seconds=seconds)
                answered = cloudwatch.get_metric_statistics(
                    Namespace="threadline/Batch", MetricName="JobFailures", Dimensions=dimensions,
                    StartTime=start, EndTime=end, Period=seconds, Statistics=[statistic],
                    **({"Unit": unit} if unit else {}))["Datapoints"]
                assert len(answered) <= 1
                points = datapoints.between("threadline/Batch", "JobFailures", start, end)
                ours = period_statistic(points, statistic, dimensions, unit)
                assert ours == (answered[0][statistic] if answered else None), (statistic, dimensions, unit, start_s)
                compared += ours is not None
    assert compared > 40  # most windows hold datapoints: the comparison is not of Nones


def test_datapoints_index_only_what_is_new_and_start_over_for_another_backend():
    class Datum:
        def __init__(self, second: int) -> None:
            self.namespace, self.name = "n", "m"
            self.timestamp = datetime(2026, 1, 1, 0, 0, second)  # naive, as moto keeps its own times

    data = [Datum(5), Datum(1)]
    datapoints = Datapoints()
    datapoints.update(data)
    data.append(Datum(3))
    datapoints.update(data)
    window = datapoints.between("n", "m", datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC),
                                datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC))
    assert [d.timestamp.second for d in window] == [1, 3]
    datapoints.update([Datum(2)])  # a new backend's list
    assert not datapoints.has("n", "x")
    assert [d.timestamp.second for d in datapoints.between("n", "m", datetime(2026, 1, 1, tzinfo=UTC),
                                                          datetime(2026, 1, 2, tzinfo=UTC))] == [2]


def test_a_queue_alarm_changes_state_through_the_api_and_publishes_once(aws):
    cloudwatch, sqs = aws.client("cloudwatch"), aws.client("sqs")
    topic, inbox = _topic_with_inbox(aws)
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    cloudwatch.put_metric_alarm(**QUEUE_ALARM, AlarmActions=[topic], OKActions=[topic])
    evaluator = _evaluator(aws)
    sns = aws.client("sns")

    evaluator.evaluate(cloudwatch, sns)
    assert evaluator.fired == [] and _published(aws, inbox) == []  # OK already: nothing to say
    sqs.send_message(QueueUrl=dlq, MessageBody="lost")
    evaluator.evaluate(cloudwatch, sns)
    evaluator.evaluate(cloudwatch, sns)
    [alarm] = cloudwatch.describe_alarms(AlarmNames=["dead-letters"])["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"] == "Threshold Crossed: 1 datapoint [1.0] was GreaterThanThreshold (0.0)."
    [message] = _published(aws, inbox)
    assert message["NewStateValue"] == "ALARM" and message["OldStateValue"] == "OK"
    assert message["AlarmDescription"] == "lineage events dead-lettered" and message["AWSAccountId"] == ACCOUNT_ID
    assert message["Trigger"]["Dimensions"] == QUEUE_ALARM["Dimensions"] and evaluator.fired == [message]

    sqs.purge_queue(QueueUrl=dlq)
    evaluator.evaluate(cloudwatch, sns)
    assert [m["NewStateValue"] for m in evaluator.fired] == ["ALARM", "OK"]


def test_a_metric_alarm_judges_its_scaled_periods(aws):
    cloudwatch = aws.client("cloudwatch")
    topic, inbox = _topic_with_inbox(aws)
    cloudwatch.put_metric_alarm(**METRIC_ALARM, AlarmActions=[topic])
    evaluator = _evaluator(aws)
    sns = aws.client("sns")

    evaluator.evaluate(cloudwatch, sns)  # no data, notBreaching: OK, as it was
    assert evaluator.fired == []
    failed = datetime.now(UTC) - timedelta(seconds=2)  # inside the last five 1-second periods
    cloudwatch.put_metric_data(Namespace="threadline/Batch", MetricData=[
        {"MetricName": "JobFailures", "Value": 1.0, "Unit": "Count", "Timestamp": failed,
         "Dimensions": METRIC_ALARM["Dimensions"]} for _ in range(3)])
    cloudwatch.put_metric_data(Namespace="threadline/Batch", MetricData=[  # another definition's: not counted
        {"MetricName": "JobFailures", "Value": 9.0, "Unit": "Count", "Timestamp": failed,
         "Dimensions": [{"Name": "JobDefinition", "Value": "post"}]}])
    evaluator.evaluate(cloudwatch, sns)
    [alarm] = cloudwatch.describe_alarms(AlarmNames=["job-failures"])["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 out of the last 5 datapoints [")
    assert " 3," in alarm["StateReason"] + "," and "9" not in alarm["StateReason"]
    [message] = _published(aws, inbox)
    assert message["NewStateReason"] == alarm["StateReason"] and message["Trigger"]["Threshold"] == 2.0
