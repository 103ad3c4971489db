"""The twin's state outlives it: a restart in the same workdir continues where the last one stopped.

Each twin runs in a process of its own, as `threadline up` does (moto's state is per process).
One workdir goes through three twins: the first writes objects, items, an
execution and dead letters; the second finds the dead letters and redrives
them; the third, after hand edits to the saved state, finds the rest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

INCOMING = "threadline-incomingbucket"
INTERMEDIATE = "threadline-intermediatebucket"

FIRST_TWIN = """
import json, sys, threading, time
from pathlib import Path
from threadline.twin.server import Twin, TwinConfig

def saved_bodies(path):
    try:
        return sorted(m["body"] for ms in json.loads(path.read_text())["queues"].values() for m in ms)
    except (OSError, ValueError):
        return []

with Twin(TwinConfig(workdir=Path(sys.argv[1]))) as twin:
    s3, ddb, sfn = twin.client("s3"), twin.client("dynamodb"), twin.client("stepfunctions")
    incoming, intermediate = twin.physical_id("IncomingBucket"), twin.physical_id("IntermediateBucket")
    # Not under incoming/ nor .csv: no run starts for these.
    old = s3.put_object(Bucket=incoming, Key="notes/a.txt", Body=b"first")["VersionId"]
    new = s3.put_object(Bucket=incoming, Key="notes/a.txt", Body=b"second", ContentType="text/plain",
                        Metadata={"owner": "ops"})["VersionId"]
    s3.put_object(Bucket=incoming, Key="notes/gone.txt", Body=b"deleted later")
    s3.delete_object(Bucket=incoming, Key="notes/gone.txt")
    s3.put_object(Bucket=intermediate, Key="runs/x/a", Body=b"a file and a folder")
    s3.put_object(Bucket=intermediate, Key="runs/x/a/b", Body=b"inside")
    ddb.put_item(TableName=twin.physical_id("RunTable"),
                 Item={"run_id": {"S": "kept-1"}, "status": {"S": "SUCCEEDED"}, "blob": {"B": b"\\x00\\x01"}})
    arn = sfn.start_execution(stateMachineArn=twin.state_machine_arn, name="bad-input", input="{}")["executionArn"]
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        time.sleep(0.05)
    twin.wait_for_async()
    sqs = twin.client("sqs")
    sqs.send_message(QueueUrl=twin.physical_id("LineageDeadLetterQueue"), MessageBody=sys.argv[2])
    sqs.send_message(QueueUrl=twin.physical_id("NotifySlackDeadLetterQueue"), MessageBody=sys.argv[3],
                     MessageAttributes={"ErrorMessage": {"DataType": "String", "StringValue": "Slack 502"}})
    # Saved on the twin's one rhythm while it runs, not only at stop.
    deadline = time.monotonic() + 60
    while saved_bodies(twin.workdir / "state" / "sqs.json") != sorted(sys.argv[2:4]) and time.monotonic() < deadline:
        time.sleep(0.1)
    print(json.dumps({"old": old, "new": new, "restored": twin.restored,
                      "saved_while_running": saved_bodies(twin.workdir / "state" / "sqs.json"),
                      "savers": sorted(t.name for t in threading.enumerate()
                                       if t.name.endswith(("-store", "-state")))}))
"""

QUEUES_TWIN = """
import json, sys
from pathlib import Path
from threadline.lineage.redrive import redrive
from threadline.twin.server import Twin, TwinConfig

with Twin(TwinConfig(workdir=Path(sys.argv[1]))) as twin:
    sqs = twin.client("sqs")
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=twin.physical_id("NotifySlackDeadLetterQueue"),
                                  MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
        if not got:
            break
        bodies.extend(m["Body"] for m in got)
    moved = redrive(sqs, stack=twin.config.stack_name)  # what `threadline lineage redrive` does
    print(json.dumps({"restored": twin.restored["messages"], "slack_dead_letters": bodies,
                      "redriven": moved.messages}))
"""

SECOND_TWIN = """
import json, sys
from pathlib import Path
from botocore.exceptions import ClientError
from threadline.twin.server import Twin, TwinConfig

with Twin(TwinConfig(workdir=Path(sys.argv[1]))) as twin:
    s3, ddb = twin.client("s3"), twin.client("dynamodb")
    incoming, intermediate = twin.physical_id("IncomingBucket"), twin.physical_id("IntermediateBucket")
    listed = s3.list_object_versions(Bucket=incoming, Prefix="notes/")
    versions = {v["VersionId"]: s3.get_object(Bucket=incoming, Key=v["Key"], VersionId=v["VersionId"])
                for v in listed["Versions"] if v["Key"] == "notes/a.txt"}
    try:
        s3.head_object(Bucket=incoming, Key="notes/gone.txt")
        gone = "still there"
    except ClientError as exc:
        gone = exc.response["Error"]["Code"]
    item = ddb.get_item(TableName=twin.physical_id("RunTable"), Key={"run_id": {"S": "kept-1"}})["Item"]
    starts = [i for i in twin.lambda_runtime.invocations if i.function == "StartRunFunction"]
    print(json.dumps({
        "restored": twin.restored, "problems": twin.state_problems,
        "versions": {vid: {"body": got["Body"].read().decode(), "metadata": got["Metadata"],
                           "type": got["ContentType"]} for vid, got in versions.items()},
        "latest": [v["VersionId"] for v in listed["Versions"] if v["IsLatest"] and v["Key"] == "notes/a.txt"],
        "markers": [m["Key"] for m in listed.get("DeleteMarkers", [])], "gone": gone,
        "folder_file": s3.get_object(Bucket=intermediate, Key="runs/x/a")["Body"].read().decode(),
        "inside": s3.get_object(Bucket=intermediate, Key="runs/x/a/b")["Body"].read().decode(),
        "item": {"status": item["status"]["S"], "blob": list(item["blob"]["B"])},
        "executions": [(e["name"], e["status"]) for e in twin.client("stepfunctions").list_executions(
            stateMachineArn=twin.state_machine_arn)["executions"]],
        "start_function_calls": len(starts),
    }))
"""


AFTER_THE_TWIN_STOPPED = """
import os
sys.stdout.flush()
os._exit(0)  # the twin has stopped and saved its state: tearing down moto's backends at exit only takes time
"""


def _twin(script: str, workdir: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script + AFTER_THE_TWIN_STOPPED, str(workdir), *args],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_objects_versions_items_dead_letters_and_executions_survive_restarts(tmp_path: Path) -> None:
    lineage_event = json.dumps({"event": "run_started", "run_id": "dead-1", "source": {"uri": "s3://b/k.csv"}})
    notice = json.dumps({"notice": "run_failed", "run_id": "dead-1"})

    first = _twin(FIRST_TWIN, tmp_path, lineage_event, notice)
    assert first["restored"] == {"objects": 0, "items": 0, "messages": 0, "executions": 0}
    assert first["saved_while_running"] == sorted([lineage_event, notice]) and first["savers"] == ["twin-state"]
    assert (tmp_path / "state" / "sqs.json").exists()

    # What a person finds in the workdir with the twin stopped.
    assert (tmp_path / "s3" / INCOMING / "notes" / "a.txt").read_bytes() == b"second"
    assert (tmp_path / "s3" / INTERMEDIATE / "runs" / "x" / "a" / "b").read_bytes() == b"inside"
    assert not (tmp_path / "s3" / INCOMING / "notes" / "gone.txt").exists()
    saved = json.loads((tmp_path / "state" / "executions" / "bad-input.json").read_text(encoding="utf-8"))
    assert saved["execution"]["status"] == "FAILED" and saved["execution"]["name"] == "bad-input"
    assert saved["events"][0]["type"] == "ExecutionStarted" and isinstance(saved["events"][0]["timestamp"], str)
    assert saved["events"][-1]["type"] == "ExecutionFailed"

    # Dead letters outlive the twin: the next one finds them, and a redrive works.
    queues = _twin(QUEUES_TWIN, tmp_path)
    assert queues == {"restored": 2, "slack_dead_letters": [notice], "redriven": 1}

    # Hand edits the next twin must survive: an entry made nonsense, a file deleted, a store truncated.
    manifest_path = tmp_path / "state" / "s3.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["buckets"][INCOMING]["notes/broken.txt"] = [{"nonsense": True}]
    manifest["buckets"][INCOMING]["notes/lost.txt"] = [{"version_id": "v-lost", "file": "s3/nowhere/lost.txt"}]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    (tmp_path / "state" / "sqs.json").write_text('{"queues": {', encoding="utf-8")

    second = _twin(SECOND_TWIN, tmp_path)

    assert len(second["problems"]) == 3, second["problems"]
    assert "notes/broken.txt not restored" in second["problems"][0] and "bad entry" in second["problems"][0]
    assert "notes/lost.txt (version v-lost) not restored" in second["problems"][1]
    assert "sqs.json cannot be read" in second["problems"][2] and "moved to" in second["problems"][2]
    assert [p.name.split(".corrupt-")[0] for p in (tmp_path / "state").glob("*.corrupt-*")] == ["sqs.json"]
    # Five object versions; our item, and the record the finaliser closed for the failed execution.
    assert second["restored"]["objects"] == 5 and second["restored"]["items"] >= 1
    assert second["restored"]["messages"] == 0 and second["restored"]["executions"] == 1
    assert second["versions"] == {first["old"]: {"body": "first", "metadata": {}, "type": "binary/octet-stream"},
                                  first["new"]: {"body": "second", "metadata": {"owner": "ops"},
                                                 "type": "text/plain"}}
    assert second["latest"] == [first["new"]]
    assert second["markers"] == ["notes/gone.txt"] and second["gone"] == "404"
    assert second["folder_file"] == "a file and a folder" and second["inside"] == "inside"
    assert second["item"] == {"status": "SUCCEEDED", "blob": [0, 1]}
    # Restoring sends no S3 events: nothing starts, nothing reruns (the old execution is listed as it ended).
    assert second["executions"] == [["bad-input", "FAILED"]] and second["start_function_calls"] == 0
    assert (tmp_path / "state" / "executions" / "bad-input.json").exists()
