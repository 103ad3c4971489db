"""A run's cost through the twin: priced from every attempt into the run record, the Slack success message,
the report and the lineage graph."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from threadline_common.lineage import run_report

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()
TOTAL = re.compile(r'<section id="run-cost">.*?<th>Total</th><td class="num">\$([0-9.]+)</td>', re.DOTALL)


def test_spot_fallback_run_is_priced_by_step_and_capacity(run_pipeline, twin, graph):
    result = run_pipeline("cost-spot.csv", SAMPLE, faults=("preprocess@SpotJobQueue:spot",))

    assert result.status == "SUCCEEDED", result.cause
    cost = result.record["cost"]
    assert cost["currency"] == "USD" and cost["region"] == "us-east-1" and cost["status"] == "SUCCEEDED"
    assert cost["unpriced"] == []
    # The reclaimed Spot attempts, the On-Demand fallback, the GPU analysis and Spot post-processing.
    assert set(cost["by_capacity"]) == {"SPOT", "ON_DEMAND", "GPU"}
    assert set(cost["by_step"]) == {"preprocess", "analysis", "postprocess"}
    assert all(value > 0 for value in cost["by_step"].values())
    assert float(cost["total"]) == pytest.approx(float(sum(cost["by_step"].values())), abs=1e-5)
    assert float(cost["total"]) == pytest.approx(float(sum(cost["by_capacity"].values())), abs=1e-5)
    # The pinned table has no Spot figures and the twin never asks its EC2 (made-up prices): unknown.
    lineage_function = twin.lambda_runtime.find(twin.physical_id("RecordLineageFunction"))
    assert lineage_function.environment["SPOT_PRICE_LOOKUP"] == "false"
    assert cost["spot_savings"] is None
    assert cost["spot_savings_by_step"]["preprocess"] is None and cost["spot_savings_by_step"]["analysis"] == 0
    assert cost["team"] == "shared"  # an upload outside any team's folder: the template's DefaultTeam

    [succeeded] = [m for m in result.slack if m.get("kind") == "run_succeeded"]
    fields = [f["text"] for block in succeeded["blocks"] if block["type"] == "section"
              for f in block.get("fields", [])]
    assert any(text.startswith("*Compute cost*\n$") and "Spot savings unknown" in text for text in fields)

    # The report, written before the run ended, has the run's cost in place of its placeholder.
    bucket, _, key = result.record["outputs"]["report_html"].removeprefix("s3://").partition("/")
    page = twin.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    found = TOTAL.search(page)
    assert found is not None, "the report has no filled cost section"
    assert float(found.group(1)) == pytest.approx(float(cost["total"]), abs=1e-6)
    assert "added here when the run ends" not in page

    # The lineage graph's Run carries the same total, with its savings unknown.
    report = run_report(graph, result.run_id)
    assert report is not None
    assert report.run.cost_usd == pytest.approx(float(cost["total"]), abs=1e-6)
    assert report.run.spot_savings_usd is None and report.run.cost_unpriced == 0
