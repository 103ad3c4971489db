"""Where OpenLineage events go: the lineage function's HTTP send after the graph write, and the CLI's export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openlineage_spec import problems
from threadline_common import aws
from threadline_common.lineage import parse_lineage_event, record_event, run_report
from threadline_common.lineage.openlineage import run_events
from threadline_common.lineage.openlineage_transport import HttpTransport, api_key
from typer.testing import CliRunner

from threadline.cli.lineage import app
from threadline.twin.graph_store import GraphStore, graph_path
from threadline.twin.openlineage_receiver import OpenLineageReceiver
from threadline.twin.server import free_port


@pytest.fixture
def receiver(tmp_path: Path) -> Any:
    with OpenLineageReceiver(tmp_path / "openlineage") as server:
        yield server


def _event(n: int) -> dict[str, Any]:
    return {"eventType": "OTHER", "run": {"runId": f"00000000-0000-4000-8000-{n:012d}"}}


def test_the_transport_retries_a_busy_endpoint_and_does_not_retry_a_refusal(receiver) -> None:
    transport = HttpTransport(receiver.url)
    receiver.fail_next(503, 2)
    assert transport.send([_event(1)]).sent == 1  # two 503s, then taken
    receiver.fail_next(400, 1)
    result = transport.send([_event(2), _event(3)])
    assert result.sent == 1 and len(result.failed) == 1 and "HTTP 400" in result.failed[0]
    assert [e["run"]["runId"][-1] for e in receiver.events()] == ["1", "3"]


def test_an_unreachable_endpoint_is_given_up_on_for_the_rest_of_the_batch() -> None:
    transport = HttpTransport(f"http://127.0.0.1:{free_port()}", timeout=1)
    result = transport.send([_event(1), _event(2), _event(3)])
    assert result.sent == 0 and len(result.failed) == 3
    assert "could not be reached" in result.failed[0] and "not tried" in result.failed[2]


def test_the_api_key_is_read_from_its_secret(neptune_env, s3_endpoint, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", s3_endpoint)  # the moto server serves every service
    aws.client.cache_clear()
    import boto3

    secrets = boto3.client("secretsmanager", endpoint_url=s3_endpoint)
    arn = secrets.create_secret(Name="ol-key-test", SecretString='{"api_key": " s3cr3t "}')["ARN"]
    assert api_key(arn) == "s3cr3t"
    assert api_key(None) == ""
    monkeypatch.setenv("OPENLINEAGE_URL", "https://lineage.example.com/")
    monkeypatch.setenv("OPENLINEAGE_API_KEY_SECRET_ARN", arn)
    transport = HttpTransport.from_environment()
    assert transport is not None
    assert (transport.endpoint, transport.api_key) == ("https://lineage.example.com/api/v1/lineage", "s3cr3t")
    monkeypatch.setenv("OPENLINEAGE_URL", "")
    assert HttpTransport.from_environment() is None


def test_the_function_sends_the_run_after_writing_it(neptune_env, runner, record_lineage, sample_event,
                                                     lambda_context, receiver, monkeypatch) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    record_lineage.handler(started, lambda_context)
    assert [e["eventType"] for e in receiver.events()] == ["START"]
    record_lineage.handler(finished, lambda_context)
    received = receiver.events()
    report = run_report(runner, started["run_id"])
    assert report is not None
    assert received[1:] == run_events(report, run_start=False)  # what export gives, less the START sent before
    assert all(problems(event) == [] for event in received)


def test_a_failed_send_does_not_lose_the_graph_write(neptune_env, runner, record_lineage, sample_event,
                                                     lambda_context, receiver, monkeypatch) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    receiver.fail_next(503, 100)
    started = sample_event("lineage_run_started.json")
    body = json.dumps(started)
    answer = record_lineage.handler({"Records": [{"messageId": "m1", "eventSource": "aws:sqs", "body": body}]},
                                    lambda_context)
    assert answer == {"batchItemFailures": []}  # the message is done: the graph has it
    assert run_report(runner, started["run_id"]) is not None
    assert receiver.events() == []


def test_export_prints_the_runs_events_as_json_lines(tmp_path, sample_event) -> None:
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    workdir = tmp_path / "twin"
    with GraphStore(graph_path(workdir)) as store:
        for event in (started, finished):
            record_event(store, parse_lineage_event(event), "threadline")
        report = run_report(store, started["run_id"])
    assert report is not None
    cli = CliRunner()
    result = cli.invoke(app, ["export", started["run_id"], "--openlineage", "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines == run_events(report)
    assert all(problems(event) == [] for event in lines)
    assert cli.invoke(app, ["export", started["run_id"], "--workdir", str(workdir)]).exit_code == 2
    assert cli.invoke(app, ["export", "no-such-run", "--openlineage", "--workdir", str(workdir)]).exit_code == 1
