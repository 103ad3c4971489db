"""What a run's Batch attempts cost, from a pinned price table (`data/prices/<region>.json`).

Batch packs jobs onto instances and a job description does not name the
instance it ran on, so an attempt is priced as its request's share of the
cheapest instance its compute environments allow that fits the request: a
job asking for 2 vCPUs and 7.5 GiB on an On-Demand queue pays for all of an
m7i.large-class machine (or its cheapest allowed peer) for as long as it ran,
times its node count. The share is the largest of its vCPU, memory and GPU
fractions. Spot attempts use the table's Spot figure where one is pinned, and
its On-Demand price (the most Spot can cost) where none is, leaving their
savings unknown. The same code prices a run in the lineage function (the run
record), the Slack function (the success message) and the CLI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from . import pipeline
from .lineage.batch import AttemptRecord, attempt_records, job_description, job_field, job_key_order

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
    """A Spot attempt priced at the On-Demand ceiling: the table pins no Spot figure for its instance."""


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
        if any(a.spot_at_on_demand or (a.usd is None and a.capacity == pipeline.SPOT) for a in self.attempts):
            return None
        return self.on_demand_usd - self.total_usd

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
            "attempts": len(self.attempts),
            "unpriced": [f"{a.job_key}#{a.attempt}: {a.problem}" for a in self.attempts if a.usd is None],
        }


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
    """A job description's per-node request: its container's resourceRequirements (or vcpus/memory)."""
    container = job_field(description, "Container")
    if not isinstance(container, dict) \
            or not (job_field(container, "ResourceRequirements") or job_field(container, "Vcpus")):
        ranges = job_field(job_field(description, "NodeProperties") or {}, "NodeRangeProperties") or []
        container = next((job_field(r, "Container") for r in ranges if isinstance(r, dict)), None)
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


def price_attempt(record: AttemptRecord, request: Request | None, table: PriceTable | None) -> AttemptCost:
    """One attempt's cost: hourly price x share x nodes x hours from start to stop."""
    seconds = _seconds(record.started_at, record.ended_at)
    unpriced = AttemptCost(step=record.step, job_key=record.job_key, attempt=record.attempt, capacity=record.capacity,
                           seconds=seconds or 0.0, nodes=record.node_count, instance=None, share=0.0, usd=None,
                           on_demand_usd=None)
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
    return replace(unpriced, instance=instance.name, share=share, usd=_hourly(instance, record.capacity) * hours,
                   on_demand_usd=instance.on_demand * hours,
                   spot_at_on_demand=record.capacity == pipeline.SPOT and instance.spot is None)


def run_cost(jobs: dict[str, Any], failures: dict[str, Any], region: str | None = None) -> RunCost:
    """Every attempt of every job in a run's `jobs` and `failures` (the state machine's), priced."""
    entries = {**failures, **jobs}
    described = [(key, d) for key in sorted(entries, key=job_key_order)
                 if (d := job_description(entries[key])) is not None]
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
        result.attempts.extend(price_attempt(record, request, table) for record in records)
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

