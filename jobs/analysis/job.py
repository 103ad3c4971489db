"""The analysis job: one node's share of the Monte Carlo scenarios.

    python -m analysis --run-id ID --input s3://intermediate/runs/ID/preprocess/clean.parquet
        --output-prefix s3://intermediate/runs/ID/analysis/
        --scenarios 100000 --horizon-days 10 --seed 42

Node index and count come from AWS_BATCH_JOB_NODE_INDEX / AWS_BATCH_JOB_NUM_NODES
(0 and 1 when absent). The node writes `node-NNNN.parquet` under the output
prefix, even when its share is empty, so post-processing can count nodes.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jobkit import cli
from jobkit.aws import S3
from jobkit.errors import JobError, UsageError
from jobkit.partials import PartialInfo, partial_name, write_partial

from .backend import select_backend
from .model import (
    BLOCK_SCENARIOS,
    REQUIRED_COLUMNS,
    Portfolio,
    PortfolioError,
    ScenarioSchedule,
    node_blocks,
    simulate,
)

log = logging.getLogger("analysis")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = cli.JobArgumentParser(prog="python -m analysis", description="Simulate portfolio P&L scenarios.")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--input", required=True, type=cli.s3_object, help="clean.parquet of the run")
    parser.add_argument("--output-prefix", required=True, type=cli.s3_prefix)
    parser.add_argument("--scenarios", required=True, type=cli.positive_int)
    parser.add_argument("--horizon-days", required=True, type=cli.positive_float)
    parser.add_argument("--seed", required=True, type=cli.non_negative_int)
    return parser.parse_args(argv)


def node_position() -> tuple[int, int]:
    """(node index, node count) as AWS Batch multi-node jobs set them."""
    index = cli.env_int("AWS_BATCH_JOB_NODE_INDEX", 0)
    count = cli.env_int("AWS_BATCH_JOB_NUM_NODES", 1)
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"node index {index} does not fit {count} node(s)")
    return index, count


def load_portfolio(path: Path) -> Portfolio:
    try:
        table = pq.read_table(path, columns=list(REQUIRED_COLUMNS))
    except (OSError, pa.ArrowException) as exc:
        raise JobError(f"cannot read the clean positions: {exc}") from exc
    try:
        return Portfolio.from_table(table)
    except PortfolioError as exc:
        raise JobError(f"cannot simulate the clean positions: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    node_index, num_nodes = node_position()
    backend = select_backend()
    plan = ScenarioSchedule(scenarios=args.scenarios, horizon_days=args.horizon_days, seed=args.seed)
    blocks = node_blocks(plan.blocks, node_index, num_nodes)
    log.info("node %d of %d: blocks %d..%d of %d (%d scenarios each) on %s (%s)",
             node_index, num_nodes, blocks.start, blocks.stop - 1, plan.blocks, BLOCK_SCENARIOS,
             backend.name, backend.reason)
    s3 = S3()
    target = args.output_prefix.join(partial_name(node_index))
    with tempfile.TemporaryDirectory(prefix="analysis-") as tmp:
        local = Path(tmp) / "clean.parquet"
        s3.download(args.input, local)
        portfolio = load_portfolio(local)
        started = time.perf_counter()
        scenario, pnl = simulate(portfolio, plan, blocks, backend)
        elapsed = time.perf_counter() - started
        exposure = portfolio.exposure
        info = PartialInfo(
            run_id=args.run_id, node_index=node_index, num_nodes=num_nodes,
            scenarios=plan.scenarios, seed=plan.seed, horizon_days=plan.horizon_days,
            block_size=BLOCK_SCENARIOS, first_block=blocks.start, end_block=blocks.stop,
            backend=backend.name, positions=len(portfolio),
            gross_exposure=float(np.abs(exposure).sum()), net_exposure=float(exposure.sum()),
            elapsed_s=round(elapsed, 3),
        )
        out = Path(tmp) / partial_name(node_index)
        write_partial(out, scenario, pnl, info)
        s3.upload(out, target, "application/vnd.apache.parquet")
    rate = len(scenario) * len(portfolio) / elapsed if elapsed > 0 else 0.0
    log.info("wrote %s: %d scenarios x %d positions in %.2f s (%.3g scenario-positions/s)",
             target, len(scenario), len(portfolio), elapsed, rate)
