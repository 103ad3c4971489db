"""A run's cost through the twin: priced from every attempt into the run record and the Slack success message."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()


def test_spot_fallback_run_is_priced_by_step_and_capacity(run_pipeline, twin):
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
    assert cost["spot_savings"] is None  # the pinned table has no Spot figures
    assert cost["team"] == "shared"  # an upload outside any team's folder: the template's DefaultTeam

    [succeeded] = [m for m in result.slack if m.get("kind") == "run_succeeded"]
    fields = [f["text"] for block in succeeded["blocks"] if block["type"] == "section"
              for f in block.get("fields", [])]
    assert any(text.startswith("*Compute cost*\n$") for text in fields)
