"""`threadline cost`'s right-sizing table: each step's hint over the window's runs, from saved run records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from typer.testing import CliRunner

from threadline.cli import app
from threadline.rightsizing_report import summarise_rightsizing

NOW = datetime.now(UTC)


def _sizing(days_ago: float, peak: str | None, cpu: str | None, memory: int = 7680,
            oom: bool = False) -> dict[str, Any]:
    finished = (NOW - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")
    step = {"request": {"vcpus": Decimal("2.0"), "memory_mib": memory, "gpus": 0}, "attempts": 1,
            "measured": 0 if peak is None else 1, "peak_memory_mib": None if peak is None else Decimal(peak),
            "cpu_vcpus": None if cpu is None else Decimal(cpu), "oom": oom}
    return {"finished_at": finished, "steps": {"preprocess": step}}


def _records() -> list[dict[str, Any]]:
    return [
        {"run_id": "a", "rightsizing": _sizing(1, "900", "0.2")},
        {"run_id": "b", "rightsizing": _sizing(2, "1500", "0.4")},
        {"run_id": "c", "rightsizing": _sizing(3, "1100", "1.9")},
        {"run_id": "unmeasured", "rightsizing": _sizing(1, None, None)},
        {"run_id": "old", "rightsizing": _sizing(30, "7600", "2.0", oom=True)},
        {"run_id": "no-hints", "status": "RUNNING"},
    ]


def test_the_window_takes_the_peak_of_peaks_and_the_median_cpu():
    steps = summarise_rightsizing(_records(), NOW - timedelta(days=7))

    entry = steps["preprocess"]
    assert (entry["runs"], entry["measured_runs"], entry["oom_runs"]) == (4, 3, 0)
    assert entry["peak_memory_mib"] == 1500 and entry["median_cpu_vcpus"] == 0.4
    assert entry["suggested_memory_mib"] == 2048 and entry["suggested_vcpus"] == 1
    assert entry["request"] == {"vcpus": 2.0, "memory_mib": 7680, "gpus": 0}


def test_an_oom_in_the_window_raises_the_memory():
    steps = summarise_rightsizing(_records(), NOW - timedelta(days=60))
    assert steps["preprocess"]["oom_runs"] == 1
    assert steps["preprocess"]["suggested_memory_mib"] == 11520  # 7680 x 1.5


def test_the_latest_runs_request_is_the_one_measured_against():
    records = [{"run_id": "new", "rightsizing": _sizing(1, "1200", "1.0", memory=2048)},
               {"run_id": "older", "rightsizing": _sizing(2, "1200", "1.0", memory=8192)}]
    entry = summarise_rightsizing(records, NOW - timedelta(days=7))["preprocess"]
    assert entry["request"]["memory_mib"] == 2048 and entry["suggested_memory_mib"] is None


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    serializer = TypeSerializer()
    typed = [{name: serializer.serialize(value) for name, value in item.items()} for item in _records()]
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "dynamodb.json").write_text(json.dumps({"tables": {"threadline-RunTable": typed}}))
    return tmp_path


def test_cost_shows_and_emits_the_right_sizing(workdir: Path):
    emitted = CliRunner().invoke(app, ["cost", "--since", "7d", "--workdir", str(workdir), "--json"])
    assert emitted.exit_code == 0, emitted.output
    assert json.loads(emitted.output)["rightsizing"]["preprocess"]["suggested_memory_mib"] == 2048

    shown = CliRunner().invoke(app, ["cost", "--since", "7d", "--workdir", str(workdir)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "Right-sizing" in shown.output
    row = next(line for line in shown.output.splitlines() if line.lstrip().startswith("preprocess"))
    assert "2 vCPU, 7680 MiB" in row and "1500" in row and "0.40" in row and "1 vCPU, 2048 MiB" in row
