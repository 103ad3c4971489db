"""Spot figures from EC2's price history (threadline_common.spot_prices): the window's mean, the cache, failures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from threadline_common.spot_prices import PRODUCT, SpotPriceHistory, cheapest_zone_mean

START = "2026-11-30T10:00:00Z"
END = "2026-11-30T11:00:00Z"


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 30, hour, minute, tzinfo=UTC)


def _point(zone: str, at: datetime, price: str) -> dict[str, Any]:
    return {"AvailabilityZone": zone, "InstanceType": "m6a.large", "ProductDescription": PRODUCT,
            "SpotPrice": price, "Timestamp": at}


HISTORY = [
    # us-east-1a: 0.03 in force from before the window, 0.05 from 10:30: a mean of 0.04.
    _point("us-east-1a", _at(9, 12), "0.030000"),
    _point("us-east-1a", _at(10, 30), "0.050000"),
    # us-east-1b: 0.035 all along.
    _point("us-east-1b", _at(8), "0.035000"),
]


class _Paginator:
    def __init__(self, client: _Ec2) -> None:
        self.client = client

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.client.calls.append(kwargs)
        if self.client.error is not None:
            raise self.client.error
        return [{"SpotPriceHistory": HISTORY[:2]}, {"SpotPriceHistory": HISTORY[2:]}]


class _Ec2:
    """What the provider uses of a boto3 EC2 client: the DescribeSpotPriceHistory paginator."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def get_paginator(self, name: str) -> _Paginator:
        assert name == "describe_spot_price_history"
        return _Paginator(self)


def test_each_zone_is_a_time_weighted_mean_and_the_cheapest_zone_wins():
    assert cheapest_zone_mean(HISTORY, _at(10), _at(11)) == pytest.approx(0.035)
    assert cheapest_zone_mean(HISTORY[:2], _at(10), _at(11)) == pytest.approx(0.04)
    # A zero-length window takes the price in force; a window before any price knows nothing.
    assert cheapest_zone_mean(HISTORY[:2], _at(10), _at(10)) == pytest.approx(0.03)
    assert cheapest_zone_mean(HISTORY[:2], _at(7), _at(8)) is None
    assert cheapest_zone_mean([], _at(10), _at(11)) is None


def test_the_provider_asks_for_linux_prices_of_the_type_over_the_attempts_window():
    ec2 = _Ec2()
    regions: list[str] = []
    provider = SpotPriceHistory(lambda region: regions.append(region) or ec2)

    assert provider.hourly("m6a.large", "us-east-1", START, END) == pytest.approx(0.035)
    assert regions == ["us-east-1"]
    assert ec2.calls == [{"InstanceTypes": ["m6a.large"], "ProductDescriptions": ["Linux/UNIX"],
                          "StartTime": _at(10), "EndTime": _at(11)}]


def test_answers_are_cached_until_they_are_max_age_old():
    ec2, now = _Ec2(), [0.0]
    provider = SpotPriceHistory(lambda region: ec2, max_age=60, clock=lambda: now[0])

    provider.hourly("m6a.large", "us-east-1", START, END)
    now[0] = 59.0
    provider.hourly("m6a.large", "us-east-1", START, END)
    assert len(ec2.calls) == 1
    provider.hourly("m6a.large", "us-east-1", START, "2026-11-30T10:30:00Z")  # another window: asked
    assert len(ec2.calls) == 2
    now[0] = 61.0
    provider.hourly("m6a.large", "us-east-1", START, END)
    assert len(ec2.calls) == 3


def test_a_refused_call_is_an_unknown_figure_with_its_reason():
    denied = ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}},
                         "DescribeSpotPriceHistory")
    provider = SpotPriceHistory(lambda region: _Ec2(error=denied))

    assert provider.hourly("m6a.large", "us-east-1", START, END) is None
    assert provider.problems and "UnauthorizedOperation" in provider.problems[0]
    assert provider.hourly("m6a.large", "us-east-1", "not a time", END) is None
