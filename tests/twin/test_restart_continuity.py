"""A restarted twin remembers its earlier executions as Step Functions does.

Step Functions keeps an execution's name taken for 90 days; the start function
relies on that to take a duplicate S3 event for what it is. A restarted twin must
not be kinder: a duplicate event of an old upload starts no second run, and
`threadline lineage rerun` still finds the old run's input.

Each twin runs in a process of its own, as `threadline up` does (moto's state is per process).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from threadline.twin.execution_store import ExecutionStore
from threadline.twin.state_files import write_json

FIRST_TWIN = """
import json, sys
from pathlib import Path
import threadline
from threadline.twin.runs import run_file
from threadline.twin.server import Twin, TwinConfig

sample = Path(threadline.__file__).parent / "data" / "sample-positions.csv"
with Twin(TwinConfig(workdir=Path(sys.argv[1]))) as twin:
    result = run_file(twin, sample, "incoming/restart.csv")
    twin.wait_for_async()
    source = json.loads(twin.client("stepfunctions").describe_execution(
        executionArn=result.execution_arn)["input"])["source"]
    print(json.dumps({"run_id": result.run_id, "status": result.status, "source": source}))
"""

SECOND_TWIN = """
import json, sys, time
from pathlib import Path
from botocore.exceptions import ClientError
from typer.testing import CliRunner
from threadline.cli.lineage import app as lineage_app
from threadline.twin.runs import wait
from threadline.twin.server import Twin, TwinConfig

run_id, source = sys.argv[2], json.loads(sys.argv[3])
with Twin(TwinConfig(workdir=Path(sys.argv[1]))) as twin:
    sfn = twin.client("stepfunctions")
    old_arn = twin.state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + run_id
    described = sfn.describe_execution(executionArn=old_arn)
    try:
        sfn.start_execution(stateMachineArn=twin.state_machine_arn, name=run_id, input=described["input"])
        again = "started"
    except ClientError as exc:
        again = {"code": exc.response["Error"]["Code"], "status": exc.response["ResponseMetadata"]["HTTPStatusCode"],
                 "message": exc.response["Error"]["Message"]}
    fresh = sfn.start_execution(stateMachineArn=twin.state_machine_arn, name="fresh-name", input="{}")
    event = {"version": "0", "id": "duplicate-1", "source": "aws.s3", "detail-type": "Object Created",
             "account": "123456789012", "region": "us-east-1", "time": "2026-01-01T00:00:00Z", "resources": [],
             "detail": {"bucket": {"name": source["bucket"]},
                        "object": {"key": source["key"], "size": source["size"], "version-id": source["version_id"],
                                   "etag": source["etag"]}}}
    answer = twin.client("lambda").invoke(FunctionName=twin.physical_id("StartRunFunction"),
                                          Payload=json.dumps(event).encode())
    duplicate = json.loads(answer["Payload"].read())
    cli = CliRunner().invoke(lineage_app, ["rerun", run_id, "--endpoint-url", twin.endpoint_url, "--json"])
    rerun = json.loads(cli.stdout) if cli.exit_code == 0 else {"exit": cli.exit_code, "output": cli.output}
    rerun_input = json.loads(sfn.describe_execution(executionArn=rerun["execution_arn"])["input"]) \\
        if "execution_arn" in rerun else None
    rerun_status = wait(twin, rerun["execution_arn"], 120).status if "execution_arn" in rerun else None
    wait(twin, fresh["executionArn"], 60)  # it ran alongside the checks above
    runs = [e["name"] for e in sfn.list_executions(stateMachineArn=twin.state_machine_arn)["executions"]]
    print(json.dumps({
        "restored": twin.restored, "problems": twin.state_problems, "described": described["status"],
        "again": again, "duplicate": duplicate, "rerun": rerun, "rerun_input": rerun_input,
        "rerun_status": rerun_status, "executions": sorted(runs)}))
"""


AFTER_THE_TWIN_STOPPED = """
import os
sys.stdout.flush()
os._exit(0)  # the twin has stopped and saved its state: tearing down moto's backends at exit only takes time
"""


def _twin(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script + AFTER_THE_TWIN_STOPPED, *args], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_restarted_twin_keeps_old_run_names_taken_and_reruns_old_runs(tmp_path: Path) -> None:
    first = _twin(FIRST_TWIN, str(tmp_path))
    assert first["status"] == "SUCCEEDED"
    run_id, source = first["run_id"], first["source"]

    second = _twin(SECOND_TWIN, str(tmp_path), run_id, json.dumps(source))

    assert second["problems"] == [] and second["restored"]["executions"] == 1
    assert second["described"] == "SUCCEEDED"  # DescribeExecution answers from the saved file
    # Closed executions keep their names whatever the input, as in Step Functions.
    assert second["again"]["code"] == "ExecutionAlreadyExists" and second["again"]["status"] == 400
    assert run_id in second["again"]["message"]
    # A duplicate S3 event of the old upload is a duplicate, not a second run.
    assert second["duplicate"] == {"status": "duplicate", "run_id": run_id, "uri": source["uri"]}
    # `threadline lineage rerun` reads the old run's input from its file and starts a new run of it.
    rerun = second["rerun"]
    assert rerun.get("resume") is True and rerun["run_id"].startswith(f"{run_id}-r"), rerun
    assert second["rerun_input"]["source"] == source and second["rerun_input"]["resume"] is True
    assert second["rerun_status"] == "SUCCEEDED"
    # Only the new name and the rerun ran in this twin (the old run is listed as it ended): no second run
    # of the old upload.
    assert second["executions"] == sorted([run_id, "fresh-name", rerun["run_id"]])


# -- the same rules on moto alone, without starting a twin ---------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/pipeline"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture
def sfn() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")


def _saved(workdir: Path, machine_arn: str, name: str, run_input: str) -> None:
    arn = f"{machine_arn.replace(':stateMachine:', ':execution:')}:{name}"
    write_json(workdir / "state" / "executions" / f"{name}.json",
               {"execution": {"executionArn": arn, "stateMachineArn": machine_arn, "name": name,
                              "status": "ABORTED", "input": run_input, "startDate": "2026-01-02T03:04:05+00:00",
                              "stopDate": "2026-01-02T03:04:09+00:00"}, "events": []})


def test_saved_names_are_taken_until_forgotten(sfn: Any, tmp_path: Path) -> None:
    machine = sfn.create_state_machine(name="restart-pipeline", definition=DEFINITION,
                                       roleArn=ROLE)["stateMachineArn"]
    other = sfn.create_state_machine(name="another", definition=DEFINITION, roleArn=ROLE)["stateMachineArn"]
    old_input = '{"source": {"bucket": "b", "key": "k"}}'
    _saved(tmp_path, machine, "old-run", old_input)
    store = ExecutionStore(tmp_path, sfn, machine)
    problems: list[str] = []
    try:
        assert store.restore(problems) == 1 and problems == []

        with pytest.raises(ClientError) as taken:
            sfn.start_execution(stateMachineArn=machine, name="old-run", input=old_input)
        assert taken.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
        assert isinstance(taken.value, sfn.exceptions.ExecutionAlreadyExists)

        described = sfn.describe_execution(executionArn=taken.value.response["Error"]["Message"].split("'")[1])
        assert (described["name"], described["status"]) == ("old-run", "ABORTED")
        assert described["startDate"].isoformat() == "2026-01-02T03:04:05+00:00"
        assert sfn.start_execution(stateMachineArn=machine, name="new-run")["executionArn"].endswith(":new-run")
        # Another state machine's names are its own.
        assert sfn.start_execution(stateMachineArn=other, name="old-run")["executionArn"].endswith(":old-run")
        with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
            sfn.describe_execution(executionArn=f"{machine.replace(':stateMachine:', ':execution:')}:never")
    finally:
        store.forget()

    assert sfn.start_execution(stateMachineArn=machine, name="old-run")["executionArn"].endswith(":old-run")
