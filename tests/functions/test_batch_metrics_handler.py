"""batch_metrics: Batch job state changes and the one-minute schedule -> threadline/Batch metrics."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from conftest import load_function

ACCOUNT = "123456789012"
QUEUE = f"arn:aws:batch:us-east-1:{ACCOUNT}:job-queue/threadline-SpotJobQueue"
OTHER_QUEUE = f"arn:aws:batch:us-east-1:{ACCOUNT}:job-queue/threadline-OnDemandJobQueue"
DEFINITION = f"arn:aws:batch:us-east-1:{ACCOUNT}:job-definition/threadline-analysis:7"
CREATED_MS = 1796025600000  # 2026-11-30T08:00:00Z
NAMESPACE = "threadline/Batch"


def job_event(status: str, *, time_iso: str = "2026-11-30T08:02:00Z", **detail: Any) -> dict[str, Any]:
    """A "Batch Job State Change" event as EventBridge delivers it (detail: the DescribeJobs job)."""
    job_id = "4c7599ae-0a82-49aa-ba5a-4727fcce14a8"
    base = {
        "jobArn": f"arn:aws:batch:us-east-1:{ACCOUNT}:job/{job_id}", "jobName": "analysis-positions-0123",
        "jobId": job_id, "jobQueue": QUEUE, "status": status, "attempts": [], "createdAt": CREATED_MS,
        "dependsOn": [], "jobDefinition": DEFINITION, "parameters": {"run_id": "positions-0123"},
    }
    base.update(detail)
    return {"version": "0", "id": "c8f9c4b5-76e5-d76a-f980-7011e206042b", "detail-type": "Batch Job State Change",
            "source": "aws.batch", "account": ACCOUNT, "time": time_iso, "region": "us-east-1",
            "resources": [base["jobArn"]], "detail": base}


def scheduled_event() -> dict[str, Any]:
    return {"version": "0", "id": "89d1a02d-5ec7-412e-82f5-13505f849b41", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": ACCOUNT, "time": "2026-11-30T08:05:00Z", "region": "us-east-1",
            "resources": [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/threadline-BatchMetricsEveryMinute"],
            "detail": {}}


class FakeBatch:
    """ListJobs answered from a table of RUNNABLE jobs per queue, two pages when there are several."""

    def __init__(self, runnable: dict[str, list[dict[str, Any]]]) -> None:
        self.runnable = runnable
        self.calls: list[dict[str, Any]] = []

    def list_jobs(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        assert kwargs["jobStatus"] == "RUNNABLE"
        jobs = self.runnable.get(kwargs["jobQueue"], [])
        if "nextToken" in kwargs:
            return {"jobSummaryList": jobs[1:]}
        return {"jobSummaryList": jobs[:1], **({"nextToken": "page-2"} if len(jobs) > 1 else {})}


@pytest.fixture
def app(aws_env: None) -> ModuleType:
    return load_function("batch_metrics")


@pytest.fixture
def cloudwatch(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


@pytest.fixture
def batch(monkeypatch: pytest.MonkeyPatch, app: ModuleType) -> FakeBatch:
    fake = FakeBatch({})
    real = app.aws.client

    def client(service: str, endpoint_url: str | None = None) -> Any:
        return fake if service == "batch" else real(service, endpoint_url)

    monkeypatch.setattr(app, "aws", SimpleNamespace(client=client))  # this module's view of the layer only
    return fake


def statistic(cloudwatch: Any, metric: str, dimension: str, value: str, stat: str) -> float | None:
    """The statistic over the last hour (the function stamps datapoints with the time it publishes them)."""
    moment = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE, MetricName=metric, Dimensions=[{"Name": dimension, "Value": value}],
        StartTime=moment - timedelta(hours=1), EndTime=moment + timedelta(hours=1), Period=7200,
        Statistics=[stat])["Datapoints"]
    return points[0][stat] if points else None


def test_a_failed_job_counts_one_failure_for_its_definition_name(app, cloudwatch, batch, lambda_context):
    attempt = {"startedAt": CREATED_MS + 1000, "stoppedAt": CREATED_MS + 60_000,
               "statusReason": "Essential container in task exited", "container": {"exitCode": 3}}
    result = app.handler(job_event("FAILED", attempts=[attempt], stoppedAt=CREATED_MS + 60_000,
                                   startedAt=CREATED_MS + 1000,
                                   statusReason="Essential container in task exited"), lambda_context)

    assert result["status"] == "published"
    assert statistic(cloudwatch, "JobsFailed", "JobDefinition", "threadline-analysis", "Sum") == 1.0
    # It ran, so no RUNNABLE wait ends here (STARTING counted it).
    assert [m["metric"] for m in result["metrics"]] == ["JobsFailed"]
    assert statistic(cloudwatch, "RunnableWaitSeconds", "JobQueue", "threadline-SpotJobQueue", "SampleCount") is None


def test_leaving_runnable_publishes_the_wait_once(app, cloudwatch, batch, lambda_context):
    app.handler(job_event("RUNNABLE", time_iso="2026-11-30T08:00:01Z"), lambda_context)
    starting = app.handler(job_event("STARTING", time_iso="2026-11-30T08:02:00Z"), lambda_context)
    running = app.handler(job_event("RUNNING", time_iso="2026-11-30T08:02:05Z", startedAt=CREATED_MS + 125_000),
                          lambda_context)

    assert {m["metric"]: m["value"] for m in starting["metrics"]} == {
        "RunnableWaitSeconds": 120.0, "OldestRunnableSeconds": 120.0}
    assert running["metrics"] == []
    assert statistic(cloudwatch, "RunnableWaitSeconds", "JobQueue", "threadline-SpotJobQueue", "SampleCount") == 1.0
    assert statistic(cloudwatch, "RunnableWaitSeconds", "JobQueue", "threadline-SpotJobQueue", "Maximum") == 120.0


def test_a_retried_job_waits_from_the_end_of_its_last_attempt(app, cloudwatch, batch, lambda_context):
    spot = {"startedAt": CREATED_MS + 10_000, "stoppedAt": CREATED_MS + 100_000,
            "statusReason": "Host EC2 (instance i-0123) terminated."}
    result = app.handler(job_event("STARTING", attempts=[spot], time_iso="2026-11-30T08:02:00Z"), lambda_context)

    assert {m["metric"]: m["value"] for m in result["metrics"]}["RunnableWaitSeconds"] == 20.0


def test_a_job_cancelled_while_runnable_is_a_failure_and_a_wait(app, cloudwatch, batch, lambda_context):
    reason = "Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
    # moto (and so the twin) reports a never-started job's startedAt as the epoch; Batch leaves it out.
    result = app.handler(job_event("FAILED", statusReason=reason, stoppedAt=CREATED_MS + 900_000, startedAt=0),
                         lambda_context)

    assert {m["metric"]: m["value"] for m in result["metrics"]} == {
        "JobsFailed": 1.0, "RunnableWaitSeconds": 900.0, "OldestRunnableSeconds": 900.0}
    assert statistic(cloudwatch, "OldestRunnableSeconds", "JobQueue", "threadline-SpotJobQueue", "Maximum") == 900.0


def test_the_schedule_publishes_the_oldest_runnable_age_per_queue(app, cloudwatch, batch, monkeypatch, lambda_context):
    now = time.time()
    monkeypatch.setenv("JOB_QUEUES", f"{QUEUE},{OTHER_QUEUE}")
    batch.runnable[QUEUE] = [
        {"jobId": "a", "jobName": "preprocess-a", "status": "RUNNABLE", "createdAt": int((now - 40) * 1000)},
        {"jobId": "b", "jobName": "preprocess-b", "status": "RUNNABLE", "createdAt": int((now - 300) * 1000)},
    ]

    result = app.handler(scheduled_event(), lambda_context)

    values = {m["dimension"]: m["value"] for m in result["metrics"] if m["metric"] == "OldestRunnableSeconds"}
    assert set(values) == {"threadline-SpotJobQueue", "threadline-OnDemandJobQueue"}
    assert 300 <= values["threadline-SpotJobQueue"] < 310  # the older of the two, from the second page
    assert values["threadline-OnDemandJobQueue"] == 0.0
    assert [c["jobQueue"] for c in batch.calls] == [QUEUE, QUEUE, OTHER_QUEUE]
    oldest = statistic(cloudwatch, "OldestRunnableSeconds", "JobQueue", "threadline-SpotJobQueue", "Maximum")
    assert oldest is not None and 300 <= oldest < 310
    assert statistic(cloudwatch, "OldestRunnableSeconds", "JobQueue", "threadline-OnDemandJobQueue",
                     "Maximum") == 0.0


def test_a_runnable_job_back_from_a_failed_attempt_counts_from_that_attempt(app, cloudwatch, batch, monkeypatch,
                                                                           lambda_context):
    now = time.time()
    monkeypatch.setenv("JOB_QUEUES", QUEUE)
    batch.runnable[QUEUE] = [{"jobId": "a", "status": "RUNNABLE", "createdAt": int((now - 4000) * 1000),
                              "startedAt": int((now - 3990) * 1000), "stoppedAt": int((now - 30) * 1000)}]

    result = app.handler(scheduled_event(), lambda_context)

    assert 30 <= result["metrics"][0]["value"] < 40


def _malformed() -> list[Any]:
    good = job_event("FAILED")
    cases: list[Any] = ["not an event", None, [good], {}, {"source": "aws.s3", "detail-type": "Object Created"}]
    for key, value in (("detail", None), ("detail", "text")):
        case = copy.deepcopy(good)
        case[key] = value
        cases.append(case)
    for key, value in (("status", None), ("jobQueue", 42), ("jobQueue", "arn:aws:batch:us-east-1:1:job-queue/"),
                       ("jobDefinition", ""), ("createdAt", "yesterday"), ("attempts", "three")):
        case = copy.deepcopy(good)
        case["detail"][key] = value
        cases.append(case)
    starting = job_event("STARTING", time_iso="not a time")
    cases.append(starting)
    return cases


@pytest.mark.parametrize("event", _malformed())
def test_a_malformed_event_is_logged_and_skipped(app, cloudwatch, batch, event, lambda_context):
    result = app.handler(event, lambda_context)

    assert result["status"] == "skipped" and result["reason"]
    assert cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"] == []


def test_the_nodes_of_a_multi_node_job_publish_nothing(app, cloudwatch, batch, lambda_context):
    """Batch sends each node `<jobId>#<N>` its own events; the job's own count it once."""
    for status in ("STARTING", "FAILED"):
        event = job_event(status, jobId="4c7599ae-0a82-49aa-ba5a-4727fcce14a8#1",
                          nodeDetails={"nodeIndex": 1, "isMainNode": False})
        assert app.handler(event, lambda_context)["metrics"] == []
    assert cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"] == []


def test_other_statuses_publish_nothing(app, cloudwatch, batch, lambda_context):
    for status in ("PENDING", "RUNNABLE", "RUNNING", "SUCCEEDED"):
        assert app.handler(job_event(status), lambda_context)["metrics"] == []
    assert cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"] == []
