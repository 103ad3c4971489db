"""Retake docs/execution-graph.png: the recorded run's page in headless Chromium, Preprocess clicked.

    .venv/bin/python tests/browser/screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from browser_helpers import browser_page, recorded

from threadline.execution_graph import render

TARGET = Path(__file__).resolve().parents[2] / "docs" / "execution-graph.png"


def screenshot(target: Path = TARGET) -> Path:
    run = recorded()
    with tempfile.TemporaryDirectory() as folder, browser_page(1440, 900) as page:
        path = Path(folder) / "execution.html"
        path.write_text(render(run["execution"], run["events"], run["definition"], "threadline run (recorded)"),
                        encoding="utf-8")
        page.goto(path.as_uri())
        page.click("#graph g.state[data-state='Preprocess']")
        page.screenshot(path=str(target))
    return target


if __name__ == "__main__":
    print(screenshot(Path(sys.argv[1]) if len(sys.argv) > 1 else TARGET))
