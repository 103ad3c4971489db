"""Spot prices from EC2's price history (DescribeSpotPriceHistory), for figures the pinned table lacks.

A deployed lineage function asks EC2 what a Spot instance type cost over an
attempt's own window (Linux/UNIX): in each Availability Zone the time-weighted
mean of the prices in force from the attempt's start to its stop (the history
includes the price already in force at the start), and of the zones the
cheapest. A job description does not name the zone its instance ran in, and
Batch's Spot allocation strategies lean to the cheapest pools, so the cheapest
zone's mean is the estimate. An answer is cached per type, region and window
for `max_age` seconds, as Powertools' parameter providers cache theirs: a warm
function asks EC2 once per attempt, however often the run is priced.

The twin never uses this: its EC2 (moto) answers with made-up prices, so the
template's `SpotPriceLookup` is off there and the pinned table is all it prices from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

PRODUCT = "Linux/UNIX"
DEFAULT_MAX_AGE_S = 3600.0

ClientFor = Callable[[str], Any]
"""A boto3 EC2 client for a region."""


class SpotPriceHistory:
    """A `cost.SpotPrices` answered by DescribeSpotPriceHistory, cached; None where EC2 cannot tell."""

    def __init__(self, client_for: ClientFor, max_age: float = DEFAULT_MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client_for = client_for
        self._max_age = max_age
        self._clock = clock
        self._cache: dict[tuple[str, str, str, str], tuple[float | None, float]] = {}
        self.problems: list[str] = []

    def hourly(self, instance_type: str, region: str, start: str, end: str) -> float | None:
        key = (instance_type, region, start, end)
        cached = self._cache.get(key)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        value = self._look_up(instance_type, region, start, end)
        self._cache[key] = (value, self._clock() + self._max_age)
        return value

    def _look_up(self, instance_type: str, region: str, start: str, end: str) -> float | None:
        window = _window(start, end)
        if window is None:
            return None
        try:
            paginator = self._client_for(region).get_paginator("describe_spot_price_history")
            points = [point for page in paginator.paginate(
                InstanceTypes=[instance_type], ProductDescriptions=[PRODUCT],
                StartTime=window[0], EndTime=window[1]) for point in page.get("SpotPriceHistory", [])]
        except Exception as exc:  # no answer is an unknown figure, never a failed pricing
            self.problems.append(f"{instance_type} in {region}: {exc}")
            return None
        return cheapest_zone_mean(points, *window)


def cheapest_zone_mean(points: Iterable[dict[str, Any]], start: datetime, end: datetime) -> float | None:
    """The lowest, over zones, of each zone's time-weighted mean price over [start, end]."""
    by_zone: dict[str, list[tuple[datetime, float]]] = {}
    for point in points:
        at, price = point.get("Timestamp"), _price(point.get("SpotPrice"))
        if isinstance(at, datetime) and price is not None:
            by_zone.setdefault(str(point.get("AvailabilityZone")), []).append((_utc(at), price))
    means = [mean for changes in by_zone.values() if (mean := _weighted_mean(changes, start, end)) is not None]
    return min(means) if means else None


def _weighted_mean(changes: list[tuple[datetime, float]], start: datetime, end: datetime) -> float | None:
    """Each price holds from its timestamp to the next change; a zero-length window takes the price in force."""
    changes = sorted(changes)
    in_force = [price for at, price in changes if at <= start]
    if not in_force and changes[0][0] > end:
        return None
    if end <= start:
        return in_force[-1] if in_force else None
    total, weighted = 0.0, 0.0
    for index, (at, price) in enumerate(changes):
        until = changes[index + 1][0] if index + 1 < len(changes) else end
        held = (min(until, end) - max(at, start)).total_seconds()
        if held > 0:
            weighted += price * held
            total += held
    return weighted / total if total > 0 else None


def _window(start: str, end: str) -> tuple[datetime, datetime] | None:
    try:
        first = _utc(datetime.fromisoformat(start.replace("Z", "+00:00")))
        last = _utc(datetime.fromisoformat(end.replace("Z", "+00:00")))
    except ValueError:
        return None
    return (first, max(first, last))


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _price(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
