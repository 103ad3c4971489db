"""The P&L model: log-normal returns over a horizon with a one-factor sector model.

For position i in sector s(i), over T = horizon_days / 252 years:

    z_i = beta_i * Z_s(i) + sqrt(1 - beta_i^2) * e_i        Z, e ~ N(0, 1) independent
    r_i = (mu_i - sigma_i^2 / 2) T + sigma_i sqrt(T) z_i     (log return)
    pnl_i = quantity_i * price_i * (exp(r_i) - 1)

so each return keeps its own volatility sigma_i (annual_vol) and drift mu_i
(annual_drift), while beta_i in [-1, 1] sets how much of it comes from the
sector shock shared by the sector. Scenarios come in fixed blocks of
BLOCK_SCENARIOS and positions in fixed chunks of POSITION_CHUNK; each
(block, chunk) draws from its own random stream (see backend.py), so a
block's P&L is the same whichever node computes it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from .backend import Backend

TRADING_DAYS = 252
BLOCK_SCENARIOS = 4096
POSITION_CHUNK = 1024
SECTOR_STREAM = 0  # stream 0 of a block: sector shocks; stream 1 + c: idiosyncratic shocks of chunk c

REQUIRED_COLUMNS = ("sector", "quantity", "price", "annual_vol", "annual_drift", "beta")


class PortfolioError(ValueError):
    """The clean positions cannot be simulated."""


@dataclass(frozen=True)
class Portfolio:
    sectors: tuple[str, ...]
    sector_index: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    vol: np.ndarray
    drift: np.ndarray
    beta: np.ndarray

    def __len__(self) -> int:
        return len(self.quantity)

    @property
    def exposure(self) -> np.ndarray:
        return self.quantity * self.price

    @classmethod
    def from_table(cls, table: pa.Table) -> Portfolio:
        missing = [name for name in REQUIRED_COLUMNS if name not in table.column_names]
        if missing:
            raise PortfolioError(f"positions lack column(s) {', '.join(missing)}")
        if table.num_rows == 0:
            raise PortfolioError("there are no positions to simulate")
        sector_column = table.column("sector").combine_chunks()
        if sector_column.null_count:
            raise PortfolioError("some positions have no sector")
        names = sector_column.to_numpy(zero_copy_only=False).astype(str)
        sectors, index = np.unique(names, return_inverse=True)

        def numbers(name: str) -> np.ndarray:
            column = table.column(name).combine_chunks()
            values = column.to_numpy(zero_copy_only=False).astype(np.float64)
            if column.null_count or not np.all(np.isfinite(values)):
                raise PortfolioError(f"column {name} has missing or non-finite values")
            return values

        portfolio = cls(
            sectors=tuple(str(s) for s in sectors),
            sector_index=index.astype(np.int64),
            quantity=numbers("quantity"),
            price=numbers("price"),
            vol=numbers("annual_vol"),
            drift=numbers("annual_drift"),
            beta=numbers("beta"),
        )
        if np.any(portfolio.vol <= 0) or np.any(np.abs(portfolio.beta) > 1):
            raise PortfolioError("annual_vol must be > 0 and beta within [-1, 1]")
        return portfolio


@dataclass(frozen=True)
class ScenarioSchedule:
    """What is simulated: the same on every node of a run."""

    scenarios: int
    horizon_days: float
    seed: int

    @property
    def blocks(self) -> int:
        return math.ceil(self.scenarios / BLOCK_SCENARIOS)

    def block_scenarios(self, block: int) -> range:
        start = block * BLOCK_SCENARIOS
        return range(start, min(start + BLOCK_SCENARIOS, self.scenarios))


def node_blocks(total_blocks: int, node_index: int, num_nodes: int) -> range:
    """The contiguous run of blocks one node simulates; shares differ by at most one block."""
    if not 0 <= node_index < num_nodes:
        raise ValueError(f"node index {node_index} is outside 0..{num_nodes - 1}")
    return range(total_blocks * node_index // num_nodes, total_blocks * (node_index + 1) // num_nodes)


def simulate_block(portfolio: Portfolio, plan: ScenarioSchedule, block: int, backend: Backend) -> Any:
    """Portfolio P&L of every scenario of one block, as an `xp` array."""
    xp = backend.xp
    count = len(plan.block_scenarios(block))
    years = plan.horizon_days / TRADING_DAYS
    sector_shocks = backend.normal(plan.seed, block, SECTOR_STREAM, (count, len(portfolio.sectors)))
    pnl = xp.zeros(count, dtype=xp.float64)
    for chunk, start in enumerate(range(0, len(portfolio), POSITION_CHUNK)):
        part = slice(start, start + POSITION_CHUNK)
        beta = backend.asarray(portfolio.beta[part])
        vol = portfolio.vol[part]
        scale = backend.asarray(vol * math.sqrt(years))
        shift = backend.asarray((portfolio.drift[part] - 0.5 * vol**2) * years)
        weight = backend.asarray(portfolio.exposure[part])
        sectors = backend.asarray(portfolio.sector_index[part])

        shocks = backend.normal(plan.seed, block, 1 + chunk, (count, len(vol)))
        shocks *= xp.sqrt(1.0 - beta * beta)
        shocks += sector_shocks[:, sectors] * beta
        shocks *= scale
        shocks += shift
        xp.expm1(shocks, out=shocks)
        shocks *= weight
        pnl += shocks.sum(axis=1)
    return pnl


def block_pnls(portfolio: Portfolio, plan: ScenarioSchedule, blocks: range,
               backend: Backend) -> Iterator[np.ndarray]:
    """Each block's P&L in turn, as NumPy arrays; the caller may stop or checkpoint between blocks."""
    for block in blocks:
        yield backend.to_numpy(simulate_block(portfolio, plan, block, backend))


def scenario_indices(plan: ScenarioSchedule, blocks: range) -> np.ndarray:
    """The global scenario indices of a run of blocks, in order."""
    if not blocks:
        return np.zeros(0, dtype=np.int64)
    return np.arange(plan.block_scenarios(blocks.start).start,
                     plan.block_scenarios(blocks.stop - 1).stop, dtype=np.int64)


def simulate(portfolio: Portfolio, plan: ScenarioSchedule, blocks: range,
             backend: Backend) -> tuple[np.ndarray, np.ndarray]:
    """Scenario indices and portfolio P&L for the given blocks, as NumPy arrays."""
    pnl_parts = list(block_pnls(portfolio, plan, blocks, backend))
    pnl = np.concatenate(pnl_parts) if pnl_parts else np.zeros(0, dtype=np.float64)
    return scenario_indices(plan, blocks), pnl
