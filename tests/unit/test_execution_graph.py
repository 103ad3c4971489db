"""The console-style execution picture: every state drawn, the path taken marked."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from threadline.execution_graph import edges, layout, render

ASL = json.loads((Path(__file__).resolve().parents[2] / "statemachines" / "pipeline.asl.json").read_text())


@dataclass
class Visit:
    name: str
    failed: bool = False


def test_every_state_is_drawn_once_and_classified():
    path = [Visit("InitialiseRun"), Visit("RecordRunStart"), Visit("CreateRunRecord"), Visit("NotifyRunStarted"),
            Visit("ChooseFirstStep"), Visit("Preprocess", failed=True), Visit("CheckPreprocessFailure"),
            Visit("ParsePreprocessFailure"), Visit("PreprocessFailureKind"),
            Visit("PreprocessFailed"), Visit("MarkRunFailed"), Visit("RecordRunFailed"),
            Visit("NotifyRunFailed"), Visit("RunFailed")]
    page = render(ASL, path, "run r1", "FAILED")

    drawn = dict(re.findall(r'<g class="state ([a-z-]+)" data-state="([^"]+)"', page)[i][::-1]
                 for i in range(len(ASL["States"])))
    assert set(drawn) == set(ASL["States"])
    assert drawn["Preprocess"] == "caught"
    assert drawn["RunFailed"] == "failed"
    assert drawn["MarkRunFailed"] == "succeeded"
    assert drawn["Analysis"] == "not-visited"
    assert page.count(' taken"') == len(path) - 1  # one bold arrow per transition taken


def test_layout_puts_every_state_below_the_states_that_lead_to_it():
    positions = layout(ASL)
    back_edges = 0
    for edge in edges(ASL):
        if positions[edge.target][0] <= positions[edge.source][0]:
            back_edges += 1
    assert back_edges == 0  # the pipeline has no loops, so every arrow points down
    assert positions["InitialiseRun"] == (0, 0)
    assert positions["RunFailed"][0] == max(row for row, _ in positions.values())
    cells = list(positions.values())
    assert len(cells) == len(set(cells))  # no two states share a box
