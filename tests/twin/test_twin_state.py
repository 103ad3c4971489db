"""The twin's state outlives it: a restart in the same workdir continues where the last one stopped.

The workdir is the restart story's (restart_story.py), each twin in a process of its own, as
`threadline up` runs: the first writes objects, items, executions and dead letters; the
second finds the dead letters and redrives them; the third, after hand edits to the saved
state (`edit_by_hand`), finds the rest.
"""

from __future__ import annotations

import json

from restart_story import (
    FAILED_NAME,
    INCOMING,
    INTERMEDIATE,
    LINEAGE_DEAD_LETTER,
    NEW_NAME,
    SLACK_DEAD_LETTER,
    Story,
)


def test_the_state_is_saved_while_the_twin_runs_and_left_in_the_workdir(restart_story: Story) -> None:
    first = restart_story.first
    assert first["restored"] == {"objects": 0, "items": 0, "messages": 0, "executions": 0}
    assert first["saved_while_running"] == sorted([LINEAGE_DEAD_LETTER, SLACK_DEAD_LETTER])
    assert first["savers"] == ["twin-state"]

    # What a person finds in the workdir with the twin stopped.
    left = restart_story.after("first")
    assert (left / "state" / "sqs.json").exists()
    assert (left / "s3" / INCOMING / "notes" / "a.txt").read_bytes() == b"second"
    assert (left / "s3" / INTERMEDIATE / "runs" / "x" / "a" / "b").read_bytes() == b"inside"
    assert not (left / "s3" / INCOMING / "notes" / "gone.txt").exists()
    saved = json.loads((left / "state" / "executions" / f"{FAILED_NAME}.json").read_text(encoding="utf-8"))
    assert saved["execution"]["status"] == "FAILED" and saved["execution"]["name"] == FAILED_NAME
    assert saved["events"][0]["type"] == "ExecutionStarted" and isinstance(saved["events"][0]["timestamp"], str)
    assert saved["events"][-1]["type"] == "ExecutionFailed"


def test_dead_letters_outlive_the_twin_and_redrive(restart_story: Story) -> None:
    second = restart_story.second
    assert second["restored"]["messages"] == 2
    assert second["slack_dead_letters"] == [SLACK_DEAD_LETTER] and second["redriven"] == 1


def test_a_restart_after_hand_edits_says_what_it_lost_and_restores_the_rest(restart_story: Story) -> None:
    first, second, third = restart_story.first, restart_story.second, restart_story.third
    state = restart_story.workdir / "state"
    assert len(third["problems"]) == 3, third["problems"]
    assert "notes/broken.txt not restored" in third["problems"][0] and "bad entry" in third["problems"][0]
    assert "notes/lost.txt (version v-lost) not restored" in third["problems"][1]
    assert "sqs.json cannot be read" in third["problems"][2] and "moved to" in third["problems"][2]
    assert [p.name.split(".corrupt-")[0] for p in state.glob("*.corrupt-*")] == ["sqs.json"]
    # Every object version the second twin left (the runs' and ours); our item, and the run records.
    assert third["objects"] == second["objects"] and third["restored"]["objects"] == len(second["objects"])
    assert third["restored"]["items"] >= 1
    assert third["restored"]["messages"] == 0 and third["restored"]["executions"] == 4
    assert third["versions"] == {first["old"]: {"body": "first", "metadata": {}, "type": "binary/octet-stream"},
                                 first["new"]: {"body": "second", "metadata": {"owner": "ops"},
                                                "type": "text/plain"}}
    assert third["latest"] == [first["new"]]
    assert third["markers"] == ["notes/gone.txt"] and third["gone"] == "404"
    assert third["folder_file"] == "a file and a folder" and third["inside"] == "inside"
    assert third["item"] == {"status": "SUCCEEDED", "blob": [0, 1]}
    # Restoring sends no S3 events: nothing starts, nothing reruns (the executions are listed as they ended).
    run_id, rerun_id = first["run"]["id"], second["rerun"]["run_id"]
    assert third["executions"] == [[rerun_id, "SUCCEEDED"], [NEW_NAME, "FAILED"], [FAILED_NAME, "FAILED"],
                                   [run_id, "SUCCEEDED"]]
    assert third["start_function_calls"] == 0
    assert (state / "executions" / f"{FAILED_NAME}.json").exists()
