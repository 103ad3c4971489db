"""record_lineage end to end: handler -> boto3 neptunedata -> Neptune stand-in -> embedded graph."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from threadline_common import aws
from threadline_common.lineage import (
    AttemptLink,
    LineageGraphError,
    attempt_history,
    attempt_links,
    run_datasets,
    run_summary,
    runs_for_input,
)

QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/"
SPOT_REASON = "Host EC2 (instance i-0{}a1b2c3d4e5f6a7) terminated."
CAPACITY_REASON = "Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"


def graph_counts(graph: Any) -> dict[str, int]:
    """Nodes per label and relationships per type: what a duplicate write would change."""
    counts = {f"node:{r['l']}": r["c"] for r in graph.run("MATCH (n) RETURN label(n) AS l, count(*) AS c")}
    counts |= {f"rel:{r['l']}": r["c"] for r in graph.run("MATCH ()-[e]->() RETURN label(e) AS l, count(*) AS c")}
    return counts


def test_spot_reclaimed_job_and_on_demand_fallback_are_recorded(
    neptune_env: Any, runner: Any, graph: Any, record_lineage: Any, sample_event: Any, lambda_context: Any
) -> None:
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    run_id = started["run_id"]

    assert record_lineage.handler(started, lambda_context)["status"] == "recorded"
    result = record_lineage.handler(finished, lambda_context)

    assert result == {"status": "recorded", "event": "run_finished", "run_id": run_id, "attempts": 6,
                      "queries": result["queries"], "skipped_jobs": {}}
    summary = run_summary(runner, run_id)
    assert summary.run.to_dict() | {"cause": None} == {
        "run_id": run_id, "pipeline": "threadline", "execution_arn": started["execution_arn"],
        "status": "SUCCEEDED", "started_at": started["at"], "ended_at": finished["at"], "error": None, "cause": None,
        # Priced after the graph write: the sample's CPU jobs name no request, so only the analysis
        # (two whole g6.2xlarge nodes for 132 s) is priced, and the Spot savings are unknown.
        "cost_usd": pytest.approx(0.9776 * 132 / 3600 * 2, abs=1e-6), "spot_savings_usd": None, "cost_unpriced": 5,
    }
    attempts = summary.attempts
    assert [(a.step, a.job_key, a.attempt, a.status, a.capacity) for a in attempts] == [
        ("preprocess", "preprocess", 1, "FAILED", "SPOT"),
        ("preprocess", "preprocess", 2, "FAILED", "SPOT"),
        ("preprocess", "preprocess", 3, "FAILED", "SPOT"),
        ("preprocess", "preprocess_on_demand", 1, "SUCCEEDED", "ON_DEMAND"),
        ("analysis", "analysis", 1, "SUCCEEDED", "GPU"),
        ("postprocess", "postprocess", 1, "SUCCEEDED", "SPOT"),
    ]
    assert [a.status_reason for a in attempts[:3]] == [SPOT_REASON.format(i) for i in range(3)]
    assert [a.exit_code for a in attempts] == [None, None, None, 0, 0, 0]
    assert [a.seq for a in attempts] == [1, 2, 3, 4, 5, 6]
    spot, on_demand, analysis, post = attempts[2], attempts[3], attempts[4], attempts[5]
    assert analysis.node_count == 2 and post.node_count == 1
    assert analysis.image == ("123456789012.dkr.ecr.us-east-1.amazonaws.com/threadline/analysis@sha256:"
                              "693ca7c8a9f1d55ce9789318538537b004c91277394764f1a6fbaf5138be850e")
    assert json.loads(on_demand.parameters_json)["input_uri"] == started["source"]["uri"]
    assert on_demand.parameters["input_uri"] == started["source"]["uri"]
    assert spot.started_at == "2026-11-21T19:41:20.000Z" and spot.ended_at == "2026-11-21T19:41:40.000Z"
    assert spot.job_definition.endswith("job-definition/threadline-preprocess:1")

    ids = [a.attempt_id for a in attempts]
    assert attempt_links(runner, run_id) == sorted([
        AttemptLink(ids[1], "RETRY_OF", ids[0]),
        AttemptLink(ids[2], "RETRY_OF", ids[1]),
        AttemptLink(ids[3], "FALLBACK_OF", ids[2]),
        AttemptLink(ids[3], "FOLLOWED_BY", ids[4]),
        AttemptLink(ids[4], "FOLLOWED_BY", ids[5]),
    ], key=lambda link: (link.rel, link.src, link.dst))
    assert [h.attempt_id for h in attempt_history(runner, ids[3])] == ids[:3]

    source = started["source"]
    input_id = f"{source['uri']}?versionId={source['version_id']}"
    links = {(d.node, d.rel, d.uri) for d in run_datasets(runner, run_id)}
    prefix = f"s3://threadline-intermediate-123456789012/runs/{run_id}/"
    assert links == {
        (run_id, "CONSUMED", source["uri"]),
        *((attempt, "CONSUMED", source["uri"]) for attempt in ids[:4]),
        (ids[3], "PRODUCED", prefix + "preprocess/"),  # only the attempt that succeeded produced it
        (ids[3], "CONTAINS", prefix + "preprocess/clean.parquet"),  # objects inside what it produced
        (ids[3], "CONTAINS", prefix + "preprocess/validation.json"),
        (ids[4], "CONSUMED", prefix + "preprocess/clean.parquet"),
        (ids[4], "PRODUCED", prefix + "analysis/"),
        (ids[5], "CONSUMED", prefix + "analysis/"),
        (ids[5], "CONSUMED", prefix + "preprocess/validation.json"),
        (ids[5], "PRODUCED", f"s3://threadline-results-123456789012/runs/{run_id}/"),
    }
    [input_dataset] = graph.run("MATCH (d:Dataset {dataset_id: $id}) RETURN d.version AS v, d.etag AS e, d.size AS s",
                                {"id": input_id})
    assert input_dataset == {"v": source["version_id"], "e": source["etag"], "s": source["size"]}
    assert graph.run("MATCH (a:Dataset)-[:PART_OF]->(b:Dataset {uri: $p}) RETURN a.uri AS uri ORDER BY uri",
                     {"p": prefix + "preprocess/"}) == [{"uri": prefix + "preprocess/clean.parquet"},
                                                        {"uri": prefix + "preprocess/validation.json"}]
    assert [(r.run_id, r.version) for r in runs_for_input(runner, source["uri"])] == [(run_id, source["version_id"])]


def test_writing_the_same_events_again_creates_no_duplicates(
    neptune_env: Any, runner: Any, graph: Any, record_lineage: Any, sample_event: Any, lambda_context: Any
) -> None:
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    record_lineage.handler(started, lambda_context)
    record_lineage.handler(finished, lambda_context)
    counts = graph_counts(graph)
    summary = run_summary(runner, started["run_id"])

    record_lineage.handler(finished, lambda_context)
    record_lineage.handler(started, lambda_context)
    record_lineage.handler(finished, lambda_context)

    assert graph_counts(graph) == counts
    assert counts == {
        "node:Run": 1, "node:StepAttempt": 6, "node:Dataset": 6,
        "rel:PART_OF": 6 + 2, "rel:CONSUMED": 1 + 4 + 3, "rel:PRODUCED": 3,
        "rel:RETRY_OF": 2, "rel:FALLBACK_OF": 1, "rel:FOLLOWED_BY": 2,
    }
    assert run_summary(runner, started["run_id"]) == summary  # a late run_started does not reset the status


def test_run_finished_recorded_before_run_started_keeps_the_final_status(
    neptune_env: Any, runner: Any, record_lineage: Any, sample_event: Any, lambda_context: Any
) -> None:
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")

    record_lineage.handler(finished, lambda_context)
    record_lineage.handler(started, lambda_context)

    run = run_summary(runner, started["run_id"]).run
    assert run.status == "SUCCEEDED"
    assert run.started_at == started["at"] and run.ended_at == finished["at"]


def job(job_id: str, key: str, queue: str, status: str, attempts: list[dict[str, Any]], *,
        reason: str | None = None, exit_code: int | None = None, multinode: bool = False) -> dict[str, Any]:
    """A DescribeJobs job as the .sync integration returns it (PascalCase)."""
    description: dict[str, Any] = {
        "JobId": job_id, "JobName": f"{key}-run", "JobQueue": QUEUE + queue, "Status": status,
        "JobDefinition": f"arn:aws:batch:us-east-1:123456789012:job-definition/threadline-{key}:1",
        "Attempts": attempts, "Parameters": {"clean_uri": "s3://intermediate/runs/r/preprocess/clean.parquet",
                                             "partials_prefix": "s3://intermediate/runs/r/analysis/"},
    }
    if reason:
        description["StatusReason"] = reason
    if multinode:
        description["NodeProperties"] = {"NumNodes": 4, "MainNode": 0, "NodeRangeProperties": [
            {"TargetNodes": "0:", "Container": {"Image": "analysis:gpu"}}]}
    else:
        description["Container"] = {"Image": "preprocess:1"}
        if exit_code is not None:
            description["Container"]["ExitCode"] = exit_code
    return description


def attempt(start_s: int, reason: str, exit_code: int | None = None) -> dict[str, Any]:
    container = {"LogStreamName": f"stream-{start_s}", **({"ExitCode": exit_code} if exit_code is not None else {})}
    return {"Container": container, "StartedAt": 1_795_290_000_000 + start_s * 1000,
            "StoppedAt": 1_795_290_000_000 + (start_s + 5) * 1000, "StatusReason": reason}


def failed(description: dict[str, Any]) -> dict[str, Any]:
    """A failures entry: the .sync error with its Cause parsed into Job."""
    return {"Error": "States.TaskFailed", "Cause": json.dumps(description), "Job": description}


def test_failed_run_records_the_capacity_cancel_and_the_failed_fallback(
    neptune_env: Any, runner: Any, record_lineage: Any, sample_event: Any, lambda_context: Any
) -> None:
    base = sample_event("lineage_run_finished.json")
    preprocess = base["jobs"]["preprocess_on_demand"]
    analysis = job("an-1", "analysis", "GpuJobQueue-X1", "FAILED", [], reason=CAPACITY_REASON, multinode=True)
    fallback = job("an-2", "analysis", "GpuFallbackJobQueue-X2", "FAILED",
                   [attempt(10, "Essential container in task exited", exit_code=1)], multinode=True)
    event = {**base, "status": "FAILED", "jobs": {"preprocess_on_demand": preprocess},
             "failures": {"preprocess": base["failures"]["preprocess"], "analysis": failed(analysis),
                          "analysis_fallback": failed(fallback)},
             "error": {"Error": "States.TaskFailed", "Cause": json.dumps(fallback)}}

    result = record_lineage.handler(event, lambda_context)

    assert result["status"] == "recorded" and result["attempts"] == 6
    summary = run_summary(runner, base["run_id"])
    assert summary.run.status == "FAILED"
    assert summary.run.error == "States.TaskFailed"
    assert json.loads(summary.run.cause)["JobId"] == "an-2"
    cancelled, last = summary.attempts[4], summary.attempts[5]
    assert (cancelled.attempt_id, cancelled.capacity, cancelled.status, cancelled.exit_code,
            cancelled.started_at, cancelled.node_count) == ("an-1#1", "GPU", "FAILED", None, None, 4)
    assert cancelled.status_reason == CAPACITY_REASON
    assert (last.attempt_id, last.capacity, last.status, last.exit_code, last.image) == (
        "an-2#1", "GPU_FALLBACK", "FAILED", 1, "analysis:gpu")
    links = attempt_links(runner, base["run_id"])
    assert AttemptLink("an-2#1", "FALLBACK_OF", "an-1#1") in links
    assert AttemptLink(summary.attempts[3].attempt_id, "FOLLOWED_BY", "an-1#1") in links
    produced = [d for d in run_datasets(runner, base["run_id"]) if d.rel == "PRODUCED"]
    assert [d.node for d in produced] == [summary.attempts[3].attempt_id]  # failed attempts produce nothing


def test_validation_failure_records_exit_code_65(neptune_env: Any, runner: Any, record_lineage: Any,
                                                  sample_event: Any, lambda_context: Any) -> None:
    base = sample_event("lineage_run_finished.json")
    description = copy.deepcopy(base["failures"]["preprocess"]["Job"])
    description["Attempts"] = [attempt(0, "Essential container in task exited", exit_code=65)]
    description["StatusReason"] = "Essential container in task exited"
    event = {**base, "status": "FAILED", "jobs": {}, "failures": {"preprocess": failed(description)},
             "error": {"Error": "ValidationFailed", "Cause": "412 of 1843 rows were rejected"}}

    record_lineage.handler(event, lambda_context)

    summary = run_summary(runner, base["run_id"])
    [only] = summary.attempts
    assert (only.step, only.status, only.exit_code, only.capacity) == ("preprocess", "FAILED", 65, "SPOT")
    assert (summary.run.error, summary.run.cause) == ("ValidationFailed", "412 of 1843 rows were rejected")
    assert attempt_links(runner, base["run_id"]) == []


def test_unreadable_job_entries_are_reported_and_the_rest_recorded(
    neptune_env: Any, runner: Any, record_lineage: Any, sample_event: Any, lambda_context: Any
) -> None:
    base = sample_event("lineage_run_finished.json")
    event = {**base, "failures": {"preprocess": {"Error": "States.Timeout", "Cause": "not JSON"}}}

    result = record_lineage.handler(event, lambda_context)

    assert result["skipped_jobs"] == {"preprocess": "no job description in the entry"}
    assert [a.job_key for a in run_summary(runner, base["run_id"]).attempts] == [
        "preprocess_on_demand", "analysis", "postprocess"]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("nonsense", "not JSON"),
        ([], "must be a JSON object"),
        ({"event": "run_paused", "run_id": "r"}, "unknown lineage event"),
        ({"event": "run_started"}, "'run_id' must be a non-empty string"),
        ({"event": "run_finished", "run_id": "r"}, "'status' must be a non-empty string"),
        ({"event": "run_finished", "run_id": "r", "status": "FAILED", "jobs": []}, "'jobs' must be an object"),
        ({"event": "run_started", "run_id": "r", "source": {"size": 3}}, "'source' needs a 'uri'"),
        ({"event": "run_finished", "run_id": "r", "status": "FAILED", "error": "boom"}, "'error' must be an object"),
    ],
)
def test_malformed_lineage_events_are_skipped(neptune_env: Any, graph: Any, record_lineage: Any,
                                              event: Any, reason: str, lambda_context: Any) -> None:
    result = record_lineage.handler(event, lambda_context)

    assert result["status"] == "skipped"
    assert reason in result["reason"]
    assert graph_counts(graph) == {}


@pytest.mark.parametrize("mode", ["unavailable", "reset"])
def test_neptune_down_raises_lineage_graph_error_and_a_retry_recovers(
    neptune_env: Any, runner: Any, record_lineage: Any, sample_event: Any, monkeypatch: pytest.MonkeyPatch,
    mode: str, lambda_context: Any
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no botocore retries: fail at once
    aws.client.cache_clear()
    started = sample_event("lineage_run_started.json")
    neptune_env.set_down(True, mode=mode)

    with pytest.raises(LineageGraphError):
        record_lineage.handler(started, lambda_context)

    neptune_env.set_down(False)
    assert record_lineage.handler(started, lambda_context)["status"] == "recorded"
    assert run_summary(runner, started["run_id"]).run.status == "RUNNING"
