"""The execution-graph page in a real headless Chromium, built from a recorded twin run.

The run (`execution.json`, made by `record_execution.py`) took a Spot
reclamation in pre-processing, was caught and fell back to On-Demand, then
succeeded.
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import browser_page, recorded, require_chromium

from threadline.execution_graph import DAGRE, render

INJECTION = '</script><script>window.injected = 1</script><img src="x" onerror="window.injected = 2">'


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    return recorded()


def _open(page: Any, path: Path) -> list[str]:
    """Load the page from a file:// URL; the console errors, page errors and non-file requests it caused."""
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("request", lambda request: problems.append(f"request: {request.url}")
            if not request.url.startswith("file:") else None)
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("#graph svg g.state")
    return problems


def _boxes(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate("""[...document.querySelectorAll('#graph g.state')].map(g => {
        const r = g.querySelector('rect').getBoundingClientRect();
        return {id: g.dataset.state, outcome: g.classList[1], x: r.x, y: r.y, w: r.width, h: r.height}; })"""))


def _overlapping(boxes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(a["id"], b["id"]) for a, b in combinations(boxes, 2)
            if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"]
            and b["y"] < a["y"] + a["h"]]


def _state_input(run: dict[str, Any], name: str, key: str = "input") -> Any:
    suffix = "StateEntered" if key == "input" else "StateExited"
    details = next(event[next(k for k in event if k.endswith("EventDetails"))] for event in run["events"]
                   if event["type"].endswith(suffix) and event[next(k for k in event if k.endswith("EventDetails"))]
                   ["name"] == name)
    return json.loads(details[key])


def test_the_page_draws_every_state_apart_and_shows_a_clicked_state(run, tmp_path):
    require_chromium()
    path = tmp_path / "execution.html"
    path.write_text(render(run["execution"], run["events"], run["definition"]), encoding="utf-8")
    with browser_page() as page:
        problems = _open(page, path)

        boxes = _boxes(page)
        drawn = {box["id"]: box for box in boxes}
        assert set(run["definition"]["States"]) <= set(drawn)
        assert _overlapping(boxes) == []
        assert drawn["Preprocess"]["outcome"] == "caught"
        assert drawn["PreprocessOnDemand"]["outcome"] == "succeeded"
        assert drawn["AnalysisOnFallbackQueue"]["outcome"] == "not-entered"
        assert page.locator("#graph path.edge.catch").count() > 0
        assert page.evaluate("dagre.version") in DAGRE  # laid out by the shipped library

        page.click("#graph g.state[data-state='Preprocess']")
        assert page.inner_text("#details h2") == "Preprocess"
        assert json.loads(page.inner_text("#details pre.input")) == _state_input(run, "Preprocess")
        assert json.loads(page.inner_text("#details pre.output")) == _state_input(run, "Preprocess", "output")
        assert page.inner_text("#details pre.error") == "States.TaskFailed"
        attempts = page.locator("#details table.attempts tbody tr")
        assert attempts.count() == 3  # the Spot job's three attempts, each reclaimed
        assert "SPOT" in attempts.nth(0).inner_text() and "Host EC2" in attempts.nth(0).inner_text()

        page.click("#graph g.state[data-state='PreprocessOnDemand']")
        assert page.inner_text("#details h2") == "PreprocessOnDemand"
        row = page.locator("#details table.attempts tbody tr").nth(0).inner_text().split("\t")
        assert "ON_DEMAND" in row and "0" in row  # capacity and exit code

        assert page.locator("#events tbody tr").count() == len(run["events"])
        page.locator("#events tbody button.link", has_text="Analysis").first.click()
        assert page.inner_text("#details h2") == "Analysis"
        assert problems == []


def test_a_state_input_that_holds_markup_stays_text(run, tmp_path):
    require_chromium()
    events = json.loads(json.dumps(run["events"]))
    entered = next(event for event in events if event["type"] == "TaskStateEntered"
                   and event["stateEnteredEventDetails"]["name"] == "Preprocess")
    entered["stateEnteredEventDetails"]["input"] = json.dumps({"note": INJECTION})
    path = tmp_path / "execution.html"
    path.write_text(render(run["execution"], events, run["definition"], title=INJECTION), encoding="utf-8")
    with browser_page() as page:
        problems = _open(page, path)
        page.click("#graph g.state[data-state='Preprocess']")
        assert json.loads(page.inner_text("#details pre.input")) == {"note": INJECTION}
        assert page.evaluate("window.injected") is None
        assert page.locator("#details img, #details script").count() == 0
        assert page.title() == INJECTION
        assert problems == []


def test_parallel_branches_and_a_running_state_are_drawn_apart(tmp_path):
    require_chromium()
    definition = {"StartAt": "Fan", "States": {
        "Fan": {"Type": "Parallel", "Next": "Done", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Oops"}],
                "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A2"},
                                                         "A2": {"Type": "Pass", "End": True}}},
                             {"StartAt": "B", "States": {"B": {"Type": "Wait", "Seconds": 60, "End": True}}}]},
        "Done": {"Type": "Succeed"}, "Oops": {"Type": "Fail"}}}
    moment = "2026-01-01T00:00:0{}+00:00"
    events = [{"id": 1, "previousEventId": 0, "type": "ExecutionStarted", "timestamp": moment.format(0),
               "executionStartedEventDetails": {"input": "{}"}},
              {"id": 2, "previousEventId": 1, "type": "ParallelStateEntered", "timestamp": moment.format(1),
               "stateEnteredEventDetails": {"name": "Fan", "input": "{}"}},
              {"id": 3, "previousEventId": 2, "type": "WaitStateEntered", "timestamp": moment.format(2),
               "stateEnteredEventDetails": {"name": "B", "input": "{}"}},
              {"id": 4, "previousEventId": 2, "type": "PassStateEntered", "timestamp": moment.format(2),
               "stateEnteredEventDetails": {"name": "A", "input": "{}"}},
              {"id": 5, "previousEventId": 4, "type": "PassStateExited", "timestamp": moment.format(3),
               "stateExitedEventDetails": {"name": "A", "output": json.dumps({"a": 1})}}]
    execution = {"name": "fan", "status": "RUNNING", "startDate": moment.format(0), "input": "{}"}
    path = tmp_path / "execution.html"
    path.write_text(render(execution, events, definition), encoding="utf-8")
    with browser_page() as page:
        problems = _open(page, path)
        boxes = _boxes(page)
        assert _overlapping(boxes) == []
        outcomes = {box["id"]: box["outcome"] for box in boxes}
        assert (outcomes["Fan"], outcomes["A"], outcomes["B"], outcomes["A2"]) == (
            "in-progress", "succeeded", "in-progress", "not-entered")
        groups = page.evaluate("""[...document.querySelectorAll('#graph g.group rect')].map(r => {
            const b = r.getBoundingClientRect(); return {x: b.x, y: b.y, w: b.width, h: b.height}; })""")
        assert len(groups) == 2
        for name in ("A", "A2", "B"):
            box = next(box for box in boxes if box["id"] == name)
            assert any(g["x"] <= box["x"] and box["x"] + box["w"] <= g["x"] + g["w"] and g["y"] <= box["y"]
                       and box["y"] + box["h"] <= g["y"] + g["h"] for g in groups), f"{name} outside its branch"
        page.click("#graph g.state[data-state='A']")
        assert json.loads(page.inner_text("#details pre.output")) == {"a": 1}
        assert problems == []
