"""Risk figures from simulated portfolio P&L (gains positive, losses negative).

VaR at level a is the loss not exceeded in a share a of scenarios: with the
P&L sorted ascending and k = ceil(n (1 - a)) tail scenarios, VaR is minus the
k-th worst P&L. Expected shortfall at level a is minus the mean of those k
worst P&L. Both are reported as positive numbers for a loss.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

VAR_LEVELS = (0.95, 0.99)
ES_LEVEL = 0.975


def tail_count(n: int, level: float) -> int:
    """How many worst scenarios make up the tail beyond `level` (rounding noise removed)."""
    return max(1, math.ceil(round(n * (1.0 - level), 9)))


def value_at_risk(sorted_pnl: np.ndarray, level: float) -> float:
    return float(-sorted_pnl[tail_count(len(sorted_pnl), level) - 1])


def expected_shortfall(sorted_pnl: np.ndarray, level: float) -> float:
    return float(-sorted_pnl[: tail_count(len(sorted_pnl), level)].mean())


@dataclass(frozen=True)
class RiskFigures:
    scenarios: int
    var_95: float
    var_99: float
    es_975: float
    mean_pnl: float
    std_pnl: float
    min_pnl: float
    max_pnl: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def risk_figures(pnl: np.ndarray) -> RiskFigures:
    if len(pnl) == 0:
        raise ValueError("no scenarios")
    ordered = np.sort(pnl)
    return RiskFigures(
        scenarios=len(ordered),
        var_95=value_at_risk(ordered, 0.95),
        var_99=value_at_risk(ordered, 0.99),
        es_975=expected_shortfall(ordered, ES_LEVEL),
        mean_pnl=float(ordered.mean()),
        std_pnl=float(ordered.std(ddof=1)) if len(ordered) > 1 else 0.0,
        min_pnl=float(ordered[0]),
        max_pnl=float(ordered[-1]),
    )
