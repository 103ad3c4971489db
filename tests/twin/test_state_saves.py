"""A save of an idle twin writes nothing; a save after a change writes what a first save would."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from threadline.twin.execution_store import ExecutionStore, executions_dir
from threadline.twin.queue_store import QueueStore
from threadline.twin.s3_store import S3Store
from threadline.twin.server import ACCOUNT_ID, REGION
from threadline.twin.state_files import ChangedFile, json_bytes
from threadline.twin.table_store import TableStore

ROLE = "arn:aws:iam::123456789012:role/pipeline"
WAITS = json.dumps({"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 600, "End": True}}})


def _identity(path: Path) -> tuple[int, int]:
    """A file's inode and change time: every write (a temporary file renamed over it) changes the inode."""
    stat = path.stat()
    return stat.st_ino, stat.st_ctime_ns


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def _manifest_of_a_first_save(workdir: Path) -> Any:
    fresh = S3Store(workdir, ACCOUNT_ID)
    fresh.save()
    return json.loads(fresh.manifest.read_text(encoding="utf-8"))


def test_s3_saves_only_what_changed_and_agree_with_a_first_save(aws, tmp_path):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="plain")
    s3.create_bucket(Bucket="kept")
    s3.put_bucket_versioning(Bucket="kept", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="plain", Key="runs/a.csv", Body=b"a")
    s3.put_object(Bucket="kept", Key="report.json", Body=b"v1", Metadata={"run": "1"})
    store = S3Store(tmp_path / "work", ACCOUNT_ID)
    store.save()
    before = _identity(store.manifest)
    store.save()
    assert _identity(store.manifest) == before  # nothing changed: nothing written

    changes = [
        lambda: s3.put_object(Bucket="kept", Key="report.json", Body=b"v2"),  # a second version
        lambda: s3.put_object(Bucket="plain", Key="runs/a.csv", Body=b"a, again"),  # replaced in place
        lambda: s3.put_object(Bucket="plain", Key="runs", Body=b"now a folder's name too"),
        lambda: s3.put_object(Bucket="plain", Key="runs/a.csv/inner", Body=b"a.csv is a folder now"),
        lambda: s3.delete_object(Bucket="kept", Key="report.json"),  # a delete marker
        lambda: s3.delete_object(Bucket="plain", Key="runs"),  # gone: its file too
    ]
    for index, change in enumerate(changes):
        change()
        store.save()
        assert _identity(store.manifest) != before, index
        before = _identity(store.manifest)
        assert json.loads(store.manifest.read_text(encoding="utf-8")) == \
            _manifest_of_a_first_save(tmp_path / f"fresh-{index}"), index
    work = tmp_path / "work"
    assert (work / "s3" / "plain" / "runs" / "a.csv" / "inner").read_bytes() == b"a.csv is a folder now"
    assert not (work / "s3" / "plain" / "runs" / "a.csv").is_file()
    files = {entry["file"] for keys in json.loads(store.manifest.read_text(encoding="utf-8"))["buckets"].values()
             for versions in keys.values() for entry in versions if "file" in entry}
    on_disk = {path.relative_to(work).as_posix() for path in work.rglob("*")
               if path.is_file() and path.parent.name != "state"}
    assert on_disk == files  # no file of a replaced or deleted object is left behind


def test_table_and_queue_files_are_rewritten_only_when_their_content_changes(aws, tmp_path):
    dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
    dynamodb.create_table(TableName="runs", AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    dynamodb.put_item(TableName="runs", Item={"id": {"S": "run-1"}, "status": {"S": "RUNNING"}})
    queue = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    tables = TableStore(tmp_path / "dynamodb.json", dynamodb, ACCOUNT_ID, REGION)
    queues = QueueStore(tmp_path / "sqs.json", ACCOUNT_ID, REGION)
    for store in (tables, queues):
        store.save()
    table_file, queue_file = _identity(tables.path), _identity(queues.path)
    for store in (tables, queues):
        store.save()
    assert (_identity(tables.path), _identity(queues.path)) == (table_file, queue_file)

    dynamodb.update_item(TableName="runs", Key={"id": {"S": "run-1"}}, UpdateExpression="SET #s = :s",
                         ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "DONE"}})
    sqs.send_message(QueueUrl=queue, MessageBody="lost event")
    for store in (tables, queues):
        store.save()
    assert _identity(tables.path) != table_file and _identity(queues.path) != queue_file
    saved_tables = json.loads(tables.path.read_text(encoding="utf-8"))
    assert saved_tables == {"tables": {"runs": [{"id": {"S": "run-1"}, "status": {"S": "DONE"}}]}}
    assert json.loads(queues.path.read_text(encoding="utf-8")) == \
        {"queues": {"dead-letters": [{"body": "lost event", "attributes": {}}]}}


def test_a_changed_file_is_written_when_its_bytes_differ(tmp_path):
    changed = ChangedFile(tmp_path / "state" / "x.json")
    assert changed.write(b"1") and not changed.write(b"1")
    assert changed.write(b"2") and changed.path.read_bytes() == b"2"


@pytest.fixture
def interpreted() -> Iterator[Any]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name=REGION, aws_access_key_id="testing",
                           aws_secret_access_key="testing")


def test_a_running_execution_is_rewritten_when_it_moves_and_once_more_when_it_ends(interpreted, tmp_path):
    sfn = interpreted
    machine = sfn.create_state_machine(name="waits", definition=WAITS, roleArn=ROLE)["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="holding")["executionArn"]
    store = ExecutionStore(tmp_path, sfn, machine)
    assert store.restore([]) == 0  # as the twin does: moto's history now pages as Step Functions' does
    path = executions_dir(tmp_path) / "holding.json"
    deadline = time.monotonic() + 60
    while "WaitStateEntered" not in [event["type"] for event in sfn.get_execution_history(executionArn=arn)["events"]]:
        assert time.monotonic() < deadline, "the execution never reached its Wait state"
        time.sleep(0.05)
    store.save()
    waiting = _identity(path)
    store.save()
    assert _identity(path) == waiting  # still waiting, no new event: not written again
    assert json.loads(path.read_text(encoding="utf-8"))["execution"]["status"] == "RUNNING"

    sfn.stop_execution(executionArn=arn)
    while sfn.describe_execution(executionArn=arn)["status"] != "ABORTED":  # the interpreter stops it a moment later
        assert time.monotonic() < deadline, "the execution never stopped"
        time.sleep(0.05)
    store.save()
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["execution"]["status"] == "ABORTED" and saved["events"][-1]["type"] == "ExecutionAborted"
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    assert saved["events"] == json.loads(json_bytes(history))  # the events written while it ran, then the rest
    ended = _identity(path)
    store.save()
    assert _identity(path) == ended
    store.forget()
