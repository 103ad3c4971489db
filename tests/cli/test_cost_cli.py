"""`threadline cost`: run costs by step, team and capacity over a window, from the run records a twin saved."""

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
from threadline.cost_report import summarise

NOW = datetime.now(UTC)


def _cost(team: str, days_ago: float, total: str, spot_savings: str | None) -> dict[str, Any]:
    finished = (NOW - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")
    analysis = Decimal(total) - Decimal("0.01")
    return {"currency": "USD", "region": "us-east-1", "total": Decimal(total), "on_demand": Decimal(total) * 2,
            "spot_savings": None if spot_savings is None else Decimal(spot_savings),
            "by_step": {"preprocess": Decimal("0.004"), "analysis": analysis, "postprocess": Decimal("0.006")},
            "by_capacity": {"SPOT": Decimal("0.01"), "GPU": analysis}, "attempts": 3, "unpriced": [],
            "team": team, "status": "SUCCEEDED", "finished_at": finished}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A workdir whose saved run table holds two recent priced runs, an old one and one with no cost."""
    serializer = TypeSerializer()
    items = [
        {"run_id": "a", "status": "SUCCEEDED", "cost": _cost("risk", 1, "0.31", "0.02")},
        {"run_id": "b", "status": "SUCCEEDED", "cost": _cost("research", 2, "0.11", None)},
        {"run_id": "old", "status": "SUCCEEDED", "cost": _cost("risk", 30, "9.99", "1")},
        {"run_id": "running", "status": "RUNNING"},
    ]
    typed = [{name: serializer.serialize(value) for name, value in item.items()} for item in items]
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "dynamodb.json").write_text(json.dumps({"tables": {"threadline-RunTable": typed}}))
    return tmp_path


def test_json_totals_by_step_team_and_capacity(workdir: Path):
    result = CliRunner().invoke(app, ["cost", "--since", "7d", "--workdir", str(workdir), "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["runs"] == 2
    assert summary["total"] == pytest.approx(0.42)
    assert summary["on_demand"] == pytest.approx(0.84)
    assert summary["spot_savings"] == pytest.approx(0.02) and summary["runs_without_savings"] == 1
    assert summary["by_team"] == pytest.approx({"risk": 0.31, "research": 0.11})
    assert summary["by_step"] == pytest.approx({"preprocess": 0.008, "analysis": 0.40, "postprocess": 0.012})
    assert summary["by_capacity"] == pytest.approx({"SPOT": 0.02, "GPU": 0.40})


def test_text_shows_a_bar_chart_per_grouping(workdir: Path):
    result = CliRunner().invoke(app, ["cost", "--since", "7d", "--workdir", str(workdir)])

    assert result.exit_code == 0, result.output
    assert "2 run(s) since" in result.output and "$0.420000" in result.output
    assert "unknown for 1 run(s)" in result.output
    lines = result.output.splitlines()
    analysis = next(line for line in lines if line.startswith("analysis"))
    preprocess = next(line for line in lines if line.startswith("preprocess"))
    assert analysis.count("█") == 30 and preprocess.count("█") == 1  # 0.008 of 0.40, of 30 columns
    assert any(line.startswith("risk") for line in lines) and any(line.startswith("GPU") for line in lines)


def test_a_longer_window_takes_the_old_run_and_a_bad_since_is_refused(workdir: Path):
    result = CliRunner().invoke(app, ["cost", "--since", "60d", "--workdir", str(workdir), "--json"])
    assert json.loads(result.output)["runs"] == 3

    refused = CliRunner().invoke(app, ["cost", "--since", "lately", "--workdir", str(workdir)])
    assert refused.exit_code != 0


def test_no_runs_says_so(tmp_path: Path):
    result = CliRunner().invoke(app, ["cost", "--workdir", str(tmp_path)])
    assert result.exit_code == 0 and "no priced runs" in result.output


def test_summarise_skips_records_without_a_time():
    summary = summarise([{"run_id": "x", "cost": {"total": 1.0}}], NOW - timedelta(days=1))
    assert summary.runs == 0


def test_a_deployed_run_table_is_read_with_its_cost_maps(monkeypatch: pytest.MonkeyPatch):
    import boto3
    from moto import mock_aws

    from threadline.cost_report import table_records

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(TableName="runs", KeySchema=[{"AttributeName": "run_id", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "run_id", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
        serializer = TypeSerializer()
        item = {"run_id": "a", "status": "SUCCEEDED", "cost": _cost("risk", 1, "0.31", "0.02")}
        dynamodb.put_item(TableName="runs", Item={k: serializer.serialize(v) for k, v in item.items()})

        records = table_records(dynamodb, "runs")

    assert [set(r) for r in records] == [{"run_id", "cost"}]  # only what the summary reads
    summary = summarise(records, NOW - timedelta(days=7))
    assert (summary.runs, summary.by_team) == (1, {"risk": pytest.approx(0.31)})
