"""A finished run's cost, written by the lineage function into its run record, report and lineage graph.

Only `run_finished` knows every attempt of a run: the Spot attempts Batch
retried, the job the state machine then sent On-Demand, the analysis on its
fallback queue. The post-processing job, which writes the rest of the record,
runs before the run ends and sees none of the earlier jobs. So the lineage
function prices the run when it records `run_finished` and sets the record's
`cost` map with one conditional UpdateItem: a record that does not exist is
not created, and a redelivered event sets the same value again. The same
priced run then goes onto the graph's Run and StepAttempt nodes and, for a
run that succeeded, into its report (`cost_section.py`). Each of the three is
best effort on its own: a failure is noted and the others are still written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from .cost import RunCost, SpotPrices, run_cost
from .cost_section import write_report_cost
from .lineage.events import RunFinished
from .lineage.graph import GraphWrites, plan_run_cost
from .lineage.neptune import CypherRunner
from .lineage.record import run_plan

_SERIALIZER = TypeSerializer()


def price_run(event: RunFinished, spot: SpotPrices | None = None) -> RunCost:
    """Every attempt of a finished run, priced (`spot`: where Spot figures the table lacks come from)."""
    return run_cost(event.jobs, event.failures, spot=spot)


def cost_record(event: RunFinished, run: RunCost | None = None) -> dict[str, Any]:
    """The `cost` map of a finished run: its priced attempts, with the run's team and status."""
    record = (run or price_run(event)).to_record()
    record["team"] = event.source.get("team") if isinstance(event.source, dict) else None
    record["status"] = event.status
    record["finished_at"] = event.at
    return record


def write_cost(dynamodb: Any, table: str, event: RunFinished, run: RunCost | None = None) -> dict[str, Any]:
    """Set the run record's `cost`; `dynamodb` is a boto3 DynamoDB client. Raises ClientError as boto3 does."""
    record = cost_record(event, run)
    store_cost(dynamodb, table, event.run_id, record)
    return record


def store_cost(dynamodb: Any, table: str, run_id: str, record: dict[str, Any]) -> None:
    """The conditional UpdateItem that sets an existing run record's `cost` to `record`."""
    dynamodb.update_item(
        TableName=table,
        Key={"run_id": {"S": run_id}},
        UpdateExpression="SET #cost = :cost",
        ConditionExpression="attribute_exists(run_id)",
        ExpressionAttributeNames={"#cost": "cost"},
        ExpressionAttributeValues={":cost": _SERIALIZER.serialize(_decimals(record))},
    )


def graph_cost(event: RunFinished, run: RunCost, record: dict[str, Any]) -> GraphWrites:
    """The graph writes of the run's cost: the record's figures on the Run, each priced attempt's on its node."""
    return plan_run_cost(event.run_id, record["total"], record["spot_savings"], len(record["unpriced"]),
                         {a.attempt_id: round(a.usd, 6) for a in run.priced if a.attempt_id and a.usd is not None})


def report_uri(event: RunFinished) -> str | None:
    """Where the run's report.html is: the plan's `datasets.report_html` (statemachines/pipeline.asl.json)."""
    datasets = event.plan.get("datasets") if isinstance(event.plan, dict) else None
    uri = datasets.get("report_html") if isinstance(datasets, dict) else None
    return uri if isinstance(uri, str) and uri else None


@dataclass
class CostWrites:
    """What `record_run_cost` did: the cost map, where it went, and what went wrong (target: error)."""

    record: dict[str, Any]
    written: list[str] = field(default_factory=list)
    report: str | None = None
    problems: dict[str, str] = field(default_factory=dict)


def record_run_cost(event: RunFinished, *, spot: SpotPrices | None = None, dynamodb: Any = None,
                    table: str | None = None, runner: CypherRunner | None = None, s3: Any = None) -> CostWrites:
    """Price a finished run once and write it to each target given; one failing never stops the others."""
    run = price_run(event, spot)
    outcome = CostWrites(record=cost_record(event, run))
    if dynamodb is not None and table:
        _attempt(outcome, "run record", lambda: store_cost(dynamodb, table, event.run_id, outcome.record))
    if runner is not None:
        _attempt(outcome, "lineage graph", lambda: run_plan(runner, graph_cost(event, run, outcome.record)))
    uri = report_uri(event)
    if s3 is not None and uri and event.status == "SUCCEEDED":
        def put_report() -> None:
            outcome.report = write_report_cost(s3, uri, outcome.record)
        _attempt(outcome, "report", put_report)
    return outcome


def _attempt(outcome: CostWrites, target: str, write: Callable[[], object]) -> None:
    try:
        write()
    except Exception as exc:  # best effort: the lineage and the other targets stand
        outcome.problems[target] = f"{type(exc).__name__}: {exc}"
    else:
        outcome.written.append(target)


def _decimals(value: Any) -> Any:
    """Floats as Decimal, the only number type DynamoDB's serializer takes."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {str(k): _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value
