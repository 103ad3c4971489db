"""A restarted twin remembers its earlier executions as Step Functions does.

Step Functions keeps an execution's name taken for 90 days; the start function
relies on that to take a duplicate S3 event for what it is. A restarted twin must
not be kinder: a duplicate event of an old upload starts no second run, and
`threadline lineage rerun` still finds the old run's input.

The twins are the first two of the restart story (restart_story.py), each in a process of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from threadline.twin.execution_store import ExecutionStore
from threadline.twin.state_files import write_json

from restart_story import FAILED_NAME, NEW_NAME, Story


def test_a_restarted_twin_keeps_old_run_names_taken_and_reruns_old_runs(restart_story: Story) -> None:
    first, second = restart_story.first["run"], restart_story.second
    assert first["status"] == "SUCCEEDED"
    run_id, source = first["id"], first["source"]

    # The second twin restored the run and the failed execution the first one left.
    assert second["problems"] == [] and second["restored"]["executions"] == 2
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
    # Only the new name and the rerun ran in this twin (the earlier ones are listed as they ended): no second
    # run of the old upload.
    assert second["executions"] == sorted([run_id, FAILED_NAME, NEW_NAME, rerun["run_id"]])


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
