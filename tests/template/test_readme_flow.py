"""README's "How an upload flows" names every state of the state machine once, and files that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## How an upload flows", 1)[1].split("\n## ", 1)[0]


def test_the_state_summary_names_every_state_once() -> None:
    states = set(json.loads((REPO / "statemachines" / "pipeline.asl.json").read_text(encoding="utf-8"))["States"])
    rows = [line.split("|")[2] for line in SECTION.splitlines() if line.startswith("| ") and "---" not in line][1:]
    named = [name.strip() for row in rows for name in row.split(",")]
    assert sorted(named) == sorted(states)


def test_every_file_the_diagram_names_exists() -> None:
    paths = set(re.findall(r"((?:functions|jobs|statemachines)/[\w./]+)", SECTION)) | {"template.yaml"}
    assert len(paths) >= 8
    for path in paths:
        assert (REPO / path.rstrip("/")).exists(), path
