"""Pricing a run's attempts (threadline_common.cost) from the pinned table and job descriptions."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from threadline_common import cost

EVENT = json.loads((Path(__file__).resolve().parents[2] / "events" / "lineage_run_finished.json").read_text())
TABLE = cost.load_table("us-east-1")
SMALL = [{"Type": "VCPU", "Value": "2"}, {"Type": "MEMORY", "Value": "7680"}]


def _with_requests(event: dict) -> dict:
    """The sample event's job descriptions with the requests DescribeJobs reports for the template's jobs."""
    event = copy.deepcopy(event)
    for key in ("preprocess_on_demand", "postprocess"):
        event["jobs"][key]["Container"]["ResourceRequirements"] = SMALL
    failure = json.loads(event["failures"]["preprocess"]["Cause"])
    failure.setdefault("Container", {})["ResourceRequirements"] = SMALL
    event["failures"]["preprocess"]["Cause"] = json.dumps(failure)
    event["failures"]["preprocess"].pop("Job", None)
    return event


def test_cheapest_fit_takes_the_cheapest_allowed_instance_and_the_requests_share():
    instance, share = cost.cheapest_fit(TABLE, "ON_DEMAND", cost.Request(2, 7680))
    assert (instance.name, instance.on_demand, share) == ("m6i.large", 0.096, 1.0)  # m7i.large is 0.1008

    instance, share = cost.cheapest_fit(TABLE, "SPOT", cost.Request(1, 2048))
    assert (instance.name, share) == ("c6a.large", 0.5)  # half its vCPUs, half its 4 GiB

    instance, share = cost.cheapest_fit(TABLE, "GPU", cost.Request(4, 14336, 1))
    assert (instance.name, instance.on_demand, share) == ("g6.xlarge", 0.8048, 1.0)
    instance, _ = cost.cheapest_fit(TABLE, "GPU_FALLBACK", cost.Request(4, 14336, 1))
    assert instance.name == "g4dn.xlarge"


def test_a_request_no_allowed_instance_fits_is_not_priced():
    assert cost.cheapest_fit(TABLE, "GPU", cost.Request(4, 14336, 4)) is None


def test_request_of_reads_containers_and_node_ranges():
    event = _with_requests(EVENT)
    assert cost.request_of(event["jobs"]["postprocess"]) == cost.Request(2.0, 7680, 0)
    assert cost.request_of(event["jobs"]["analysis"]) == cost.Request(8.0, 30000, 1)
    assert cost.request_of({"container": {"vcpus": 1, "memory": 2048}}) == cost.Request(1.0, 2048, 0)
    assert cost.request_of({"Container": {}}) is None


def test_run_cost_prices_every_attempt_by_step_and_capacity():
    run = cost.run_cost(**{k: v for k, v in _with_requests(EVENT).items() if k in ("jobs", "failures")})

    by_attempt = {(a.job_key, a.attempt): a for a in run.attempts}
    # Three Spot attempts (Batch retried the reclaimed host) of 20 s each on an m6a.large (0.0864/h, no Spot figure).
    assert [by_attempt[("preprocess", n)].instance for n in (1, 2, 3)] == ["m6a.large"] * 3
    assert by_attempt[("preprocess", 1)].usd == pytest.approx(0.0864 * 20 / 3600)
    assert by_attempt[("preprocess", 1)].spot_at_on_demand
    # Then On-Demand for 31 s on an m6i.large.
    assert by_attempt[("preprocess_on_demand", 1)].usd == pytest.approx(0.096 * 31 / 3600)
    # Two GPU nodes for 132 s, each a whole g6.2xlarge (8 vCPUs asked).
    assert by_attempt[("analysis", 1)].usd == pytest.approx(0.9776 * 132 / 3600 * 2)
    assert by_attempt[("postprocess", 1)].usd == pytest.approx(0.0864 * 18 / 3600)

    record = run.to_record()
    assert record["region"] == "us-east-1" and record["unpriced"] == []
    assert record["total"] == pytest.approx(sum(record["by_step"].values()), abs=1e-5)
    assert record["total"] == pytest.approx(sum(record["by_capacity"].values()), abs=1e-5)
    assert record["by_step"]["preprocess"] == pytest.approx(0.0864 * 60 / 3600 + 0.096 * 31 / 3600, abs=1e-6)
    assert set(record["by_capacity"]) == {"SPOT", "ON_DEMAND", "GPU"}
    assert record["spot_savings"] is None  # Spot priced at the On-Demand ceiling: savings unknown


def test_spot_savings_with_a_pinned_spot_figure():
    spot_table = cost.PriceTable(
        region="test-1", on_demand_as_of="2026-11-30", spot_as_of="2026-11-30",
        families={"SPOT": ("m6a",), "ON_DEMAND": ("m6i",)},
        instances=(cost.Instance("m6a.large", 2, 8192, 0, on_demand=0.0864, spot=0.03),
                   cost.Instance("m6i.large", 2, 8192, 0, on_demand=0.096, spot=None)))
    spot = cost.AttemptRecord(
        attempt_id="j#1", step="postprocess", job_key="postprocess", fallback=False, seq=1, job_id="j",
        job_name=None, queue="SpotJobQueue", capacity="SPOT", job_definition=None, attempt=1, status="SUCCEEDED",
        status_reason=None, exit_code=0, node_count=1, image=None, parameters={}, log_stream=None,
        started_at="2026-11-30T10:00:00.000Z", ended_at="2026-11-30T11:00:00.000Z")
    priced = cost.price_attempt(spot, cost.Request(2, 7680), spot_table)

    assert (priced.usd, priced.on_demand_usd, priced.spot_at_on_demand) == (0.03, 0.0864, False)
    run = cost.RunCost(region="test-1", attempts=[priced])
    assert run.spot_savings_usd == pytest.approx(0.0564)


def test_an_attempt_that_never_started_costs_nothing_and_a_missing_request_is_unpriced():
    run = cost.run_cost(EVENT["jobs"], EVENT["failures"])  # the sample's CPU jobs carry no request

    unpriced = {a.job_key for a in run.attempts if a.usd is None}
    assert unpriced == {"preprocess", "preprocess_on_demand", "postprocess"}
    assert all("no resource request" in line for line in run.to_record()["unpriced"])
    assert run.spot_savings_usd is None

    never = {"JobId": "x", "JobName": "postprocess-r", "JobQueue": "arn:aws:batch:us-east-1:1:job-queue/SpotJobQueue",
             "Status": "FAILED", "Container": {"ResourceRequirements": SMALL}}
    only = cost.run_cost({}, {"postprocess": {"Job": never}})
    assert [(a.usd, a.seconds) for a in only.attempts] == [(0.0, 0.0)]


def test_region_without_a_table_is_unpriced():
    run = cost.run_cost(_with_requests(EVENT)["jobs"], {}, region="xx-nowhere-1")
    assert run.priced == [] and all("no price table" in a.problem for a in run.attempts if a.problem)


def _multi_container_job(camel: bool) -> dict:
    """A multi-node job with a multi-container node range, as DescribeJobs (camelCase) or Step Functions
    (PascalCase) reports it: `nodeProperties.nodeRangeProperties[].ecsProperties.taskProperties[].containers[]`."""
    def name(text: str) -> str:
        return text[:1].lower() + text[1:] if camel else text

    def requirement(kind: str, value: str) -> dict:
        return {name("Type"): kind, name("Value"): value}

    containers = [
        {name("Name"): "analysis", name("Essential"): True,
         name("ResourceRequirements"): [requirement("VCPU", "4"), requirement("MEMORY", "12288"),
                                        requirement("GPU", "1")]},
        {name("Name"): "progress", name("Essential"): False,
         name("ResourceRequirements"): [requirement("VCPU", "1"), requirement("MEMORY", "1024")]},
    ]
    return {
        name("JobId"): "a1", name("JobQueue"): "arn:aws:batch:us-east-1:123456789012:job-queue/GpuJobQueue",
        name("NodeProperties"): {name("NumNodes"): 2, name("MainNode"): 0, name("NodeRangeProperties"): [
            {name("TargetNodes"): "0:", name("EcsProperties"): {name("TaskProperties"): [
                {name("Containers"): containers}]}}]},
    }


@pytest.mark.parametrize("camel", [True, False], ids=["DescribeJobs", "StepFunctions"])
def test_a_multi_container_node_asks_for_the_sum_of_its_containers(camel: bool):
    job = _multi_container_job(camel)

    assert cost.container_requests(job) == {"analysis": cost.Request(4.0, 12288, 1),
                                            "progress": cost.Request(1.0, 1024, 0)}
    assert cost.request_of(job) == cost.Request(5.0, 13312, 1)
    # 5 vCPUs do not fit a g6.xlarge (4): the node is a whole g6.2xlarge.
    instance, share = cost.cheapest_fit(TABLE, "GPU", cost.request_of(job))
    assert (instance.name, share) == ("g6.2xlarge", 1.0)


def test_a_top_level_multi_container_job_and_one_without_requests():
    job = _multi_container_job(camel=True)
    single_node = {"ecsProperties": job["nodeProperties"]["nodeRangeProperties"][0]["ecsProperties"]}
    assert cost.request_of(single_node) == cost.Request(5.0, 13312, 1)
    assert cost.request_of({"ecsProperties": {"taskProperties": [{"containers": [{"name": "x"}]}]}}) is None


class _FixedSpot:
    """A Spot price source that knows one instance type's price and counts its questions."""

    def __init__(self, known: dict[str, float]) -> None:
        self.known = known
        self.asked: list[tuple[str, str, str, str]] = []

    def hourly(self, instance_type: str, region: str, start: str, end: str) -> float | None:
        self.asked.append((instance_type, region, start, end))
        return self.known.get(instance_type)


def test_a_spot_source_prices_spot_attempts_the_table_has_no_figure_for():
    event = _with_requests(EVENT)
    spot = _FixedSpot({"m6a.large": 0.04})
    run = cost.run_cost(event["jobs"], event["failures"], spot=spot)

    by_attempt = {(a.job_key, a.attempt): a for a in run.attempts}
    reclaimed = by_attempt[("preprocess", 1)]
    assert reclaimed.usd == pytest.approx(0.04 * 20 / 3600) and not reclaimed.spot_at_on_demand
    assert reclaimed.on_demand_usd == pytest.approx(0.0864 * 20 / 3600)
    # Only Spot attempts are asked about, over their own window, in the table's region.
    assert {asked[0] for asked in spot.asked} == {"m6a.large"}
    assert all(asked[1] == "us-east-1" and asked[2] < asked[3] for asked in spot.asked)
    assert by_attempt[("preprocess_on_demand", 1)].usd == pytest.approx(0.096 * 31 / 3600)

    # Every Spot attempt now has a figure: the savings are known, in total and per step.
    spot_seconds = 60 + 18  # the three reclaimed preprocess attempts and postprocess
    assert run.spot_savings_usd == pytest.approx((0.0864 - 0.04) * spot_seconds / 3600)
    steps = run.savings_by_step()
    assert steps["preprocess"] == pytest.approx((0.0864 - 0.04) * 60 / 3600)
    assert steps["analysis"] == 0.0  # GPU On-Demand: nothing saved, nothing unknown
    record = run.to_record()
    assert record["spot_savings"] == pytest.approx(sum(record["spot_savings_by_step"].values()), abs=1e-6)


def test_a_spot_figure_above_on_demand_is_capped_and_an_unknown_one_stays_unknown():
    event = _with_requests(EVENT)
    capped = cost.run_cost(event["jobs"], event["failures"], spot=_FixedSpot({"m6a.large": 9.0}))
    assert all(a.usd == pytest.approx(a.on_demand_usd) for a in capped.attempts if a.capacity == "SPOT")

    unknown = cost.run_cost(event["jobs"], event["failures"], spot=_FixedSpot({}))
    assert unknown.spot_savings_usd is None
    steps = unknown.savings_by_step()
    assert steps["preprocess"] is None and steps["postprocess"] is None and steps["analysis"] == 0.0
    assert unknown.to_record()["spot_savings_by_step"]["preprocess"] is None


def test_the_record_lists_each_attempt_with_its_capacity_instance_and_cost():
    run = cost.run_cost(**{k: v for k, v in _with_requests(EVENT).items() if k in ("jobs", "failures")})
    entries = run.to_record()["by_attempt"]

    assert [e["job"] for e in entries] == [f"{a.job_key}#{a.attempt}" for a in run.attempts]
    analysis = next(e for e in entries if e["step"] == "analysis")
    assert (analysis["capacity"], analysis["instance"], analysis["nodes"]) == ("GPU", "g6.2xlarge", 2)
    assert sum(e["usd"] for e in entries) == pytest.approx(run.total_usd, abs=1e-5)
    assert all(a.attempt_id and a.attempt_id.endswith(f"#{a.attempt}") for a in run.attempts)
