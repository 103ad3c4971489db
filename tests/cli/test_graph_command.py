"""`threadline graph RUN` with no twin serving: the page from the execution the twin saved in its workdir."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

from typer.testing import CliRunner

from threadline.cli.app import app

RECORDED = Path(__file__).resolve().parents[1] / "browser" / "execution.json"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_graph_reads_the_saved_execution_when_no_twin_answers(tmp_path):
    name = json.loads(RECORDED.read_text())["execution"]["name"]
    saved = tmp_path / "state" / "executions" / f"{name}.json"
    saved.parent.mkdir(parents=True)
    shutil.copy(RECORDED, saved)

    done = CliRunner().invoke(app, ["graph", name, "--workdir", str(tmp_path),
                                    "--endpoint-url", f"http://127.0.0.1:{_closed_port()}"])

    assert done.exit_code == 0, done.output
    page = tmp_path / "executions" / f"{name}.html"
    assert f"from {tmp_path}" in done.output
    assert f"threadline run {name}" in page.read_text(encoding="utf-8")


def test_graph_of_an_unknown_run_says_where_it_looked(tmp_path):
    done = CliRunner().invoke(app, ["graph", "no-such-run", "--workdir", str(tmp_path),
                                    "--endpoint-url", f"http://127.0.0.1:{_closed_port()}"])

    assert done.exit_code == 1
    assert "no run no-such-run" in done.output and str(tmp_path) in done.output
