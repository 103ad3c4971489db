"""Batch's own "Job State Change" events as lineage: parsed, converted, and written as attempts.

A job's attempts reach the graph twice: from its Batch event as the job ends, and
from `run_finished`. Whatever the order, each attempt ends as one node with the
same properties `run_finished` alone would give it.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from threadline_common.lineage import (
    JobStateChanged,
    LineageEventError,
    NotRecorded,
    attempt_links,
    parse_lineage_event,
    record_event,
    record_events,
    run_datasets,
    run_summary,
)
from threadline_common.lineage.batch import attempt_records, job_key_for, pascal_case_keys
from threadline_common.lineage.graph import provisional_seq

from threadline.twin.graph_store import GraphStore

EVENTS = Path(__file__).resolve().parents[2] / "events"
RUN_ID = "sample-positions-f7bb85b42b864454"
QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/"
SPOT_JOB, ON_DEMAND_JOB = "7b1e0c55-0a8e-4b8e-9d0e-1f2a3b4c5d6e", "9c2f1d66-0a8e-4b8e-9d0e-1f2a3b4c5d6e"
INTERMEDIATE = f"s3://threadline-intermediate-123456789012/runs/{RUN_ID}/"


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def camel_case_keys(value: Any) -> Any:
    """The reverse of pascal_case_keys: a Step Functions job description as Batch's event carries it."""
    if isinstance(value, list):
        return [camel_case_keys(item) for item in value]
    if not isinstance(value, dict):
        return value
    return {key[:1].lower() + key[1:]: (dict(item) if key in ("Parameters", "Tags") else camel_case_keys(item))
            for key, item in value.items()}


def batch_event(job: dict[str, Any], **detail: Any) -> dict[str, Any]:
    """The EventBridge event Batch sends when `job` (PascalCase, as in run_finished) changes state."""
    event = copy.deepcopy(load_event("batch_job_state_change.json"))
    event["detail"] = camel_case_keys(job) | detail
    event["resources"] = [job["JobArn"]]
    return event


def job_events() -> list[dict[str, Any]]:
    """One Batch event per job of the sample run, as its jobs ended."""
    finished = load_event("lineage_run_finished.json")
    later = [batch_event(finished["jobs"][key]) for key in ("preprocess_on_demand", "analysis", "postprocess")]
    return [load_event("batch_job_state_change.json"), *later]


def graph_counts(graph: GraphStore) -> dict[str, int]:
    counts = {f"node:{r['l']}": r["c"] for r in graph.run("MATCH (n) RETURN label(n) AS l, count(*) AS c")}
    counts |= {f"rel:{r['l']}": r["c"] for r in graph.run("MATCH ()-[e]->() RETURN label(e) AS l, count(*) AS c")}
    return counts


def snapshot(graph: GraphStore, run_id: str = RUN_ID) -> dict[str, Any]:
    """Everything the graph says about the run, and how much it holds."""
    return {"summary": run_summary(graph, run_id), "links": attempt_links(graph, run_id),
            "datasets": run_datasets(graph, run_id), "counts": graph_counts(graph)}


def write(tmp_path: Path, name: str, events: list[Any], *, combined: bool = False) -> dict[str, Any]:
    """Write the events, one by one or as one combined batch, to a fresh graph; its snapshot."""
    with GraphStore(tmp_path / name / "graph.lbug") as graph:
        parsed = [parse_lineage_event(event) for event in events]
        if combined:
            record_events(graph, [(event, ()) for event in parsed], "threadline")
        else:
            for event in parsed:
                record_event(graph, event, "threadline")
        return snapshot(graph)


# --- parsing -------------------------------------------------------------------------


def test_the_sample_batch_event_parses_into_a_job_state_change(sample_event) -> None:
    raw = sample_event("batch_job_state_change.json")

    event = parse_lineage_event(json.dumps(raw))  # as the SQS body carries it

    assert isinstance(event, JobStateChanged)
    assert (event.run_id, event.job_key, event.step, event.status) == (RUN_ID, "preprocess", "preprocess", "FAILED")
    assert event.job_id == SPOT_JOB and event.at == raw["time"]
    job = event.job
    assert job["JobName"] == f"preprocess-{RUN_ID}" and job["JobQueue"].endswith("/SpotJobQueue-R2nEhYm0kQ1a")
    assert [a["StatusReason"] for a in job["Attempts"]][-1] == "Host EC2 (instance i-02a1b2c3d4e5f6a7) terminated."
    assert job["Attempts"][0]["Container"]["LogStreamName"] == "threadline-preprocess/default/00c4"
    assert job["RetryStrategy"]["EvaluateOnExit"][0] == {"OnStatusReason": "Host EC2*", "Action": "RETRY"}
    # Data maps keep their keys: job parameters, tags.
    assert job["Parameters"]["run_id"] == RUN_ID and "input_uri" in job["Parameters"]
    assert job["Tags"] == {"threadline:step": "preprocess"}


def test_the_converted_description_is_the_one_step_functions_reports(sample_event) -> None:
    raw = sample_event("batch_job_state_change.json")
    reported = sample_event("lineage_run_finished.json")["failures"]["preprocess"]["Job"]

    converted = pascal_case_keys(raw["detail"])

    assert {k: v for k, v in converted.items() if k not in ("Tags", "PropagateTags", "EksAttempts")} == reported
    assert attempt_records("preprocess", converted, 1) == attempt_records("preprocess", reported, 1)


def test_pascal_case_keys_converts_nested_names_and_keeps_data_maps() -> None:
    detail = {"jobId": "j", "container": {"exitCode": 3, "logConfiguration": {"options": {"awslogs-group": "g"}},
                                          "environment": [{"name": "A_B", "value": "1"}]},
              "attempts": [{"statusReason": "x", "container": {"exitCode": 3}}],
              "parameters": {"run_id": "r", "input_uri": "s3://b/k"}, "tags": {"team": "risk"}}

    assert pascal_case_keys(detail) == {
        "JobId": "j",
        "Container": {"ExitCode": 3, "LogConfiguration": {"Options": {"awslogs-group": "g"}},
                      "Environment": [{"Name": "A_B", "Value": "1"}]},
        "Attempts": [{"StatusReason": "x", "Container": {"ExitCode": 3}}],
        "Parameters": {"run_id": "r", "input_uri": "s3://b/k"}, "Tags": {"team": "risk"},
    }


@pytest.mark.parametrize(("name", "queue", "key"), [
    ("preprocess-{}", "SpotJobQueue-R2nEhYm0kQ1a", "preprocess"),
    ("preprocess-ondemand-{}", "OnDemandJobQueue-5XcVb7NmQ2pL", "preprocess_on_demand"),
    ("analysis-{}", "threadline-GpuJobQueue", "analysis"),
    ("analysis-fallback-{}", "threadline-GpuFallbackJobQueue", "analysis_fallback"),
    ("postprocess-{}", "threadline-SpotJobQueue", "postprocess"),
    ("postprocess-ondemand-{}", "threadline-OnDemandJobQueue", "postprocess_on_demand"),
    # The queue says "fallback" whatever the name does.
    ("preprocess-{}", "threadline-OnDemandJobQueue", "preprocess_on_demand"),
    ("analysis-{}", "threadline-GpuFallbackJobQueue", "analysis_fallback"),
    # A run id that looks like a step name does not confuse the prefix.
    ("postprocess-ondemand-{}", "threadline-OnDemandJobQueue", "postprocess_on_demand"),
    ("report-{}", "threadline-SpotJobQueue", None),
    ("analysis", "threadline-GpuJobQueue", "analysis"),
])
@pytest.mark.parametrize("run_id", [RUN_ID, "analysis-fallback-7"])
def test_the_job_key_comes_from_the_job_name_and_queue(name: str, queue: str, key: str | None, run_id: str) -> None:
    assert job_key_for(name.format(run_id), QUEUE + queue, run_id) == key


def test_the_provisional_order_follows_the_pipeline() -> None:
    keys = ["preprocess", "preprocess_on_demand", "analysis", "analysis_fallback", "postprocess",
            "postprocess_on_demand"]
    seqs = [provisional_seq(key) for key in keys]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and min(seqs) > 60


@pytest.mark.parametrize(("change", "why"), [
    ({"parameters": {"input_uri": "s3://b/k"}}, "no run_id parameter"),
    ({"parameters": {}}, "no run_id parameter"),
    ({"status": "RUNNING"}, "only a job's end"),
    ({"status": "RUNNABLE"}, "only a job's end"),
    ({"jobName": f"backfill-{RUN_ID}"}, "none of threadline's steps"),
    # An array job's children: Step Functions reports the parent, which is recorded.
    ({"jobId": "5f0c:3", "arrayProperties": {"index": 3}}, "child of an array job"),
    # A node of the multi-node analysis that has not ended (it is recorded as it ends).
    ({"jobId": "0d3e2f77-1b9c-4c0f-8e1f-2a3b4c5d6e7f#1", "jobName": f"analysis-{RUN_ID}", "status": "RUNNING",
      "nodeDetails": {"nodeIndex": 1, "isMainNode": False}}, "only a job's end"),
])
def test_events_with_nothing_to_record_are_not_recorded(sample_event, change: dict[str, Any], why: str) -> None:
    event = sample_event("batch_job_state_change.json")
    event["detail"] |= change

    with pytest.raises(NotRecorded, match=why):
        parse_lineage_event(event)


def test_another_batch_event_type_is_not_recorded(sample_event) -> None:
    event = sample_event("batch_job_state_change.json") | {"detail-type": "Batch Job Queue Blocked"}
    with pytest.raises(NotRecorded):
        parse_lineage_event(event)


def test_a_node_of_the_multi_node_analysis_parses_with_its_node(sample_event) -> None:
    """Batch sends each node `<JobId>#<N>` its own event, with `nodeDetails`; the node is read from it."""
    event = sample_event("batch_job_state_change.json")
    event["detail"] |= {"jobId": f"{SPOT_JOB}#1", "jobName": f"analysis-{RUN_ID}", "status": "SUCCEEDED",
                        "jobQueue": f"{QUEUE}GpuJobQueue-8KqWe3RtY6uI",
                        "nodeDetails": {"nodeIndex": 1, "isMainNode": False}}

    parsed = parse_lineage_event(event)

    assert isinstance(parsed, JobStateChanged)
    assert (parsed.job_key, parsed.node_index, parsed.job_id) == ("analysis", 1, f"{SPOT_JOB}#1")
    without_details = copy.deepcopy(event)
    del without_details["detail"]["nodeDetails"]
    assert parse_lineage_event(without_details).node_index == 1  # `#<N>` says it too
    event["detail"]["jobId"] = f"{SPOT_JOB}#main"
    event["detail"]["nodeDetails"] = {"isMainNode": True}
    with pytest.raises(LineageEventError, match="names no node index"):
        parse_lineage_event(event)


@pytest.mark.parametrize("detail", [None, "text", {"status": "FAILED", "parameters": {"run_id": RUN_ID}}])
def test_a_malformed_batch_event_is_an_error(sample_event, detail: Any) -> None:
    event = sample_event("batch_job_state_change.json") | {"detail": detail}
    with pytest.raises(LineageEventError) as raised:
        parse_lineage_event(event)
    assert not isinstance(raised.value, NotRecorded)


# --- writing ---------------------------------------------------------------------------


def test_attempts_from_batch_events_are_recorded_before_the_run_ends(tmp_path: Path) -> None:
    seen = write(tmp_path, "events", job_events())

    summary = seen["summary"]
    assert summary.run.status == "RUNNING" and summary.run.pipeline == "threadline"
    attempts = summary.attempts
    assert [(a.attempt_id, a.step, a.job_key, a.status, a.capacity) for a in attempts] == [
        (f"{SPOT_JOB}#1", "preprocess", "preprocess", "FAILED", "SPOT"),
        (f"{SPOT_JOB}#2", "preprocess", "preprocess", "FAILED", "SPOT"),
        (f"{SPOT_JOB}#3", "preprocess", "preprocess", "FAILED", "SPOT"),
        (f"{ON_DEMAND_JOB}#1", "preprocess", "preprocess_on_demand", "SUCCEEDED", "ON_DEMAND"),
        ("0d3e2f77-1b9c-4c0f-8e1f-2a3b4c5d6e7f#1", "analysis", "analysis", "SUCCEEDED", "GPU"),
        ("1e4f3a88-2cad-4d10-9f20-3b4c5d6e7f80#1", "postprocess", "postprocess", "SUCCEEDED", "SPOT"),
    ]
    assert [a.seq for a in attempts] == [101, 102, 103, 151, 201, 301]  # provisional until run_finished
    assert all(a.cache_key is None for a in attempts)  # needs the whole run
    assert [a.exit_code for a in attempts] == [None, None, None, 0, 0, 0]
    assert attempts[0].status_reason == "Host EC2 (instance i-00a1b2c3d4e5f6a7) terminated."
    assert (attempts[2].started_at, attempts[2].ended_at) == ("2026-11-21T19:41:20.000Z", "2026-11-21T19:41:40.000Z")
    assert attempts[4].node_count == 2 and "/threadline/analysis@sha256:" in attempts[4].image
    assert json.loads(attempts[3].parameters_json)["run_id"] == RUN_ID
    # Retries only: fallbacks and the order of steps need the whole run.
    assert [link.rel for link in seen["links"]] == ["RETRY_OF", "RETRY_OF"]
    links = {(d.node, d.rel, d.uri) for d in seen["datasets"]}
    assert (f"{ON_DEMAND_JOB}#1", "PRODUCED", INTERMEDIATE + "preprocess/") in links
    assert not any(uri.endswith("/sample-positions.csv") for _, _, uri in links)  # the input: the run's events
    assert seen["counts"]["node:Run"] == 1 and seen["counts"]["node:StepAttempt"] == 6


def test_events_then_run_finished_end_as_run_finished_alone_would_write(tmp_path: Path) -> None:
    started, finished = load_event("lineage_run_started.json"), load_event("lineage_run_finished.json")
    alone = write(tmp_path, "alone", [started, finished])

    both = write(tmp_path, "both", [started, *job_events(), finished])

    assert both == alone
    attempts = both["summary"].attempts
    assert [a.seq for a in attempts] == [1, 2, 3, 4, 5, 6]
    assert all(len(a.cache_key) == 32 for a in attempts)
    assert both["counts"]["node:StepAttempt"] == 6 and both["counts"]["rel:FOLLOWED_BY"] == 2
    assert both["counts"]["rel:FALLBACK_OF"] == 1 and both["counts"]["rel:RETRY_OF"] == 2


@pytest.mark.parametrize("order", [
    "finished, events, started", "events reversed, finished, started", "started, finished, events, events",
])
def test_any_order_and_repeats_end_the_same(tmp_path: Path, order: str) -> None:
    started, finished = load_event("lineage_run_started.json"), load_event("lineage_run_finished.json")
    parts = {"started": [started], "finished": [finished], "events": job_events(),
             "events reversed": job_events()[::-1]}
    events = list(itertools.chain.from_iterable(parts[name] for name in order.split(", ")))

    assert write(tmp_path, "ordered", events) == write(tmp_path, "alone", [started, finished])


def test_one_combined_batch_of_events_and_run_finished_ends_the_same(tmp_path: Path) -> None:
    started, finished = load_event("lineage_run_started.json"), load_event("lineage_run_finished.json")

    combined = write(tmp_path, "combined", [*job_events(), finished, started], combined=True)

    assert combined == write(tmp_path, "alone", [started, finished])


def test_a_run_closed_without_jobs_keeps_the_attempts_its_batch_events_recorded(tmp_path: Path) -> None:
    """The finaliser's `run_finished` (a stopped run) has no `jobs`: the Batch events are all there is."""
    started, finished = load_event("lineage_run_started.json"), load_event("lineage_run_finished.json")
    closed = {key: finished[key] for key in ("event", "run_id", "execution_arn", "source", "at")}
    closed |= {"status": "ABORTED", "error": {"Error": "ExecutionAborted", "Cause": "stopped"}}
    on_demand, analysis = job_events()[1], job_events()[2]
    analysis["detail"] |= {"status": "FAILED", "statusReason": "Step Functions task ended before the job"}

    seen = write(tmp_path, "closed", [started, on_demand, closed, analysis])

    run = seen["summary"].run
    assert (run.status, run.error, run.started_at) == ("ABORTED", "ExecutionAborted", started["at"])
    assert [(a.job_key, a.status, a.status_reason) for a in seen["summary"].attempts] == [
        ("preprocess_on_demand", "SUCCEEDED", "Essential container in task exited"),
        ("analysis", "FAILED", "Step Functions task ended before the job"),
    ]
    links = {(d.node.split("#")[0], d.rel, d.uri) for d in seen["datasets"]}
    assert (ON_DEMAND_JOB, "PRODUCED", INTERMEDIATE + "preprocess/") in links
    assert ("0d3e2f77-1b9c-4c0f-8e1f-2a3b4c5d6e7f", "CONSUMED", INTERMEDIATE + "preprocess/clean.parquet") in links
    assert not any(node.startswith("0d3e2f77") and rel == "PRODUCED" for node, rel, _ in links)


# --- the lineage function -------------------------------------------------------------


def sqs_event(*bodies: Any) -> dict[str, Any]:
    """Lambda's SQS event; EventBridge puts the whole event in the message body."""
    return {"Records": [
        {"messageId": f"m{index}", "receiptHandle": f"h{index}", "body": json.dumps(body),
         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs",
         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:threadline-LineageQueue", "awsRegion": "us-east-1"}
        for index, body in enumerate(bodies)]}


def test_the_function_records_batch_events_from_the_queue_and_skips_other_jobs(
        neptune_env, runner, record_lineage, sample_event, lambda_context) -> None:
    ours = sample_event("batch_job_state_change.json")
    theirs = copy.deepcopy(ours)
    theirs["detail"] |= {"jobId": "5f0c", "jobName": "nightly-backfill", "parameters": {"date": "2026-11-20"}}
    running = copy.deepcopy(ours)
    running["detail"] |= {"status": "RUNNING"}

    answer = record_lineage.handler(sqs_event(theirs, ours, running), lambda_context)

    assert answer == {"batchItemFailures": []}  # nothing to retry: the other job is never ours
    summary = run_summary(runner, RUN_ID)
    assert summary.run.status == "RUNNING"
    assert [(a.attempt_id, a.status) for a in summary.attempts] == [
        (f"{SPOT_JOB}#{n}", "FAILED") for n in (1, 2, 3)]
    assert runner.run("MATCH (a:StepAttempt {job_id: '5f0c'}) RETURN count(*) AS n")[0]["n"] == 0


def test_the_function_invoked_with_one_batch_event(neptune_env, runner, record_lineage, sample_event,
                                                    lambda_context) -> None:
    event = sample_event("batch_job_state_change.json")

    result = record_lineage.handler(event, lambda_context)

    assert result == {"status": "recorded", "event": "job_state_changed", "run_id": RUN_ID, "attempts": 3,
                      "queries": result["queries"], "skipped_jobs": {}}
    event["detail"]["parameters"] = {"date": "2026-11-20"}
    skipped = record_lineage.handler(event, lambda_context)
    assert skipped["status"] == "skipped" and "not a threadline job" in skipped["reason"]
