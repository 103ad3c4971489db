"""Each function run as `sam local invoke` runs it: the template's handler and environment, an events/ file.

The twin provisions the functions from template.yaml (CodeUri, Handler, Layers,
Environment) and runs each in its own interpreter; these tests invoke them
directly through the Lambda API with the sample events.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

EVENTS = Path(__file__).resolve().parents[2] / "events"


def invoke(twin, logical_id: str, event: dict) -> tuple[dict, bool]:
    response = twin.client("lambda").invoke(FunctionName=twin.physical_id(logical_id),
                                            Payload=json.dumps(event).encode())
    return json.loads(response["Payload"].read()), "FunctionError" in response


def event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_every_template_function_runs_from_its_code_uri_with_its_environment(twin):
    functions = {spec.logical_id: spec for spec in twin.lambda_runtime.functions.values()}
    assert {"StartRunFunction", "RecordLineageFunction", "NotifySlackFunction", "PlanResumeFunction"} <= set(functions)
    start = functions["StartRunFunction"]
    assert start.code_dir.name == "start_run" and start.handler == "app.handler"
    assert start.environment["STATE_MACHINE_ARN"] == twin.state_machine_arn
    assert start.environment["INCOMING_PREFIX"] == "incoming/"


def test_start_run_with_the_sample_event_then_its_duplicate(twin):
    bucket = twin.physical_id("IncomingBucket")
    body = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()
    put = twin.client("s3").put_object(Bucket=bucket, Key="incoming/handler-sample.csv", Body=body)
    # The sample event names another account's bucket; point it at this object, as one edits an event file.
    created = event("s3_object_created.json")
    created["detail"]["bucket"]["name"] = bucket
    created["detail"]["object"].update({"key": "incoming/handler-sample.csv", "size": len(body),
                                        "etag": put["ETag"].strip('"'), "version-id": put["VersionId"]})
    first, errored = invoke(twin, "StartRunFunction", created)
    assert not errored and first["status"] in ("started", "duplicate")  # the upload's own event may have won

    duplicate = event("s3_object_created_duplicate.json")
    duplicate["detail"] = created["detail"]
    second, errored = invoke(twin, "StartRunFunction", duplicate)
    assert not errored and second["status"] == "duplicate"
    assert second["run_id"] == first["run_id"]


def test_start_run_skips_a_key_outside_the_prefix_without_failing(twin):
    created = event("s3_object_created.json")
    created["detail"]["bucket"]["name"] = twin.physical_id("IncomingBucket")
    created["detail"]["object"]["key"] = "elsewhere/positions.csv"
    result, errored = invoke(twin, "StartRunFunction", created)
    assert not errored and result["status"] == "skipped"


def test_notify_slack_with_the_sample_notice_and_alarm_writes_the_outbox(twin):
    before = set(twin.outbox.glob("*.json"))
    for name in ("notice_run_started.json", "sns_cloudwatch_alarm.json"):
        result, errored = invoke(twin, "NotifySlackFunction", event(name))
        assert not errored, result
    written = [json.loads(p.read_text()) for p in sorted(set(twin.outbox.glob("*.json")) - before)]
    sample_run = event("notice_run_started.json")["run_id"]
    # Other runs in this twin post too; pick out the two messages these events made.
    assert [m["kind"] for m in written if m.get("run_id") == sample_run] == ["run_started"]
    alarm_name = json.loads(event("sns_cloudwatch_alarm.json")["Records"][0]["Sns"]["Message"])["AlarmName"]
    assert sum(1 for m in written if alarm_name in json.dumps(m) and "ALARM" in json.dumps(m)) == 1


def test_record_lineage_with_the_sample_events_writes_the_graph(twin, graph):
    for name in ("lineage_run_started.json", "lineage_run_finished.json"):
        result, errored = invoke(twin, "RecordLineageFunction", event(name))
        assert not errored, result
    run_id = event("lineage_run_started.json")["run_id"]
    deadline = time.monotonic() + 10
    rows: list = []
    while time.monotonic() < deadline and not rows:
        rows = graph.run("MATCH (r:Run {run_id: $run_id}) RETURN r.status AS status", {"run_id": run_id})
    assert rows == [{"status": "SUCCEEDED"}]
