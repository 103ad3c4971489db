"""Nodes keyed by `~id`: concurrent consumers, rows applied in order, one time format, old graph files."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import ladybug
import pytest
from threadline_common.lineage import (
    NeptuneCypher,
    RunFinished,
    RunStarted,
    failures,
    parse_lineage_event,
    queries,
    record_events,
)
from threadline_common.lineage.consumer import consume
from threadline_common.lineage.graph import plan_run_finished, plan_run_started
from threadline_common.lineage.reader import parse_since
from typer.testing import CliRunner

from threadline.cli.lineage import app
from threadline.twin.graph_store import GraphSchemaError, GraphStore, graph_path
from threadline.twin.neptune_standin import NeptuneStandin


def message(index: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"messageId": f"m{index}", "body": json.dumps(body), "eventSource": "aws:sqs"}


def second_run(event: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The same event for another run of the same input (its own paths and job ids)."""
    text = json.dumps(event).replace(event["run_id"], run_id)
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                  lambda job_id: str(uuid.uuid5(uuid.NAMESPACE_URL, run_id + job_id.group(0))), text)
    return dict(json.loads(text))


def snapshot(store: GraphStore) -> tuple[dict[str, dict[str, Any]], Counter[tuple[str, str, str]]]:
    """Every node's properties by `~id`, and every relationship (start, type, end) with how often it is there."""
    nodes: dict[str, dict[str, Any]] = {}
    for label in ("Run", "StepAttempt", "Dataset"):
        for row in store.run(f"MATCH (n:{label}) RETURN n"):
            node = {key: value for key, value in row["n"].items() if not key.startswith("_")}
            assert node["~id"] not in nodes
            nodes[node["~id"]] = node
    edges = Counter((row["a"], row["t"], row["b"])
                    for row in store.run("MATCH (a)-[e]->(b) RETURN a.`~id` AS a, label(e) AS t, b.`~id` AS b"))
    return nodes, edges


def test_two_consumers_on_overlapping_batches_write_each_node_and_edge_once(tmp_path: Path, sample_event: Any) -> None:
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    other_started, other_finished = second_run(started, "sample-positions-0000000000000002"), second_run(
        finished, "sample-positions-0000000000000002")
    other_finished.update(status="FAILED", error={"Error": "AnalysisFailed", "Cause": "exit 3"})
    events = [started, finished, other_started, other_finished]
    # Each consumer gets every event, in its own order: the two batches overlap entirely.
    batches = [[message(i, events[i]) for i in (0, 1, 2, 3)], [message(i, events[i]) for i in (3, 2, 1, 0)]]

    with GraphStore(tmp_path / "alone.lbdb") as alone:
        consume(batches[0], alone, "threadline")
        expected = snapshot(alone)

    with GraphStore(tmp_path / "shared.lbdb") as shared, NeptuneStandin(shared) as standin:
        def consumer(batch: list[dict[str, Any]], outcomes: list[Any], start: threading.Barrier) -> None:
            client = boto3.client("neptunedata", endpoint_url=standin.url, region_name="us-east-1",
                                  aws_access_key_id="testing", aws_secret_access_key="testing")
            start.wait()
            for _ in range(3):  # and again: a redelivered batch changes nothing
                outcomes.append(consume(batch, NeptuneCypher(client), "threadline"))

        outcomes: list[Any] = []
        start = threading.Barrier(2)
        threads = [threading.Thread(target=consumer, args=(batch, outcomes, start)) for batch in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        nodes, edges = snapshot(shared)

    assert len(outcomes) == 6 and all(not outcome.failed and len(outcome.recorded) == 4 for outcome in outcomes)
    assert set(edges.values()) == {1}  # no relationship twice
    assert (nodes, edges) == expected
    runs = {node["run_id"]: node for node in nodes.values() if node["~id"].startswith("Run:")}
    assert {run_id: run["status"] for run_id, run in runs.items()} == {
        started["run_id"]: "SUCCEEDED", other_started["run_id"]: "FAILED"}
    assert all(run["started_at"] and run["ended_at"] for run in runs.values())
    assert Counter(node["~id"].split(":", 1)[0] for node in nodes.values())["StepAttempt"] == 12


def test_a_later_row_for_the_same_node_wins_within_one_batch(graph: GraphStore, sample_event: Any) -> None:
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    run_node = f"Run:{started['run_id']}"
    row = {"run_node": run_node, "run_id": started["run_id"], "pipeline": "threadline", "execution_arn": None,
           "ended_at": "2026-11-21T19:47:01.502Z", "error": None, "cause": None}

    # A node the query itself creates, then two rows for it: the last one's values stay.
    graph.run(queries.MERGE_RUN_FINISHED, {"rows": [{**row, "status": "FAILED", "error": "first"},
                                                    {**row, "status": "ABORTED", "error": "second"}]})
    # ... and a later row reads what an earlier one wrote, as openCypher applies rows in order.
    graph.run(queries.MERGE_RUN_STARTED, {"rows": [
        {"run_node": run_node, "run_id": started["run_id"], "pipeline": "threadline", "execution_arn": "arn:1",
         "started_at": "2026-11-21T19:40:02.118Z"},
        {"run_node": run_node, "run_id": started["run_id"], "pipeline": "threadline", "execution_arn": None,
         "started_at": "2026-11-21T19:59:59.999Z"}]})

    [run] = graph.run("MATCH (r:Run) RETURN r.status AS status, r.error AS error, r.started_at AS started_at, "
                      "r.execution_arn AS arn")
    assert run == {"status": "ABORTED", "error": "second", "started_at": "2026-11-21T19:40:02.118Z", "arn": "arn:1"}

    # Two events of one SQS batch for the same run: the later one is what the graph keeps.
    aborted = {**finished, "status": "ABORTED", "at": "2026-11-21T19:50:00.000Z", "jobs": {}, "failures": {}}
    record_events(graph, [(parse_lineage_event(finished), ()), (parse_lineage_event(aborted), ())], "threadline")
    [run] = graph.run("MATCH (r:Run) RETURN r.status AS status, r.ended_at AS ended_at")
    assert run == {"status": "ABORTED", "ended_at": "2026-11-21T19:50:00.000Z"}


@pytest.mark.parametrize(("sent", "stored"), [
    ("2026-11-30T10:00:00.123456+00:00", "2026-11-30T10:00:00.123Z"),
    ("2026-11-30T12:00:00.5+02:00", "2026-11-30T10:00:00.500Z"),
    ("2026-11-30T10:00:00Z", "2026-11-30T10:00:00.000Z"),
    ("2026-11-30T10:00:00", "2026-11-30T10:00:00.000Z"),
    ("yesterday", None),
])
def test_every_time_is_stored_as_utc_milliseconds_and_z(sample_event: Any, sent: str, stored: str | None) -> None:
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    start, end = parse_lineage_event({**started, "at": sent}), parse_lineage_event({**finished, "at": sent})
    assert isinstance(start, RunStarted) and isinstance(end, RunFinished)
    start_rows = plan_run_started(start, "threadline").writes[0].rows
    plan = plan_run_finished(end, "threadline")

    assert start_rows[0]["started_at"] == stored
    assert plan.writes[0].rows[0]["ended_at"] == stored
    attempt_rows = next(w.rows for w in plan.writes if w.query == queries.MERGE_STEP_ATTEMPTS)
    times = [row[key] for row in attempt_rows for key in ("started_at", "ended_at") if row[key]]
    assert times and all(len(time) == 24 and time.endswith("Z") for time in times)


def test_failures_since_includes_a_failure_at_the_moment_and_not_one_millisecond_before(
        graph: GraphStore, sample_event: Any) -> None:
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    # Sent as some writers send times: an offset instead of `Z`, and no milliseconds.
    failed = {**finished, "status": "FAILED", "at": "2026-11-30T10:00:00+00:00", "jobs": {}, "failures": {},
              "error": {"Error": "AnalysisFailed", "Cause": "exit 3"}}
    record_events(graph, [(parse_lineage_event(started), ()), (parse_lineage_event(failed), ())], "threadline")

    at_the_moment = failures(graph, parse_since("2026-11-30T10:00:00Z"))
    just_after = failures(graph, parse_since("2026-11-30T10:00:00.001Z"))
    same_moment_elsewhere = failures(graph, parse_since("2026-11-30T11:00:00+01:00"))

    assert [run.run_id for run in at_the_moment.runs] == [started["run_id"]]
    assert at_the_moment.runs[0].ended_at == "2026-11-30T10:00:00.000Z"
    assert just_after.runs == ()
    assert [run.run_id for run in same_moment_elsewhere.runs] == [started["run_id"]]


def test_a_graph_of_the_earlier_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "lineage.lbdb"
    database = ladybug.Database(str(path))
    connection = ladybug.Connection(database)
    connection.execute("CREATE NODE TABLE Run(run_id STRING, status STRING, PRIMARY KEY (run_id))")
    connection.close()
    database.close()

    with pytest.raises(GraphSchemaError, match="earlier threadline"):
        GraphStore(path, read_only=True)

    # The CLI looks for this version's file, and names the earlier one it found instead.
    result = CliRunner().invoke(app, ["run", "r1", "--workdir", str(tmp_path)])
    assert result.exit_code == 2
    assert str(graph_path(tmp_path).name) in result.output and "earlier threadline" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
