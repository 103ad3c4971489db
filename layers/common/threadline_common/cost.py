"""What a run's Batch attempts cost, from a pinned price table (`data/prices/<region>.json`).

Batch packs jobs onto instances and a job description does not name the
instance it ran on, so an attempt is priced as its request's share of the
cheapest instance its compute environments allow that fits the request: a
job asking for 2 vCPUs and 7.5 GiB on an On-Demand queue pays for all of an
m7i.large-class machine (or its cheapest allowed peer) for as long as it ran,
times its node count. The share is the largest of its vCPU, memory and GPU
fractions; a multi-container node asks for the sum of its containers. Spot
attempts use the table's Spot figure where one is pinned, else a `SpotPrices`
source where the caller has one (a deployed lineage function: EC2's Spot price
history, `spot_prices.py`), else their On-Demand price (the most Spot can
cost), leaving their savings unknown. The same code prices a run in the lineage
function (the run record, the report, the graph), the Slack function (the
success message) and the CLI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from . import pipeline
from .lineage.batch import AttemptRecord, attempt_records, described_jobs, job_field

PRICES_DIR = Path(__file__).parent / "data" / "prices"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class Instance:
    name: str
    vcpus: int
    memory_mib: int
    gpus: int
    on_demand: float
    spot: float | None


@dataclass(frozen=True)
class PriceTable:
    region: str
    on_demand_as_of: str
    spot_as_of: str | None
    families: dict[str, tuple[str, ...]]
    instances: tuple[Instance, ...]

    def allowed(self, capacity: str) -> tuple[Instance, ...]:
        """The table's instances of the families the capacity's compute environments allow."""
        families = self.families.get(capacity, ())
        return tuple(i for i in self.instances if i.name.split(".", 1)[0] in families)


@dataclass(frozen=True)
class Request:
    """One node's resourceRequirements."""

    vcpus: float
    memory_mib: int
    gpus: int = 0


class SpotPrices(Protocol):
    """Where a Spot figure the table does not pin can come from."""

    def hourly(self, instance_type: str, region: str, start: str, end: str) -> float | None:
        """The instance type's Spot price per hour over [start, end] (ISO-8601), or None when unknown."""
        ...


@dataclass(frozen=True)
class AttemptCost:
    step: str
    job_key: str
    attempt: int
    capacity: str
    seconds: float
    nodes: int
    instance: str | None
    share: float
    usd: float | None
    on_demand_usd: float | None
    problem: str | None = None
    spot_at_on_demand: bool = False
    """A Spot attempt priced at the On-Demand ceiling: no Spot figure for its instance was at hand."""
    attempt_id: str | None = None

    @property
    def savings_known(self) -> bool:
        """Whether what it saved against On-Demand is known: not a Spot attempt left at the ceiling or unpriced."""
        return not (self.spot_at_on_demand or (self.usd is None and self.capacity == pipeline.SPOT))

    @property
    def savings_usd(self) -> float:
        """On-Demand minus actual (0 for an unpriced attempt); meaningful where `savings_known`."""
        return (self.on_demand_usd or 0.0) - (self.usd or 0.0) if self.usd is not None else 0.0


@dataclass
class RunCost:
    region: str
    attempts: list[AttemptCost] = field(default_factory=list)

    @property
    def priced(self) -> list[AttemptCost]:
        return [a for a in self.attempts if a.usd is not None]

    @property
    def total_usd(self) -> float:
        return sum(a.usd or 0.0 for a in self.attempts)

    @property
    def on_demand_usd(self) -> float:
        """What the priced attempts would have cost on the same instances, all On-Demand."""
        return sum(a.on_demand_usd or 0.0 for a in self.priced)

    @property
    def spot_savings_usd(self) -> float | None:
        """On-Demand minus actual, or None when a Spot attempt had no Spot figure or was not priced at all."""
        if not all(a.savings_known for a in self.attempts):
            return None
        return self.on_demand_usd - self.total_usd

    def savings_by_step(self) -> dict[str, float | None]:
        """Spot savings per step, in first-seen order: None for a step with an attempt whose savings are unknown."""
        steps: dict[str, float | None] = {}
        for attempt in self.attempts:
            so_far = steps.get(attempt.step, 0.0)
            if so_far is None or not attempt.savings_known:
                steps[attempt.step] = None
            else:
                steps[attempt.step] = so_far + attempt.savings_usd
        return steps

    def by(self, key: str) -> dict[str, float]:
        """Cost summed by an AttemptCost field (`step`, `capacity`), in first-seen order."""
        totals: dict[str, float] = {}
        for attempt in self.priced:
            name = str(getattr(attempt, key))
            totals[name] = totals.get(name, 0.0) + (attempt.usd or 0.0)
        return totals

    def to_record(self) -> dict[str, Any]:
        """The run record's `cost` map (and the Slack notice's): plain JSON numbers, USD."""
        savings = self.spot_savings_usd
        return {
            "currency": "USD",
            "region": self.region,
            "total": round(self.total_usd, 6),
            "on_demand": round(self.on_demand_usd, 6),
            "spot_savings": None if savings is None else round(savings, 6),
            "by_step": {k: round(v, 6) for k, v in self.by("step").items()},
            "by_capacity": {k: round(v, 6) for k, v in self.by("capacity").items()},
            "spot_savings_by_step": {k: None if v is None else round(v, 6) for k, v in self.savings_by_step().items()},
            "by_attempt": [_attempt_entry(a) for a in self.attempts],
            "attempts": len(self.attempts),
            "unpriced": [f"{a.job_key}#{a.attempt}: {a.problem}" for a in self.attempts if a.usd is None],
        }


def _attempt_entry(attempt: AttemptCost) -> dict[str, Any]:
    """One attempt in the record: what the report's table shows (USD, or None when unpriced)."""
    return {"job": f"{attempt.job_key}#{attempt.attempt}", "step": attempt.step, "capacity": attempt.capacity,
            "instance": attempt.instance, "nodes": attempt.nodes, "seconds": round(attempt.seconds, 3),
            "usd": None if attempt.usd is None else round(attempt.usd, 6),
            "spot_at_on_demand": attempt.spot_at_on_demand}


@cache
def load_table(region: str) -> PriceTable:
    """The pinned price table of a region (FileNotFoundError when none is pinned)."""
    raw = json.loads((PRICES_DIR / f"{region}.json").read_text())
    instances = tuple(
        Instance(name=name, vcpus=int(spec["vcpus"]), memory_mib=int(spec["memory_mib"]), gpus=int(spec["gpus"]),
                 on_demand=float(spec["on_demand"]), spot=None if spec.get("spot") is None else float(spec["spot"]))
        for name, spec in raw["instances"].items())
    families = {capacity: tuple(names) for capacity, names in raw["capacity_families"].items()}
    return PriceTable(region=raw["region"], on_demand_as_of=raw["on_demand"]["as_of"],
                      spot_as_of=raw["spot"].get("as_of"), families=families, instances=instances)


def request_of(description: dict[str, Any]) -> Request | None:
    """A job description's per-node request: its container's, or the sum of its multi-container task's.

    Reads `container`, `ecsProperties.taskProperties[].containers[]` and the same two
    under the first node range of `nodeProperties.nodeRangeProperties[]` that has one,
    in PascalCase (Step Functions) or camelCase (DescribeJobs). None when none is readable.
    """
    requests = container_requests(description)
    if not requests:
        return None
    return Request(vcpus=sum(r.vcpus for r in requests.values()),
                   memory_mib=sum(r.memory_mib for r in requests.values()),
                   gpus=sum(r.gpus for r in requests.values()))


def container_requests(description: dict[str, Any]) -> dict[str, Request]:
    """Each container's request on one node, by container name (`main` for a single-container job)."""
    found = _node_requests(description)
    if found:
        return found
    ranges = job_field(job_field(description, "NodeProperties") or {}, "NodeRangeProperties") or []
    for node_range in ranges:
        found = _node_requests(node_range)
        if found:
            return found
    return {}


def _node_requests(properties: Any) -> dict[str, Request]:
    """The requests of a job's (or node range's) `container` or its `ecsProperties` task's containers."""
    single = _container_request(job_field(properties, "Container"))
    if single is not None:
        return {"main": single}
    requests: dict[str, Request] = {}
    for task in job_field(job_field(properties, "EcsProperties") or {}, "TaskProperties") or []:
        for index, container in enumerate(job_field(task, "Containers") or []):
            request = _container_request(container)
            if request is not None:
                requests[str(job_field(container, "Name") or f"container-{index}")] = request
    return requests


def _container_request(container: Any) -> Request | None:
    """One container's resourceRequirements (or its legacy vcpus/memory); None without both."""
    if not isinstance(container, dict):
        return None
    values = {str(job_field(item, "Type")).upper(): job_field(item, "Value")
              for item in job_field(container, "ResourceRequirements") or [] if isinstance(item, dict)}
    vcpus = _number(values.get("VCPU", job_field(container, "Vcpus")))
    memory = _number(values.get("MEMORY", job_field(container, "Memory")))
    if vcpus is None or memory is None:
        return None
    return Request(vcpus=vcpus, memory_mib=int(memory), gpus=int(_number(values.get("GPU")) or 0))


def cheapest_fit(table: PriceTable, capacity: str, request: Request) -> tuple[Instance, float] | None:
    """(the cheapest allowed instance the request fits, the request's share of it), or None."""
    fitting = [i for i in table.allowed(capacity)
               if i.vcpus >= request.vcpus and i.memory_mib >= request.memory_mib and i.gpus >= request.gpus]
    if not fitting:
        return None
    best = min(fitting, key=lambda i: (_hourly(i, capacity), i.name))
    shares = [request.vcpus / best.vcpus, request.memory_mib / best.memory_mib]
    if best.gpus:
        shares.append(request.gpus / best.gpus)
    return best, min(1.0, max(shares))


def price_attempt(record: AttemptRecord, request: Request | None, table: PriceTable | None,
                  spot: SpotPrices | None = None) -> AttemptCost:
    """One attempt's cost: hourly price x share x nodes x hours from start to stop."""
    seconds = _seconds(record.started_at, record.ended_at)
    unpriced = AttemptCost(step=record.step, job_key=record.job_key, attempt=record.attempt, capacity=record.capacity,
                           seconds=seconds or 0.0, nodes=record.node_count, instance=None, share=0.0, usd=None,
                           on_demand_usd=None, attempt_id=record.attempt_id)
    if seconds is None:
        return replace(unpriced, usd=0.0, on_demand_usd=0.0)  # it never ran: nothing to pay
    if table is None:
        return replace(unpriced, problem="no price table for the region")
    if request is None:
        return replace(unpriced, problem="no resource request in the job description")
    fit = cheapest_fit(table, record.capacity, request)
    if fit is None:
        return replace(unpriced, problem="no allowed instance in the price table fits the request")
    instance, share = fit
    hours = seconds / 3600 * share * record.node_count
    hourly = _hourly(instance, record.capacity)
    at_ceiling = record.capacity == pipeline.SPOT and instance.spot is None
    if at_ceiling and spot is not None and record.started_at and record.ended_at:
        looked_up = spot.hourly(instance.name, table.region, record.started_at, record.ended_at)
        if looked_up is not None:
            hourly, at_ceiling = min(looked_up, instance.on_demand), False
    return replace(unpriced, instance=instance.name, share=share, usd=hourly * hours,
                   on_demand_usd=instance.on_demand * hours, spot_at_on_demand=at_ceiling)


def run_cost(jobs: dict[str, Any], failures: dict[str, Any], region: str | None = None,
             spot: SpotPrices | None = None) -> RunCost:
    """Every attempt of every job in a run's `jobs` and `failures` (the state machine's), priced.

    `spot` answers for Spot attempts whose instance has no pinned Spot figure (None: they stay
    at the On-Demand ceiling with their savings unknown).
    """
    described = described_jobs(jobs, failures)
    region = region or next((r for _, d in described if (r := region_of(d))), None) or DEFAULT_REGION
    try:
        table: PriceTable | None = load_table(region)
    except FileNotFoundError:
        table = None
    result = RunCost(region=region)
    seq = 1
    for key, description in described:
        try:
            records = attempt_records(key, description, first_seq=seq)
        except ValueError:
            continue
        seq += len(records)
        request = request_of(description)
        result.attempts.extend(price_attempt(record, request, table, spot) for record in records)
    return result


def region_of(description: dict[str, Any]) -> str | None:
    """The region in the job's queue or job ARN (`arn:aws:batch:<region>:...`)."""
    for name in ("JobQueue", "JobArn"):
        parts = str(job_field(description, name) or "").split(":")
        if len(parts) > 3 and parts[0] == "arn" and parts[3]:
            return parts[3]
    return None


def _hourly(instance: Instance, capacity: str) -> float:
    if capacity == pipeline.SPOT and instance.spot is not None:
        return instance.spot
    return instance.on_demand


def _seconds(started: str | None, ended: str | None) -> float | None:
    if not started or not ended:
        return None
    try:
        start = datetime.fromisoformat(started.replace("Z", "+00:00"))
        end = datetime.fromisoformat(ended.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (end - start).total_seconds())


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None

