"""A run stopped while its analysis runs: its step attempts reach the graph from Batch's own events.

The stopped execution never reaches RecordRunSucceeded/RecordRunFailed; the finaliser
queues its `run_finished` without `jobs`. What the graph knows of its steps came from
the "Batch Job State Change" events the twin sends to EventBridge, which the
BatchJobEventsToLineage rule puts on the lineage queue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import until

from threadline.lineage.view import twin_graph
from threadline.twin.runs import collect, find_execution, upload, wait

pytestmark = pytest.mark.pipeline

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()

ATTEMPTS = """
MATCH (a:StepAttempt)-[:PART_OF]->(r:Run {run_id: $run_id})
RETURN a.attempt_id AS attempt_id, a.step AS step, a.job_key AS job_key, a.status AS status,
       a.seq AS seq, a.capacity AS capacity, a.ended_at AS ended_at
ORDER BY seq
"""


def entered_states(twin: Any, arn: str) -> list[str]:
    events = twin.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def batch_events_delivered(twin: Any, run_id: str) -> list[tuple[str, str]]:
    """(job name, status) of every Batch event of the run the lineage queue delivered."""
    found = []
    for delivery in list(twin.event_sources.deliveries):
        for body in delivery.bodies.values():
            event = json.loads(body)
            detail = event.get("detail") if event.get("source") == "aws.batch" else None
            if isinstance(detail, dict) and (detail.get("parameters") or {}).get("run_id") == run_id:
                found.append((detail["jobName"], detail["status"]))
    return found


def test_a_stopped_run_keeps_the_attempts_its_batch_events_recorded(twin) -> None:
    key = "incoming/job-events-stopped.csv"
    uploaded = upload(twin, SAMPLE, key)
    arn = find_execution(twin, uploaded["bucket"], key, uploaded["version_id"])
    until(lambda: "Analysis" in entered_states(twin, arn), 60, "the analysis to start")
    twin.client("stepfunctions").stop_execution(executionArn=arn, error="Stopped", cause="stopped by the test")

    result = collect(twin, wait(twin, arn, timeout=180))
    assert result.status == "ABORTED", result.cause
    assert twin.wait_for_async(60)  # the finaliser queues the run's run_finished (no jobs)
    assert twin.event_sources.wait_idle(60)

    graph = twin_graph(twin)
    run_id = result.run_id
    [run] = graph.run("MATCH (r:Run {run_id: $run_id}) RETURN r.status AS status", {"run_id": run_id})
    assert run["status"] == "ABORTED"
    # The stopped analysis job ends FAILED (Step Functions terminates it); its event may trail the run's end.
    attempts = until(lambda: _settled(graph.run(ATTEMPTS, {"run_id": run_id})), 60,
                     "the stopped analysis job's attempt")
    assert [(a["step"], a["job_key"], a["status"], a["capacity"]) for a in attempts] == [
        ("preprocess", "preprocess", "SUCCEEDED", "SPOT"), ("analysis", "analysis", "FAILED", "GPU")]
    assert all(a["seq"] >= 100 and a["ended_at"] for a in attempts)  # numbered by no run_finished
    assert len(graph.run("MATCH (a:StepAttempt)-[:PART_OF]->(r:Run {run_id: $run_id}) RETURN a.attempt_id AS id",
                         {"run_id": run_id})) == 2

    delivered = batch_events_delivered(twin, run_id)
    assert (f"preprocess-{run_id}", "SUCCEEDED") in delivered
    assert {status for _, status in delivered} <= {"SUCCEEDED", "FAILED"}  # the rule passes a job's end only


def _settled(attempts: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    return attempts if any(a["step"] == "analysis" for a in attempts) else None
