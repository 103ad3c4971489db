"""Run costs summed over a time window, from the `cost` maps of run records.

The lineage function writes each finished run's `cost` into its run record
(threadline_common.run_cost_record); this reads those records, from the
twin's saved tables or from the RunTable in AWS, and totals them by step,
by team and by capacity type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any


@dataclass
class CostSummary:
    since: str
    runs: int = 0
    total: float = 0.0
    on_demand: float = 0.0
    spot_savings: float = 0.0
    runs_without_savings: int = 0
    """Runs whose Spot savings are unknown (no Spot price pinned for their instances): not in spot_savings."""
    unpriced_attempts: int = 0
    by_step: dict[str, float] = field(default_factory=dict)
    by_team: dict[str, float] = field(default_factory=dict)
    by_capacity: dict[str, float] = field(default_factory=dict)

    def add(self, cost: dict[str, Any]) -> None:
        self.runs += 1
        self.total += _float(cost.get("total"))
        self.on_demand += _float(cost.get("on_demand"))
        if cost.get("spot_savings") is None:
            self.runs_without_savings += 1
        else:
            self.spot_savings += _float(cost.get("spot_savings"))
        unpriced = cost.get("unpriced")
        self.unpriced_attempts += len(unpriced) if isinstance(unpriced, list) else 0
        team = str(cost.get("team") or "unknown")
        self.by_team[team] = self.by_team.get(team, 0.0) + _float(cost.get("total"))
        for name, totals in (("by_step", self.by_step), ("by_capacity", self.by_capacity)):
            part = cost.get(name)
            for key, value in (part.items() if isinstance(part, dict) else ()):
                totals[str(key)] = totals.get(str(key), 0.0) + _float(value)

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since, "runs": self.runs, "total": round(self.total, 6),
                "on_demand": round(self.on_demand, 6), "spot_savings": round(self.spot_savings, 6),
                "runs_without_savings": self.runs_without_savings, "unpriced_attempts": self.unpriced_attempts,
                "by_step": _rounded(self.by_step), "by_team": _rounded(self.by_team),
                "by_capacity": _rounded(self.by_capacity)}


def summarise(records: Iterable[dict[str, Any]], since: datetime) -> CostSummary:
    """Total the `cost` of every record that has one and finished (or, lacking that, started) at or after `since`."""
    summary = CostSummary(since=since.astimezone(UTC).isoformat())
    for record in records:
        cost = record.get("cost")
        if not isinstance(cost, dict):
            continue
        moment = parse_moment(cost.get("finished_at")) or parse_moment(record.get("started_at"))
        if moment is None or moment < since:
            continue
        summary.add(cost)
    return summary


def saved_records(workdir: Path) -> list[dict[str, Any]]:
    """Every run-table item the twin saved in the workdir (`state/dynamodb.json`), as plain Python."""
    from .twin.table_store import saved_items

    return [item for items in saved_items(workdir / "state" / "dynamodb.json").values() for item in items
            if "run_id" in item]


def table_records(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of a run table in AWS (a boto3 DynamoDB client), as plain Python."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    records: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(
            TableName=table, ProjectionExpression="run_id, started_at, #cost, rightsizing",
            ExpressionAttributeNames={"#cost": "cost"}):
        records.extend({k: deserializer.deserialize(v) for k, v in item.items()} for item in page["Items"])
    return records


def parse_moment(value: Any) -> datetime | None:
    """A record's ISO 8601 time as an aware datetime (naive reads as UTC); None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _float(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    return float(value) if isinstance(value, (int, float, Decimal)) else 0.0


def _rounded(totals: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 6) for key, value in totals.items()}
