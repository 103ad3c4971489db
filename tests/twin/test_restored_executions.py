"""A restarted twin answers ListExecutions and GetExecutionHistory for the executions of earlier twins.

They are answered from `<workdir>/state/executions/` exactly as the twin that ran
them answered, paged as Step Functions pages, and they never run again. The
twins are the first two of the restart story (restart_story.py), each in a
process of its own; the paging rules are also checked on moto alone, without a twin.
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

from threadline.twin.execution_store import ABORTED_ERROR, ExecutionStore, executions_dir
from threadline.twin.state_files import write_json

from restart_story import FAILED_NAME, NEW_NAME, Story


def _joined(pages: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [item for page in pages for item in page]


def _names(pages: list[list[dict[str, Any]]]) -> list[str]:
    return [execution["name"] for execution in _joined(pages)]


def _saved_executions(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in executions_dir(folder).glob("*.json")}


def test_a_restarted_twin_lists_and_pages_earlier_executions_as_their_twin_did(restart_story: Story) -> None:
    first, second = restart_story.first, restart_story.second
    was = first["answers"]
    run_arn, bad_arn = first["arns"]
    assert [e["executionArn"] for e in was["all"][0]] == [bad_arn, run_arn]  # newest first
    assert [len(page) for page in was["by_one"]] == [1, 1] and was["by_one"][0] + was["by_one"][1] == was["all"][0]
    assert _names(was["succeeded"]) == [run_arn.rsplit(":", 1)[1]] and _names(was["failed"]) == [FAILED_NAME]
    assert _names(was["running"]) == []
    # A pipeline run's history is longer than one page of seven, in either order.
    events = was["history"][run_arn][0]
    assert len(events) > 14 and [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert was["reversed"][run_arn] == [events[::-1]]
    assert len(was["by_seven"][run_arn]) > 2 and _joined(was["by_seven"][run_arn]) == events
    assert _joined(was["reversed_by_seven"][run_arn]) == events[::-1]

    assert second["problems"] == [] and second["restored"]["executions"] == 2
    assert second["before"] == was  # every answer, before any new run
    graph = second["graph"]
    assert graph["exit"] == 0 and graph["from_api"] and graph["page"], graph["output"]
    # A new run comes first; the earlier ones follow, answered as before.
    listed = second["after"]["all"][0]
    assert listed[0]["executionArn"] == second["new"] and listed[0]["status"] == "FAILED"
    assert listed[1:] == was["all"][0]
    assert _names(second["after"]["by_one"]) == [NEW_NAME, FAILED_NAME, run_arn.rsplit(":", 1)[1]]
    assert _names(second["after"]["failed"]) == [NEW_NAME, FAILED_NAME]
    assert second["after"]["succeeded"] == was["succeeded"] and _names(second["after"]["running"]) == []
    for key in ("described", "history", "reversed", "by_seven", "reversed_by_seven"):
        assert second["after"][key] == was[key], key
    # They never ran again: no start, and their files are as the first twin left them.
    assert second["start_function_calls"] == 0
    saved, kept = _saved_executions(restart_story.after("first")), _saved_executions(restart_story.after("second"))
    assert {name: kept.get(name) for name in saved} == saved
    # The only new files are the second twin's own executions: the new one and the rerun.
    assert sorted(kept.keys() - saved.keys()) == sorted([f"{NEW_NAME}.json", f"{second['rerun']['run_id']}.json"])


# -- the same rules on moto alone, without starting a twin ---------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/pipeline"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture
def sfn() -> Iterator[Any]:
    # moto's default, pinned: an earlier twin in this process turns execution on for the whole process.
    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        yield boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")


@pytest.fixture
def machine(sfn: Any) -> str:
    return str(sfn.create_state_machine(name="pipeline", definition=DEFINITION, roleArn=ROLE)["stateMachineArn"])


def _save(workdir: Path, machine: str, name: str, status: str, day: int, events: int = 3) -> str:
    """An execution file as an earlier twin wrote it: started on `day` of January 2026, `events` events."""
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{name}"
    execution = {"executionArn": arn, "stateMachineArn": machine, "name": name, "status": status, "input": "{}",
                 "startDate": f"2026-01-{day:02d}T03:04:05.123000+00:00"}
    if status != "RUNNING":
        execution["stopDate"] = f"2026-01-{day:02d}T03:04:09+00:00"
    history = [{"id": index, "previousEventId": index - 1, "type": "PassStateEntered",
                "timestamp": f"2026-01-{day:02d}T03:04:0{5 + index % 4}+00:00"} for index in range(1, events + 1)]
    write_json(executions_dir(workdir) / f"{name}.json", {"execution": execution, "events": history})
    return arn


@pytest.fixture
def restored(sfn: Any, machine: str, tmp_path: Path) -> Iterator[ExecutionStore]:
    _save(tmp_path, machine, "old-1", "SUCCEEDED", 1)
    _save(tmp_path, machine, "old-3", "FAILED", 3, events=12)
    _save(tmp_path, machine, "old-2", "ABORTED", 2)
    store = ExecutionStore(tmp_path, sfn, machine)
    problems: list[str] = []
    try:
        assert store.restore(problems) == 3 and problems == []
        yield store
    finally:
        store.forget()


def _all(sfn: Any, machine: str, size: int, **params: Any) -> list[list[str]]:
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine,
                                                          PaginationConfig={"PageSize": size}, **params)
    return [[execution["name"] for execution in page["executions"]] for page in pages]


def test_earlier_and_live_executions_are_listed_together_newest_first(sfn: Any, machine: str,
                                                                       restored: ExecutionStore) -> None:
    sfn.start_execution(stateMachineArn=machine, name="live-1")
    sfn.start_execution(stateMachineArn=machine, name="live-2")
    names = _all(sfn, machine, 100)[0]
    assert names[2:] == ["old-3", "old-2", "old-1"] and sorted(names[:2]) == ["live-1", "live-2"]
    assert _all(sfn, machine, 2) == [names[:2], names[2:4], names[4:]]
    assert _all(sfn, machine, 1, statusFilter="ABORTED") == [["old-2"]]
    assert sorted(_all(sfn, machine, 100, statusFilter="RUNNING")[0]) == ["live-1", "live-2"]  # moto's stay so
    listed = sfn.list_executions(stateMachineArn=machine, statusFilter="FAILED")["executions"]
    assert [(e["name"], e["startDate"].isoformat(), e["stopDate"].isoformat()) for e in listed] == \
        [("old-3", "2026-01-03T03:04:05.123000+00:00", "2026-01-03T03:04:09+00:00")]
    # Another state machine lists none of them.
    other = sfn.create_state_machine(name="other", definition=DEFINITION, roleArn=ROLE)["stateMachineArn"]
    assert sfn.list_executions(stateMachineArn=other)["executions"] == []


def test_a_page_token_must_come_from_the_same_listing(sfn: Any, machine: str, restored: ExecutionStore) -> None:
    first = sfn.list_executions(stateMachineArn=machine, maxResults=2)
    assert [e["name"] for e in first["executions"]] == ["old-3", "old-2"]
    token = first["nextToken"]  # after old-2, which the FAILED listing does not have
    with pytest.raises(ClientError) as changed:
        sfn.list_executions(stateMachineArn=machine, statusFilter="FAILED", nextToken=token)
    assert changed.value.response["Error"]["Code"] == "InvalidToken"
    with pytest.raises(ClientError) as garbled:
        sfn.list_executions(stateMachineArn=machine, nextToken="not-a-token")
    assert garbled.value.response["Error"]["Code"] == "InvalidToken"
    with pytest.raises(ClientError) as too_many:
        sfn.list_executions(stateMachineArn=machine, maxResults=1001)
    assert too_many.value.response["Error"]["Code"] == "ValidationException"


def test_an_earlier_history_pages_in_both_orders(sfn: Any, machine: str, restored: ExecutionStore) -> None:
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:old-3"

    def ids(size: int, **params: Any) -> list[list[int]]:
        pages = sfn.get_paginator("get_execution_history").paginate(
            executionArn=arn, PaginationConfig={"PageSize": size}, **params)
        return [[event["id"] for event in page["events"]] for page in pages]

    assert ids(5) == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12]]
    assert ids(5, reverseOrder=True) == [[12, 11, 10, 9, 8], [7, 6, 5, 4, 3], [2, 1]]
    assert ids(12) == [list(range(1, 13))]
    whole = sfn.get_execution_history(executionArn=arn)
    assert "nextToken" not in whole and whole["events"][0]["timestamp"].isoformat() == "2026-01-03T03:04:06+00:00"
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
        sfn.get_execution_history(executionArn=arn.replace("old-3", "never"))


def test_a_live_history_pages_too(sfn: Any, machine: str, tmp_path: Path) -> None:
    store = ExecutionStore(tmp_path, sfn, machine)
    assert store.restore([]) == 0  # nothing earlier; the twin's paging is on all the same
    arn = sfn.start_execution(stateMachineArn=machine, name="live")["executionArn"]
    whole = [event["id"] for event in sfn.get_execution_history(executionArn=arn)["events"]]
    assert len(whole) > 2
    first = sfn.get_execution_history(executionArn=arn, maxResults=2, reverseOrder=True)
    rest = sfn.get_execution_history(executionArn=arn, maxResults=100, reverseOrder=True,
                                     nextToken=first["nextToken"])
    assert [event["id"] for event in first["events"] + rest["events"]] == whole[::-1]
    assert "nextToken" not in rest


def test_an_execution_saved_while_running_is_restored_aborted(sfn: Any, machine: str, tmp_path: Path) -> None:
    """Its twin was killed: it cannot go on, and a restart must not show it running forever."""
    arn = _save(tmp_path, machine, "killed", "RUNNING", 4, events=5)
    store = ExecutionStore(tmp_path, sfn, machine)
    try:
        assert store.restore([]) == 1
        described = sfn.describe_execution(executionArn=arn)
        assert (described["status"], described["error"]) == ("ABORTED", ABORTED_ERROR)
        assert described["stopDate"].isoformat() == "2026-01-04T03:04:06+00:00"  # its last known event
        assert _all(sfn, machine, 100, statusFilter="RUNNING") == [[]]
        assert _all(sfn, machine, 100, statusFilter="ABORTED") == [["killed"]]
        last = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=1)["events"][0]
        assert (last["id"], last["previousEventId"], last["type"]) == (6, 5, "ExecutionAborted")
        inode = (executions_dir(tmp_path) / "killed.json").stat().st_ino
        store.save()  # written for good at restore: the saver leaves its file alone
        assert (executions_dir(tmp_path) / "killed.json").stat().st_ino == inode
    finally:
        store.forget()
    saved = json.loads((executions_dir(tmp_path) / "killed.json").read_text(encoding="utf-8"))
    assert saved["execution"]["status"] == "ABORTED" and saved["events"][-1]["type"] == "ExecutionAborted"
    # Forgotten with its twin: the name is free and nothing is listed.
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == []
