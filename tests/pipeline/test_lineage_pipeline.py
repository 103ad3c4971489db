"""Lineage through the twin: queued events, the graph down mid-run, dead letters, the alarm and the redrive."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pipeline_helpers import SAMPLE_RUN, until
from threadline_common.lineage import NeptuneCypher, run_report, upstream
from typer.testing import CliRunner

from threadline.cli.lineage import app as lineage_app
from threadline.deploy.images import BUILD_CONTEXT, twin_digest_parameters
from threadline.lineage.redrive import dead_letter_queue, redrive, waiting
from threadline.twin.event_sources import WAIT_SECONDS
from threadline.twin.runs import collect, find_execution, slack_messages, upload, wait
from threadline.twin.server import PROJECT_ROOT

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()
EVENTS = Path(__file__).resolve().parents[2] / "events"


def lineage_mapping(twin: Any) -> Any:
    [mapping] = [m for m in twin.event_sources.mappings if "LineageQueue" in m.queue_arn]
    return mapping


def run_messages(twin: Any, run_id: str) -> dict[str, str]:
    """Message id -> lineage event kind, for every message of one run the poller has seen."""
    found = {}
    for delivery in twin.event_sources.deliveries:
        for message_id, body in delivery.bodies.items():
            event = json.loads(body)
            if event.get("run_id") == run_id:
                found[message_id] = event["event"]
    return found


def edge_count(graph: NeptuneCypher, pattern: str, run_id: str) -> int:
    return graph.run(f"MATCH {pattern} RETURN count(*) AS n", {"run_id": run_id})[0]["n"]


def test_lineage_is_queued_and_written_with_images_keys_and_dataset_facts(sample_run, twin, graph):
    result = sample_run
    assert result.status == "SUCCEEDED", result.cause
    assert twin.event_sources.wait_idle(60)

    report = run_report(graph, result.run_id)
    assert report.run.status == "SUCCEEDED"
    attempts = report.attempts
    assert [(a.step, a.status, a.capacity) for a in attempts] == [
        ("preprocess", "SUCCEEDED", "SPOT"), ("analysis", "SUCCEEDED", "GPU"), ("postprocess", "SUCCEEDED", "SPOT")]
    digests = twin_digest_parameters(PROJECT_ROOT / BUILD_CONTEXT)
    for attempt, image in zip(attempts, ("preprocess", "analysis", "postprocess"), strict=True):
        # Pinned by digest as a deploy pins them (the twin's digest: the image's content hash).
        assert attempt.image.endswith(f"/threadline/{image}@{digests[f'{image.capitalize()}ImageDigest']}")
        assert attempt.job_definition.endswith(f"job-definition/threadline-{image}:1")
        assert len(attempt.cache_key) == 32
    assert len({a.cache_key for a in attempts}) == 3
    assert attempts[1].parameters["seed"] == "20261121"

    datasets = {(d.rel, d.uri.rsplit("/", 1)[-1] or d.uri): d for d in report.datasets}
    source = next(d for d in report.datasets if d.uri.endswith(f"/{SAMPLE_RUN}"))
    assert (source.row_count, source.size) == (200, len(SAMPLE)) and source.schema_hash
    clean = datasets[("CONTAINS", "clean.parquet")]
    assert clean.row_count == 200 and clean.schema_hash == source.schema_hash and clean.etag
    assert ("CONTAINS", "report.json") in datasets and ("CONTAINS", "node-0001.parquet") in datasets

    report_uri = next(uri for uri in result.objects["ResultsBucket"] if uri.endswith("/report.json"))
    tree = upstream(graph, report_uri)
    assert [a.step for a in tree.attempts] == ["preprocess", "analysis", "postprocess"]
    assert any(d.uri.endswith(f"/{SAMPLE_RUN}") for d in tree.datasets)  # back to the input file

    dead_url, _ = dead_letter_queue(twin.client("sqs"), "threadline")
    assert waiting(twin.client("sqs"), dead_url) == 0


def test_graph_down_mid_run_loses_no_lineage_event_and_writes_none_twice(twin, graph):
    """Neptune goes down as the run starts and comes back after it ended: the run is not held up,
    both lineage events are written once it is back, and the graph holds each thing once."""
    key = "incoming/lineage-outage.csv"
    twin.neptune.set_down(True)
    try:
        uploaded = upload(twin, SAMPLE, key)
        arn = find_execution(twin, uploaded["bucket"], key, uploaded["version_id"])
        result = collect(twin, wait(twin, arn))
        assert result.status == "SUCCEEDED", result.cause
        # Both events were tried while the graph was down, and failed.
        until(lambda: sorted(set(_failed_kinds(twin, result.run_id))) == ["run_finished", "run_started"],
              30, "a failed delivery of each lineage event")
        assert graph_is_down(graph)
    finally:
        twin.neptune.set_down(False)

    assert twin.event_sources.wait_idle(60)
    messages = run_messages(twin, result.run_id)
    assert sorted(messages.values()) == ["run_finished", "run_started"]
    delivered = twin.event_sources.delivered_ids()
    assert {message_id: delivered[message_id] for message_id in messages} == {m: 1 for m in messages}

    report = run_report(graph, result.run_id)
    assert report.run.status == "SUCCEEDED" and report.run.started_at
    assert [a.step for a in report.attempts] == ["preprocess", "analysis", "postprocess"]
    run_id = result.run_id
    assert edge_count(graph, "(r:Run {run_id: $run_id})", run_id) == 1
    assert edge_count(graph, "(:StepAttempt)-[:PART_OF]->(:Run {run_id: $run_id})", run_id) == 3
    assert edge_count(graph, "(:Run {run_id: $run_id})-[:CONSUMED]->(:Dataset)", run_id) == 1
    assert report.run.pipeline == "threadline"
    assert edge_count(graph, "(a:StepAttempt)-[:PART_OF]->(:Run {run_id: $run_id}) "
                             "MATCH (a)-[:PRODUCED]->(:Dataset)", run_id) == 3
    dead_url, _ = dead_letter_queue(twin.client("sqs"), "threadline")
    assert waiting(twin.client("sqs"), dead_url) == 0


def test_dead_letters_raise_the_alarm_and_a_redrive_writes_them(twin, graph, monkeypatch):
    """A graph down longer than five deliveries: the event waits in the dead-letter queue, the
    alarm reaches Slack, and `threadline lineage redrive` has it written once the graph is back."""
    sqs = twin.client("sqs")
    mapping = lineage_mapping(twin)
    dead_url, _ = dead_letter_queue(sqs, "threadline")
    event = json.loads((EVENTS / "lineage_run_started.json").read_text())
    event["run_id"] = "dead-letter-test-0000000000000001"
    # Earlier tests' late events (a terminated job's Batch event) must not share the outage.
    twin.wait_for_async(60)
    assert twin.event_sources.wait_idle(60)
    saved = mapping.visibility_timeout
    # Visible again at once: the five receives follow each other, each as long as a failed write, not
    # thirty seconds apart (one poller per mapping, so the next receive waits for the failed delivery).
    mapping.visibility_timeout = 0
    # A receive already waiting for messages gives the one it gets the old timeout (six seconds): let it end.
    time.sleep(WAIT_SECONDS + 0.2)
    twin.neptune.set_down(True)
    try:
        # As the state machine does:
        sqs.send_message(QueueUrl=twin.physical_id("LineageQueue"), MessageBody=json.dumps(event))
        until(lambda: waiting(sqs, dead_url) >= 1, 60, "the event to reach the dead-letter queue")
        alarm = "threadline-LineageDeadLettersAlarm"
        until(lambda: _alarm_state(twin, alarm) == "ALARM", 30, "the dead-letter alarm")
        until(lambda: [m for m in slack_messages(twin) if m["kind"] == "alarm" and alarm in m["text"]], 30,
              "the alarm in Slack")
        assert graph_is_down(graph)
    finally:
        twin.neptune.set_down(False)
        mapping.visibility_timeout = saved

    moved = redrive(sqs, "threadline")
    assert moved.messages >= 1 and moved.task_handle  # ours, and any Batch event the outage caught
    assert twin.event_sources.wait_idle(60)
    assert waiting(sqs, dead_url) == 0
    assert run_report(graph, event["run_id"]).run.status == "RUNNING"
    until(lambda: _alarm_state(twin, alarm) == "OK", 30, "the alarm to clear")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    again = CliRunner().invoke(lineage_app, ["redrive", "--endpoint-url", twin.endpoint_url, "--region", "us-east-1",
                                             "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["messages"] == 0


def _failed_kinds(twin: Any, run_id: str) -> list[str]:
    kinds = []
    for delivery in list(twin.event_sources.deliveries):
        for message_id in delivery.failed_ids:
            event = json.loads(delivery.bodies[message_id])
            if event.get("run_id") == run_id:
                kinds.append(event["event"])
    return kinds


def _alarm_state(twin: Any, name: str) -> str | None:
    alarms = twin.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return alarms[0]["StateValue"] if alarms else None


def graph_is_down(graph: NeptuneCypher) -> bool:
    from threadline_common.lineage import LineageGraphError

    try:
        graph.run("RETURN 1 AS one")
    except LineageGraphError:
        return True
    return False
