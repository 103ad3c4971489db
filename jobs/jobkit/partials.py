"""The partial P&L file one analysis node writes and post-processing merges.

`node-0003.parquet`: columns `scenario` (int64, global scenario index) and
`pnl` (float64, portfolio P&L), plus JSON metadata under the schema key
`threadline.partial` saying which run, node and plan produced it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

METADATA_KEY = b"threadline.partial"
_NAME = re.compile(r"^node-(\d{4,})\.parquet$")


def partial_name(node_index: int) -> str:
    return f"node-{node_index:04d}.parquet"


def node_of(name: str) -> int | None:
    """The node index a partial's file name carries; None for any other name."""
    match = _NAME.match(name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class PartialInfo:
    run_id: str
    node_index: int
    num_nodes: int
    scenarios: int
    seed: int
    horizon_days: float
    block_size: int
    first_block: int
    end_block: int
    backend: str
    positions: int
    gross_exposure: float
    net_exposure: float
    elapsed_s: float


def write_partial(path: Path, scenario: np.ndarray, pnl: np.ndarray, info: PartialInfo) -> None:
    table = pa.table({"scenario": pa.array(scenario, pa.int64()), "pnl": pa.array(pnl, pa.float64())})
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(asdict(info)).encode("utf-8")})
    pq.write_table(table, path)


def read_partial(path: Path) -> tuple[np.ndarray, np.ndarray, PartialInfo]:
    """Scenario indices, P&L and metadata; ValueError when the file is not a partial."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"not a Parquet file: {exc}") from exc
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None or table.column_names != ["scenario", "pnl"]:
        raise ValueError("not a partial P&L file (columns or metadata missing)")
    try:
        info = PartialInfo(**json.loads(raw))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad partial metadata: {exc}") from exc
    scenario = table.column("scenario").to_numpy()
    pnl = table.column("pnl").to_numpy()
    return scenario, pnl, info
