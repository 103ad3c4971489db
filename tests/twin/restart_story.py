"""One workdir through three twins, told once per test session and read by the restart tests.

A twin start is most of what a restart test costs, so test_twin_state.py,
test_restored_executions.py and test_restart_continuity.py read one story
instead of each restarting twins of their own:

1. `first` writes what a restart must keep: a pipeline run of the sample, a
   failed execution (`bad-input`), object versions, a run-table item and two
   dead letters, and records how it answers about its executions;
2. `second`, on the same workdir, reads all of it back unchanged, redrives the
   dead letters, starts a new execution (`after-restart`) and reruns the old run;
3. after hand edits to the saved state (`edit_by_hand`), `third` reads back the rest.

Each twin runs in a process of its own, as `threadline up` does (moto's state is
per process): `python restart_story.py first|second|third WORKDIR [FIRST-JSON]` prints
what that twin saw as JSON. Under pytest-xdist its readers run on one worker
(tests/conftest.py); should they not, the workers still share one story: the
first to ask tells it under a file lock, the others wait for its result file.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

    from threadline.twin.server import Twin, TwinConfig

INCOMING = "threadline-incomingbucket"
INTERMEDIATE = "threadline-intermediatebucket"
RUN_KEY = "incoming/restored.csv"
FAILED_NAME = "bad-input"  # started with input {}, which the state machine fails at once
NEW_NAME = "after-restart"  # the second twin's own execution, as FAILED_NAME
LINEAGE_DEAD_LETTER = json.dumps({"event": "run_started", "run_id": "dead-1", "source": {"uri": "s3://b/k.csv"}})
SLACK_DEAD_LETTER = json.dumps({"notice": "run_failed", "run_id": "dead-1"})
TWIN_TIMEOUT_S = 300
RESULT = "story.json"


@dataclass(frozen=True)
class Story:
    """What each twin saw, and the workdir they shared."""

    home: Path
    first: dict[str, Any]
    second: dict[str, Any]
    third: dict[str, Any]

    @property
    def workdir(self) -> Path:
        """As the third twin left it."""
        return self.home / "workdir"

    def after(self, twin: str) -> Path:
        """The workdir's `state` and `s3` folders as the `first` or `second` twin left them."""
        return self.home / f"after-{twin}"


class StoryFailed(RuntimeError):
    """A twin of the story did not finish; the message says which and why."""


# -- in the pytest process -------------------------------------------------------------------------------


def told(tmp_path_factory: pytest.TempPathFactory) -> Story:
    """The session's story: told by the first caller, read from its result file by every other."""
    base = tmp_path_factory.getbasetemp()
    home = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "restart-story"
    with _locked(home.with_name("restart-story.lock")):
        if not (home / RESULT).is_file():
            _tell(home)
    result = json.loads((home / RESULT).read_text(encoding="utf-8"))
    if "error" in result:
        raise StoryFailed(result["error"])
    return Story(home, result["first"], result["second"], result["third"])


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _tell(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)  # what an interrupted telling left
    home.mkdir(parents=True)
    workdir = home / "workdir"
    try:
        first = _in_own_process("first", workdir)
        _snapshot(workdir, home / "after-first")
        second = _in_own_process("second", workdir, {"arns": first["arns"], "run": first["run"]})
        _snapshot(workdir, home / "after-second")
        edit_by_hand(workdir)
        third = _in_own_process("third", workdir)
        result: dict[str, Any] = {"first": first, "second": second, "third": third}
    except StoryFailed as exc:
        result = {"error": str(exc)}
    (home / RESULT).write_text(json.dumps(result), encoding="utf-8")


def _in_own_process(twin: str, workdir: Path, *earlier: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, __file__, twin, str(workdir), *(json.dumps(e) for e in earlier)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TWIN_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise StoryFailed(f"the {twin} twin did not finish within {TWIN_TIMEOUT_S} s") from exc
    except OSError as exc:
        raise StoryFailed(f"the {twin} twin could not start: {exc}") from exc
    if done.returncode != 0:
        raise StoryFailed(f"the {twin} twin failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    try:
        found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError) as exc:
        raise StoryFailed(f"the {twin} twin printed no answer:\n{done.stdout[-1000:]}") from exc
    return found


def _snapshot(workdir: Path, into: Path) -> None:
    for folder in ("state", "s3"):
        shutil.copytree(workdir / folder, into / folder)


def edit_by_hand(workdir: Path) -> None:
    """What the third twin must survive: an entry made nonsense, a file deleted, a store truncated."""
    manifest_path = workdir / "state" / "s3.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["buckets"][INCOMING]["notes/broken.txt"] = [{"nonsense": True}]
    manifest["buckets"][INCOMING]["notes/lost.txt"] = [{"version_id": "v-lost", "file": "s3/nowhere/lost.txt"}]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    (workdir / "state" / "sqs.json").write_text('{"queues": {', encoding="utf-8")


# -- in each twin's process ------------------------------------------------------------------------------


def first_twin(workdir: Path) -> dict[str, Any]:
    import threadline
    from threadline.twin.runs import run_file
    from threadline.twin.server import Twin, TwinConfig

    sample = Path(threadline.__file__).parent / "data" / "sample-positions.csv"
    with Twin(TwinConfig(workdir=workdir)) as twin:
        sfn, sqs = twin.client("stepfunctions"), twin.client("sqs")
        run = run_file(twin, sample, RUN_KEY)
        failed = _finished(twin, sfn.start_execution(stateMachineArn=twin.state_machine_arn, name=FAILED_NAME,
                                                     input="{}")["executionArn"])
        versions = _write_objects(twin)
        twin.wait_for_async()
        sqs.send_message(QueueUrl=twin.physical_id("LineageDeadLetterQueue"), MessageBody=LINEAGE_DEAD_LETTER)
        sqs.send_message(QueueUrl=twin.physical_id("NotifySlackDeadLetterQueue"), MessageBody=SLACK_DEAD_LETTER,
                         MessageAttributes={"ErrorMessage": {"DataType": "String", "StringValue": "Slack 502"}})
        saved_while_running = _saved_while_running(twin)
        source = json.loads(sfn.describe_execution(executionArn=run.execution_arn)["input"])["source"]
        arns = [run.execution_arn, failed]
        return {"restored": twin.restored, **versions, "saved_while_running": saved_while_running,
                "savers": sorted(t.name for t in threading.enumerate() if t.name.endswith(("-store", "-state"))),
                "run": {"arn": run.execution_arn, "id": run.run_id, "status": run.status, "source": source},
                "arns": arns, "answers": answers(twin, arns)}


def second_twin(workdir: Path, first: dict[str, Any]) -> dict[str, Any]:
    """`first` holds the first twin's `arns` and `run`."""
    from threadline.lineage.redrive import redrive
    from threadline.twin.server import Twin

    with Twin(_without_jobs(workdir)) as twin:
        sfn = twin.client("stepfunctions")
        found: dict[str, Any] = {"restored": twin.restored, "problems": twin.state_problems}
        found["slack_dead_letters"] = _received(twin, "NotifySlackDeadLetterQueue")
        found["redriven"] = redrive(twin.client("sqs"), stack=twin.config.stack_name).messages
        found["before"] = answers(twin, first["arns"])  # before any new execution
        new = sfn.start_execution(stateMachineArn=twin.state_machine_arn, name=NEW_NAME, input="{}")["executionArn"]
        found["graph"] = _graph_from_api(twin, first["run"]["id"])  # while the new execution runs
        _finished(twin, new)
        twin.wait_for_async()
        found.update(new=new, after=answers(twin, first["arns"]), start_function_calls=_start_calls(twin))
        found.update(_old_name_taken(twin, first["run"]))
        found.update(_rerun(twin, first["run"]["id"]))
        _quiet(twin)  # the lineage function writes the report's cost section after the rerun ends
        found["executions"] = sorted(e["name"] for e in sfn.list_executions(
            stateMachineArn=twin.state_machine_arn)["executions"])
        found["objects"] = _object_versions(twin)
        return found


def third_twin(workdir: Path) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    from threadline.twin.server import Twin

    with Twin(_without_jobs(workdir)) as twin:
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
        return {
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
            "objects": _object_versions(twin), "start_function_calls": _start_calls(twin),
        }


def _without_jobs(workdir: Path) -> TwinConfig:
    """For a twin that runs no Batch job (the rerun reuses every step): no warm job interpreter, whose
    imports of the jobs' libraries at start would only compete with the twin's start for the CPU."""
    from threadline.twin.server import TwinConfig

    return TwinConfig(workdir=workdir, warm_job_processes=False)


def answers(twin: Twin, arns: list[str]) -> dict[str, Any]:
    """What a twin answers about these executions, as JSON (datetimes as UTC ISO text) to compare."""
    sfn, machine = twin.client("stepfunctions"), twin.state_machine_arn

    def listed(**params: Any) -> list[list[dict[str, Any]]]:
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine, **params)
        return [list(page["executions"]) for page in pages]

    def history(arn: str, **params: Any) -> list[list[dict[str, Any]]]:
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn, **params)
        return [page["events"] for page in pages]

    found: dict[str, Any] = {
        "all": listed(), "by_one": listed(PaginationConfig={"PageSize": 1}),
        "succeeded": listed(statusFilter="SUCCEEDED"), "failed": listed(statusFilter="FAILED"),
        "running": listed(statusFilter="RUNNING"),
        "described": {arn: sfn.describe_execution(executionArn=arn) for arn in arns},
        "history": {arn: history(arn) for arn in arns},
        "reversed": {arn: history(arn, reverseOrder=True) for arn in arns},
        "by_seven": {arn: history(arn, PaginationConfig={"PageSize": 7}) for arn in arns},
        "reversed_by_seven": {arn: history(arn, reverseOrder=True, PaginationConfig={"PageSize": 7})
                              for arn in arns},
    }
    for described in found["described"].values():
        described.pop("ResponseMetadata")
    as_json: dict[str, Any] = json.loads(json.dumps(found, default=_utc_text))
    return as_json


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _finished(twin: Twin, arn: str) -> str:
    sfn = twin.client("stepfunctions")
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        time.sleep(0.05)
    return arn


def _write_objects(twin: Twin) -> dict[str, str]:
    """Versions, a delete marker, a key that is a file and a folder, and an item; outside incoming/, no run starts."""
    s3, ddb = twin.client("s3"), twin.client("dynamodb")
    incoming, intermediate = twin.physical_id("IncomingBucket"), twin.physical_id("IntermediateBucket")
    old = s3.put_object(Bucket=incoming, Key="notes/a.txt", Body=b"first")["VersionId"]
    new = s3.put_object(Bucket=incoming, Key="notes/a.txt", Body=b"second", ContentType="text/plain",
                        Metadata={"owner": "ops"})["VersionId"]
    s3.put_object(Bucket=incoming, Key="notes/gone.txt", Body=b"deleted later")
    s3.delete_object(Bucket=incoming, Key="notes/gone.txt")
    s3.put_object(Bucket=intermediate, Key="runs/x/a", Body=b"a file and a folder")
    s3.put_object(Bucket=intermediate, Key="runs/x/a/b", Body=b"inside")
    ddb.put_item(TableName=twin.physical_id("RunTable"),
                 Item={"run_id": {"S": "kept-1"}, "status": {"S": "SUCCEEDED"}, "blob": {"B": b"\x00\x01"}})
    return {"old": old, "new": new}


def _saved_while_running(twin: Twin) -> list[str]:
    """The message bodies in sqs.json once it holds the two dead letters: saved on the twin's rhythm, not at stop."""
    expected = sorted([LINEAGE_DEAD_LETTER, SLACK_DEAD_LETTER])
    deadline = time.monotonic() + 60
    while (saved := _saved_bodies(twin.workdir / "state" / "sqs.json")) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return saved


def _saved_bodies(path: Path) -> list[str]:
    try:
        return sorted(m["body"] for ms in json.loads(path.read_text())["queues"].values() for m in ms)
    except (OSError, ValueError):
        return []


def _received(twin: Twin, queue: str) -> list[str]:
    sqs, bodies = twin.client("sqs"), list[str]()
    while got := sqs.receive_message(QueueUrl=twin.physical_id(queue), MaxNumberOfMessages=10,
                                     VisibilityTimeout=60).get("Messages", []):
        bodies.extend(m["Body"] for m in got)
    return bodies


def _graph_from_api(twin: Twin, run_id: str) -> dict[str, Any]:
    """`threadline graph` of an earlier run with no saved files to fall back on: the API alone answers."""
    from typer.testing import CliRunner

    from threadline.cli.app import app

    page = twin.workdir / "old.html"
    drawn = CliRunner().invoke(app, ["graph", run_id, "--endpoint-url", twin.endpoint_url,
                                     "--workdir", str(twin.workdir / "elsewhere"), "--out", str(page)])
    return {"exit": drawn.exit_code, "from_api": twin.endpoint_url in drawn.output, "output": drawn.output,
            "page": page.is_file()}


def _start_calls(twin: Twin) -> int:
    assert twin.lambda_runtime is not None
    return sum(1 for i in twin.lambda_runtime.invocations if i.function == "StartRunFunction")


def _old_name_taken(twin: Twin, run: dict[str, Any]) -> dict[str, Any]:
    """The old run's name, by StartExecution and by a duplicate S3 event of its upload."""
    from botocore.exceptions import ClientError

    sfn, source = twin.client("stepfunctions"), run["source"]
    described = sfn.describe_execution(executionArn=run["arn"])
    try:
        sfn.start_execution(stateMachineArn=twin.state_machine_arn, name=run["id"], input=described["input"])
        again: Any = "started"
    except ClientError as exc:
        again = {"code": exc.response["Error"]["Code"], "status": exc.response["ResponseMetadata"]["HTTPStatusCode"],
                 "message": exc.response["Error"]["Message"]}
    event = {"version": "0", "id": "duplicate-1", "source": "aws.s3", "detail-type": "Object Created",
             "account": "123456789012", "region": "us-east-1", "time": "2026-01-01T00:00:00Z", "resources": [],
             "detail": {"bucket": {"name": source["bucket"]},
                        "object": {"key": source["key"], "size": source["size"], "version-id": source["version_id"],
                                   "etag": source["etag"]}}}
    answer = twin.client("lambda").invoke(FunctionName=twin.physical_id("StartRunFunction"),
                                          Payload=json.dumps(event).encode())
    return {"described": described["status"], "again": again, "duplicate": json.loads(answer["Payload"].read())}


def _rerun(twin: Twin, run_id: str) -> dict[str, Any]:
    """`threadline lineage rerun` of the old run, and how the new run went."""
    from typer.testing import CliRunner

    from threadline.cli.lineage import app as lineage_app
    from threadline.twin.runs import wait

    cli = CliRunner().invoke(lineage_app, ["rerun", run_id, "--endpoint-url", twin.endpoint_url, "--json"])
    if cli.exit_code != 0:
        return {"rerun": {"exit": cli.exit_code, "output": cli.output}, "rerun_input": None, "rerun_status": None}
    rerun = json.loads(cli.stdout)
    described = twin.client("stepfunctions").describe_execution(executionArn=rerun["execution_arn"])
    return {"rerun": rerun, "rerun_input": json.loads(described["input"]),
            "rerun_status": wait(twin, rerun["execution_arn"], 120).status}


def _quiet(twin: Twin) -> None:
    """Every async invocation done and every event-source queue empty: nothing more writes."""
    assert twin.event_sources is not None
    if not (twin.wait_for_async(60) and twin.event_sources.wait_idle(60) and twin.wait_for_async(60)):
        raise RuntimeError("the twin did not settle within 60 s")


def _object_versions(twin: Twin) -> list[list[str]]:
    """Every object version in every bucket, as [bucket, key, version id]."""
    s3, found = twin.client("s3"), list[list[str]]()
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            found.extend([bucket, v["Key"], v["VersionId"]] for v in page.get("Versions", []))
    return sorted(found)


TWINS: dict[str, Callable[..., dict[str, Any]]] = {"first": first_twin, "second": second_twin,
                                                    "third": third_twin}


if __name__ == "__main__":
    found = TWINS[sys.argv[1]](Path(sys.argv[2]), *(json.loads(arg) for arg in sys.argv[3:]))
    print(json.dumps(found))
    sys.stdout.flush()
    os._exit(0)  # the twin has stopped and saved its state: tearing down moto's backends at exit only takes time
