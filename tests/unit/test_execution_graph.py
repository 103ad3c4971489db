"""What the execution-graph page is built from: the definition's graph and a recorded twin run's outcomes.

The run (`tests/browser/execution.json`, made by `tests/browser/record_execution.py`)
took a Spot reclamation in pre-processing, was caught, fell back to On-Demand and
succeeded. The browser test draws the same data.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from threadline.execution_graph import render
from threadline.execution_model import END, START, graph, model

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "statemachines" / "pipeline.asl.json").read_text())
RECORDED = json.loads((ROOT / "tests" / "browser" / "execution.json").read_text())


@pytest.fixture
def run() -> dict[str, Any]:
    return copy.deepcopy(RECORDED)


def _nodes(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["id"]: node for node in data["nodes"]}


def _taken(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(edge["source"], edge["target"], edge["kind"]) for edge in data["edges"] if edge["taken"]]


def test_every_state_and_transition_of_the_pipeline_is_in_the_graph():
    nodes, edges = graph(ASL)
    assert {node["id"] for node in nodes} == set(ASL["States"]) | {START, END}
    kinds = {(edge["source"], edge["target"]): edge["kind"] for edge in edges}
    assert kinds[START, ASL["StartAt"]] == "next"
    assert kinds["Preprocess", "CheckPreprocessFailure"] == "catch"
    assert kinds["RunFailed", END] == kinds["RunSucceeded", END] == "end"
    for name, state in ASL["States"].items():
        for choice in state.get("Choices", []):
            assert (name, choice["Next"]) in kinds
    assert len({(edge["source"], edge["target"], edge["kind"]) for edge in edges}) == len(edges)


def test_parallel_branches_and_map_iterations_are_groups_between_the_state_and_its_join():
    definition = {"StartAt": "Fan", "States": {
        "Fan": {"Type": "Parallel", "Next": "Each", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Oops"}],
                "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                             {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}]},
        "Each": {"Type": "Map", "End": True,
                 "ItemProcessor": {"StartAt": "C", "States": {"C": {"Type": "Succeed"}}}},
        "Oops": {"Type": "Fail"}}}
    nodes, edges = graph(definition)
    parents = {node["id"]: node["parent"] for node in nodes}
    assert parents["A"] == "Fan branch 1" and parents["B"] == "Fan branch 2" and parents["C"] == "Each iteration"
    pairs = {(edge["source"], edge["target"], edge["kind"]) for edge in edges}
    assert {("Fan", "A", "branch"), ("A", "Fan (end)", "end"), ("Fan (end)", "Each", "next"),
            ("Fan (end)", "Oops", "catch"), ("C", "Each (end)", "end"), ("Each (end)", END, "end")} <= pairs


def test_the_recorded_run_colours_states_by_outcome_and_marks_the_path_taken(run):
    data = model(run["execution"], run["events"], run["definition"])
    nodes = _nodes(data)
    assert nodes["Preprocess"]["outcome"] == "caught"
    assert nodes["PreprocessOnDemand"]["outcome"] == "succeeded"
    assert nodes["RunSucceeded"]["outcome"] == "succeeded"
    assert nodes["RunFailed"]["outcome"] == "not-entered"
    entered = [event["stateEnteredEventDetails"]["name"] for event in run["events"]
               if event["type"].endswith("StateEntered")]
    path = [(START, entered[0])] + list(pairwise(entered)) + [(entered[-1], END)]
    assert [(source, target) for source, target, _ in _taken(data)] == path
    assert ("Preprocess", "CheckPreprocessFailure", "catch") in _taken(data)
    assert ("RecordRunStart", "CreateRunRecord", "next") in _taken(data)  # not its Catch to the same state
    assert [row["id"] for row in data["events"]] == [event["id"] for event in run["events"]]


def test_batch_attempts_come_from_the_task_outputs_and_failure_causes(run):
    nodes = _nodes(model(run["execution"], run["events"], run["definition"]))
    spot = nodes["Preprocess"]["attempts"]
    assert [attempt["attempt"] for attempt in spot] == [1, 2, 3]
    assert {attempt["capacity"] for attempt in spot} == {"SPOT"}
    assert all(attempt["status_reason"].startswith("Host EC2") for attempt in spot)
    [on_demand] = nodes["PreprocessOnDemand"]["attempts"]
    assert (on_demand["capacity"], on_demand["exit_code"], on_demand["queue"]) == (
        "ON_DEMAND", 0, "threadline-OnDemandJobQueue")
    assert on_demand["seconds"] > 0
    [analysis] = nodes["Analysis"]["attempts"]
    assert (analysis["capacity"], analysis["nodes"]) == ("GPU", 2)
    assert nodes["Preprocess"]["visits"][0]["error"] == "States.TaskFailed"
    assert json.loads(nodes["Preprocess"]["visits"][0]["cause"])["Status"] == "FAILED"


def test_a_run_still_in_a_state_and_a_run_that_failed_in_one(run):
    events = run["events"]
    submitted = next(i for i, event in enumerate(events) if event["type"] == "TaskSubmitted")
    running = model({**run["execution"], "status": "RUNNING", "stopDate": None}, events[:submitted + 1],
                    run["definition"])
    preprocess = _nodes(running)["Preprocess"]
    assert preprocess["outcome"] == "in-progress"
    [waiting] = preprocess["attempts"]  # submitted, no description yet: its queue from the task's parameters
    assert (waiting["attempt"], waiting["queue"], waiting["capacity"]) == (None, "threadline-SpotJobQueue", "SPOT")
    failed_at = next(i for i, event in enumerate(events) if event["type"] == "TaskFailed")
    failed = model({**run["execution"], "status": "FAILED"}, events[:failed_at + 1], run["definition"])
    assert _nodes(failed)["Preprocess"]["outcome"] == "failed"


def test_a_live_history_with_datetimes_gives_what_the_saved_one_gives(run):
    def live(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: live(item) for key, item in value.items()}
        if isinstance(value, list):
            return [live(item) for item in value]
        if isinstance(value, str) and len(value) > 19 and value[4] == "-" and value[10] == "T":
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                return value
        return value

    saved = model(run["execution"], run["events"], run["definition"])
    assert model(live(run["execution"]), live(run["events"]), run["definition"]) == saved


def test_the_page_embeds_the_data_so_that_no_text_can_close_its_script(run):
    run["events"][1]["stateEnteredEventDetails"]["input"] = json.dumps({"x": "</script><b>&"})
    page = render(run["execution"], run["events"], run["definition"], title="<i>run</i>")
    data = page.split("<script type='application/json' id='execution-data'>", 1)[1].split("</script>", 1)[0]
    assert "<" not in data and "&" not in data
    assert json.loads(data)["nodes"][2]["visits"][0]["input"] == json.dumps({"x": "</script><b>&"})
    assert "<title>&lt;i&gt;run&lt;/i&gt;</title>" in page
    assert "https://" not in page.split("<script>", 1)[0]  # nothing fetched: styles and data are inline
