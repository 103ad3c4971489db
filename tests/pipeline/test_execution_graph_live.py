"""`threadline graph RUN` against a serving twin: the page of a real failed run, read through its API."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from threadline.cli.app import app

MALFORMED = b"position_id,asset,colour\n1,ACME,blue\n"


def page_data(html: str) -> dict[str, Any]:
    embedded = html.split("<script type='application/json' id='execution-data'>", 1)[1].split("</script>", 1)[0]
    return dict(json.loads(embedded))


def test_graph_draws_a_run_of_the_serving_twin(run_pipeline, twin, tmp_path):
    result = run_pipeline("graph-malformed.csv", MALFORMED)
    assert result.status == "FAILED"
    out = tmp_path / "page.html"

    done = CliRunner().invoke(app, ["graph", result.run_id, "--endpoint-url", twin.endpoint_url,
                                    "--workdir", str(tmp_path / "nothing-saved"), "--out", str(out)])

    assert done.exit_code == 0, done.output
    assert f"from {twin.endpoint_url}" in done.output
    data = page_data(out.read_text(encoding="utf-8"))
    assert data["execution"]["status"] == "FAILED"
    outcomes = {node["id"]: node["outcome"] for node in data["nodes"]}
    assert outcomes["RunFailed"] == "failed"
    assert outcomes["RunSucceeded"] == "not-entered"
    exit_codes = {attempt["exit_code"] for node in data["nodes"] for attempt in node["attempts"]}
    assert 65 in exit_codes  # the validation failure's exit status, from the job's description
