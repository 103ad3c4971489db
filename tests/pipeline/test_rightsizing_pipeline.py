"""Right-sizing through the twin: the jobs' usage records become hints in the run record and `threadline cost`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from threadline.cli import app

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()
STEPS = {"preprocess", "analysis", "postprocess"}


def test_a_run_records_each_steps_use_request_and_hint(run_pipeline, twin):
    result = run_pipeline("sizing.csv", SAMPLE)

    assert result.status == "SUCCEEDED", result.cause
    usage_keys = [uri for uri in result.objects["IntermediateBucket"] if f"/runs/{result.run_id}/usage/" in uri]
    assert {uri.split("/usage/")[1].split("/")[0] for uri in usage_keys} == STEPS

    sizing = result.record["rightsizing"]
    assert set(sizing["steps"]) == STEPS and sizing["unreadable"] == []
    for step, entry in sizing["steps"].items():
        assert entry["measured"] >= 1, step
        assert entry["peak_memory_mib"] > 10, step  # a Python process with its libraries
        assert 0 < entry["memory_use"] < 1, step  # the sample is far below any step's request
        assert entry["cpu_vcpus"] >= 0 and entry["request"]["memory_mib"] > 0, step
        # So much idle memory is always worth a smaller request.
        assert entry["suggested_memory_mib"] < entry["request"]["memory_mib"], step
    assert sizing["steps"]["analysis"]["request"]["gpus"] >= 1

    shown = CliRunner().invoke(app, ["cost", "--since", "1d", "--workdir", str(twin.workdir), "--json"])
    assert shown.exit_code == 0, shown.output
    window = json.loads(shown.output)["rightsizing"]
    assert set(window) >= STEPS
    for step in STEPS:
        assert window[step]["runs"] >= 1
        assert window[step]["peak_memory_mib"] >= float(sizing["steps"][step]["peak_memory_mib"])
