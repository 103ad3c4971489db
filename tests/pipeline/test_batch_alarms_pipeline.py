"""Batch alarms through the twin: a job kept RUNNABLE and repeated job failures reach Slack.

The twin's clocks are scaled: the queue cancels a job stuck RUNNABLE after
RunnableTimeoutSeconds x 0.001 (0.9 s), the schedule fires `rate(1 minute)`
every second and an alarm's period lasts 1/60 of its Period (the RUNNABLE
alarm's 300 s are 5 s, the failure alarm's 900 s are 15 s). The metrics
themselves are in real seconds, so the suite's twin (conftest.py) sets the
RUNNABLE threshold below the 0.9 s a capacity-starved job waits here.

Earlier tests in the same twin move the same metrics and alarms: the runs here
start once both alarms are quiet, and each test judges only what they added.
The two tests' runs go at once: they move different metrics (the Spot queue's
RUNNABLE time; the analysis definition's failures).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import run_together, until

from threadline.twin.alarms import TIME_SCALE, judge
from threadline.twin.runs import RunResult
from threadline.twin.schedules import rate_seconds
from threadline.twin.server import Twin

pytestmark = pytest.mark.pipeline

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()
CAPACITY_WAIT_S = 900 * 0.001  # RunnableTimeoutSeconds (default) x the twin's time-limit scale
QUEUES = ("SpotJobQueue", "OnDemandJobQueue", "GpuJobQueue", "GpuFallbackJobQueue")
NO_SPOT = "ba-no-spot.csv"  # a preprocessing job the Spot queue has no capacity for
FAILURES = ("ba-fail-1.csv", "ba-fail-2.csv", "ba-fail-3.csv")  # analyses that fail
ALARMS = ("SpotJobQueueRunnableAlarm", "OnDemandJobQueueRunnableAlarm", "AnalysisJobFailuresAlarm",
          "PostprocessJobFailuresAlarm")
RUN_TIMEOUT_S = 180


def alarmed(twin: Twin, logical_id: str) -> list[dict[str, Any]]:
    """The alarm's changes to ALARM so far (its period is seconds long here: it may be OK again already)."""
    assert twin.alarms is not None
    name = f"{twin.config.stack_name}-{logical_id}"
    return [m for m in list(twin.alarms.fired) if m["AlarmName"] == name and m["NewStateValue"] == "ALARM"]


def alarm_messages(twin: Twin, logical_id: str, seen: set[Path]) -> list[dict[str, Any]]:
    """The alarm's Slack messages in the outbox, but for those in `seen`."""
    name = f"{twin.config.stack_name}-{logical_id}"
    found = []
    for path in sorted(set(twin.outbox.glob("*.json")) - seen):
        text = path.read_text(encoding="utf-8")
        if name in text:
            found.append(json.loads(text))
    return found


def datapoints(twin: Twin, metric: str, dimension: str, value: str, stat: str, since: datetime) -> list[float]:
    points = twin.client("cloudwatch").get_metric_statistics(
        Namespace="threadline/Batch", MetricName=metric, Dimensions=[{"Name": dimension, "Value": value}],
        StartTime=since, EndTime=datetime.now(UTC) + timedelta(minutes=1), Period=60,
        Statistics=[stat])["Datapoints"]
    return [p[stat] for p in points]


def quiet(twin: Twin, logical_id: str) -> None:
    """Wait out earlier tests' jobs: the alarm out of ALARM and nothing in its metric over its last (scaled) period."""
    cloudwatch = twin.client("cloudwatch")
    name = f"{twin.config.stack_name}-{logical_id}"
    [alarm] = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    [dimension] = alarm["Dimensions"]
    window = timedelta(seconds=alarm["Period"] * TIME_SCALE + 1)

    def is_quiet() -> bool:
        [now] = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        values = datapoints(twin, alarm["MetricName"], dimension["Name"], dimension["Value"], alarm["Statistic"],
                            datetime.now(UTC) - window)
        return now["StateValue"] != "ALARM" and not any(values)

    until(is_quiet, 60, f"{logical_id} to be quiet")


def fresh_start(twin: Twin) -> datetime:
    """From when a test's datapoints count: after every earlier invocation published, on a whole second
    (GetMetricStatistics drops StartTime's fraction)."""
    assert twin.wait_for_async(60)
    start = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
    return start


@dataclass
class AlarmRuns:
    since: datetime  # from when the runs' datapoints count
    alarmed_before: dict[str, int]  # each alarm's changes to ALARM before the runs
    outbox_before: set[Path]
    results: dict[str, RunResult]


@pytest.fixture(scope="module")
def alarm_runs(twin: Twin, visited: set[str]) -> AlarmRuns:
    """Both tests' runs, uploaded at once once both alarms are quiet."""
    quiet(twin, "SpotJobQueueRunnableAlarm")
    quiet(twin, "AnalysisJobFailuresAlarm")
    since = fresh_start(twin)
    before = {alarm: len(alarmed(twin, alarm)) for alarm in ALARMS}
    outbox_before = set(twin.outbox.glob("*.json"))
    files = {NO_SPOT: (SAMPLE, ("preprocess@SpotJobQueue:capacity",))}
    files.update({name: (SAMPLE, ("analysis:exit=3",)) for name in FAILURES})
    results = run_together(twin, files, timeout=RUN_TIMEOUT_S)
    for result in results.values():
        visited.update(result.path)
    return AlarmRuns(since, before, outbox_before, results)


def test_a_job_kept_runnable_raises_its_queue_alarm_in_slack(twin: Twin, alarm_runs: AlarmRuns) -> None:
    since, outbox_before, result = alarm_runs.since, alarm_runs.outbox_before, alarm_runs.results[NO_SPOT]
    spot_before = alarm_runs.alarmed_before["SpotJobQueueRunnableAlarm"]
    on_demand_before = alarm_runs.alarmed_before["OnDemandJobQueueRunnableAlarm"]

    # The queue cancelled the waiting job and the run went on on On-Demand, as designed ...
    assert result.status == "SUCCEEDED", result.cause
    assert "PreprocessOnDemand" in result.path
    # ... but the wait was measured: the cancelled job's event gives it, about 0.9 s here.
    spot = f"{twin.config.stack_name}-SpotJobQueue"
    waits = until(lambda: datapoints(twin, "RunnableWaitSeconds", "JobQueue", spot, "Maximum", since), 20,
                  "the RUNNABLE wait of the cancelled job")
    assert CAPACITY_WAIT_S * 0.9 <= max(waits) < CAPACITY_WAIT_S + 5
    assert max(datapoints(twin, "OldestRunnableSeconds", "JobQueue", spot, "Maximum", since)) >= max(waits)
    assert datapoints(twin, "JobsFailed", "JobDefinition", f"{twin.config.stack_name}-preprocess", "Sum",
                      since) == [1.0]

    [change] = until(lambda: alarmed(twin, "SpotJobQueueRunnableAlarm")[spot_before:], 20,
                     "the Spot queue's RUNNABLE alarm")
    assert change["Trigger"]["MetricName"] == "OldestRunnableSeconds"
    [message] = until(lambda: alarm_messages(twin, "SpotJobQueueRunnableAlarm", outbox_before), 20,
                      "the alarm's Slack message")
    assert "RUNNABLE" in json.dumps(message) and "Spot queue" in json.dumps(message)
    # The On-Demand job started at once: its queue stays quiet.
    assert len(alarmed(twin, "OnDemandJobQueueRunnableAlarm")) == on_demand_before


def test_the_schedule_measures_every_queue(twin: Twin) -> None:
    """A job still RUNNABLE sends no event: the one-minute schedule (every second here) lists each queue."""
    assert twin.schedules is not None
    until(lambda: len(twin.schedules.fired) >= 3, 10, "three firings of the schedule")
    since = datetime.now(UTC) - timedelta(minutes=10)
    for queue in QUEUES:
        name = f"{twin.config.stack_name}-{queue}"
        # until() calls the lambda at once, inside this iteration.
        assert until(lambda: datapoints(twin, "OldestRunnableSeconds", "JobQueue", name, "SampleCount",  # noqa: B023
                                        since), 10, f"OldestRunnableSeconds of {queue}")
    # A schedule-only rule matches no bus event: the function saw only scheduled events and job state changes.
    assert twin.lambda_runtime is not None
    payloads = [i.payload for i in twin.lambda_runtime.invocations if i.function == "BatchMetricsFunction"]
    assert payloads and all(isinstance(p, dict) and p.get("status") == "published" for p in payloads), payloads


def test_repeated_analysis_failures_raise_the_definition_alarm_in_slack(twin: Twin, alarm_runs: AlarmRuns) -> None:
    since, outbox_before = alarm_runs.since, alarm_runs.outbox_before
    analysis_before = alarm_runs.alarmed_before["AnalysisJobFailuresAlarm"]
    post_before = alarm_runs.alarmed_before["PostprocessJobFailuresAlarm"]
    results = [alarm_runs.results[name] for name in FAILURES]

    assert [r.status for r in results] == ["FAILED"] * 3, [r.cause for r in results]
    analysis = f"{twin.config.stack_name}-analysis"
    assert sum(datapoints(twin, "JobsFailed", "JobDefinition", analysis, "Sum", since)) == 3.0
    [change] = until(lambda: alarmed(twin, "AnalysisJobFailuresAlarm")[analysis_before:], 20,
                     "the analysis failures alarm")
    assert change["NewStateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [3]")
    [message] = until(lambda: alarm_messages(twin, "AnalysisJobFailuresAlarm", outbox_before), 20,
                      "the alarm's Slack message")
    assert "analysis jobs failed" in json.dumps(message)
    assert len(alarmed(twin, "PostprocessJobFailuresAlarm")) == post_before


# -- the twin's pieces on their own (no twin needed) -------------------------------

@pytest.mark.parametrize(("expression", "seconds"), [
    ("rate(1 minute)", 60.0), ("rate(5 minutes)", 300.0), ("rate(2 hours)", 7200.0), ("rate(1 day)", 86400.0),
    ("rate(1 minutes)", None), ("rate(5 minute)", None), ("rate(0 minutes)", None), ("cron(0 12 * * ? *)", None),
])
def test_rate_expressions_as_eventbridge_reads_them(expression: str, seconds: float | None) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize(("treat", "values", "state"), [
    ("notBreaching", [None], "OK"), ("breaching", [None], "ALARM"), ("missing", [None], "INSUFFICIENT_DATA"),
    ("ignore", [None], None), ("notBreaching", [4.0], "ALARM"), ("notBreaching", [2.0], "OK"),
    ("notBreaching", [4.0, None, 4.0], "OK"), ("breaching", [4.0, None, 4.0], "ALARM"),
])
def test_missing_data_is_treated_as_the_alarm_says(treat: str, values: list[float | None], state: str | None) -> None:
    alarm = {"Threshold": 3.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": treat}
    judged = judge(alarm, values, lambda value, threshold: value >= threshold)
    assert (judged[0] if judged else None) == state


def test_datapoints_to_alarm_needs_m_of_n() -> None:
    alarm = {"Threshold": 3.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "DatapointsToAlarm": 2,
             "TreatMissingData": "notBreaching"}
    compare = lambda value, threshold: value >= threshold  # noqa: E731
    assert judge(alarm, [4.0, 1.0, 5.0], compare)[0] == "ALARM"  # type: ignore[index]
    assert judge(alarm, [4.0, 1.0, None], compare)[0] == "OK"  # type: ignore[index]
