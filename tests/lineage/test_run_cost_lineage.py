"""A finished run's cost in the lineage graph and its OpenLineage run event (threadline_common.run_cost_record)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from openlineage_spec import problems
from threadline_common.lineage import parse_lineage_event, record_event, run_report
from threadline_common.lineage.ids import run_node
from threadline_common.lineage.openlineage import run_events
from threadline_common.run_cost_record import record_run_cost

from threadline.twin.graph_store import GraphStore

PIPELINE = "threadline"
SMALL = [{"Type": "VCPU", "Value": "2"}, {"Type": "MEMORY", "Value": "7680"}]


class _RefusingDynamo:
    """A run table that refuses every write, as a throttled or denied one would."""

    def update_item(self, **_: Any) -> None:
        raise RuntimeError("throttled")


class _FixedSpot:
    def hourly(self, instance_type: str, region: str, start: str, end: str) -> float | None:
        return 0.03


def _priced(finished: dict[str, Any]) -> dict[str, Any]:
    """The sample run with the requests the template's CPU jobs make, so that every attempt is priced."""
    finished = copy.deepcopy(finished)
    for key in ("preprocess_on_demand", "postprocess"):
        finished["jobs"][key]["Container"]["ResourceRequirements"] = SMALL
    failure = json.loads(finished["failures"]["preprocess"]["Cause"])
    failure.setdefault("Container", {})["ResourceRequirements"] = SMALL
    finished["failures"]["preprocess"]["Cause"] = json.dumps(failure)
    finished["failures"]["preprocess"].pop("Job", None)
    return finished


def _recorded(graph: GraphStore, sample_event: Any, finished: dict[str, Any]) -> Any:
    record_event(graph, parse_lineage_event(sample_event("lineage_run_started.json")), PIPELINE)
    event = parse_lineage_event(finished)
    record_event(graph, event, PIPELINE)
    return event


def _attempt_costs(graph: GraphStore, run_id: str) -> dict[str, float | None]:
    rows = graph.run("MATCH (a:StepAttempt)-[:PART_OF]->(r:Run {`~id`: $run_node}) "
                     "RETURN a.attempt_id AS attempt_id, a.cost_usd AS cost_usd", {"run_node": run_node(run_id)})
    return {row["attempt_id"]: row["cost_usd"] for row in rows}


def test_the_run_and_its_attempts_carry_the_cost_and_the_run_event_its_facet(graph, sample_event) -> None:
    event = _recorded(graph, sample_event, _priced(sample_event("lineage_run_finished.json")))

    done = record_run_cost(event, runner=graph, dynamodb=_RefusingDynamo(), table="runs")

    # The run table refused; the graph was written all the same.
    assert done.written == ["lineage graph"] and "throttled" in done.problems["run record"]
    report = run_report(graph, event.run_id)
    assert report is not None
    assert report.run.cost_usd == done.record["total"] > 0
    assert report.run.spot_savings_usd is None  # no Spot figure: unknown, not zero
    assert report.run.cost_unpriced == 0
    costs = _attempt_costs(graph, event.run_id)
    assert len(costs) == done.record["attempts"] == 6 and all(usd is not None and usd > 0 for usd in costs.values())
    assert sum(usd for usd in costs.values() if usd is not None) == pytest.approx(report.run.cost_usd, abs=1e-5)

    run_end = run_events(report)[-1]
    assert run_end["eventType"] == "COMPLETE" and problems(run_end) == []
    facet = run_end["run"]["facets"]["threadline_cost"]
    assert (facet["currency"], facet["totalUsd"], facet["unpricedAttempts"]) == ("USD", done.record["total"], 0)
    assert "spotSavingsUsd" not in facet


def test_known_savings_reach_the_graph_and_a_redelivery_writes_the_same(graph, sample_event) -> None:
    event = _recorded(graph, sample_event, _priced(sample_event("lineage_run_finished.json")))

    first = record_run_cost(event, runner=graph, spot=_FixedSpot())
    again = record_run_cost(event, runner=graph, spot=_FixedSpot())

    assert first.record == again.record and first.record["spot_savings"] > 0
    report = run_report(graph, event.run_id)
    assert report is not None
    assert (report.run.cost_usd, report.run.spot_savings_usd) == (first.record["total"], first.record["spot_savings"])
    facet = run_events(report)[-1]["run"]["facets"]["threadline_cost"]
    assert facet["spotSavingsUsd"] == first.record["spot_savings"] and problems(run_events(report)[-1]) == []


def test_unpriced_attempts_are_counted_and_a_run_not_yet_priced_has_no_facet(graph, sample_event) -> None:
    event = _recorded(graph, sample_event, sample_event("lineage_run_finished.json"))  # CPU jobs without requests
    report = run_report(graph, event.run_id)
    assert report is not None and report.run.cost_usd is None
    assert "threadline_cost" not in run_events(report)[-1]["run"].get("facets", {})

    done = record_run_cost(event, runner=graph)
    report = run_report(graph, event.run_id)
    assert report is not None
    assert report.run.cost_unpriced == len(done.record["unpriced"]) == 5
    assert run_events(report)[-1]["run"]["facets"]["threadline_cost"]["unpricedAttempts"] == 5


class _S3:
    """An S3 client that records what it was asked and refuses every read, as a denied key would."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_object(self, **kwargs: Any) -> Any:
        self.asked.append(kwargs["Key"])
        raise PermissionError("AccessDenied")


def test_a_refused_report_is_a_problem_of_its_own_and_a_failed_run_has_its_report_left(graph, sample_event) -> None:
    finished = _priced(sample_event("lineage_run_finished.json"))
    finished["plan"] = {"datasets": {"report_html": f"s3://results/runs/{finished['run_id']}/report.html"}}
    event = _recorded(graph, sample_event, finished)
    s3 = _S3()

    done = record_run_cost(event, runner=graph, s3=s3)
    assert s3.asked == [f"runs/{event.run_id}/report.html"]
    assert done.written == ["lineage graph"] and "AccessDenied" in done.problems["report"]

    failed = parse_lineage_event({**finished, "status": "FAILED"})
    assert record_run_cost(failed, s3=s3).problems == {} and len(s3.asked) == 1
