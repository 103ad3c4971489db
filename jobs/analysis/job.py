"""The analysis job: one node's share of the Monte Carlo scenarios.

    python -m analysis --run-id ID --input s3://intermediate/runs/ID/preprocess/clean.parquet
        --output-prefix s3://intermediate/runs/ID/analysis/
        --scenarios 100000 --horizon-days 10 --seed 42

Node index and count come from AWS_BATCH_JOB_NODE_INDEX / AWS_BATCH_JOB_NUM_NODES
(0 and 1 when absent). The node writes `node-NNNN.parquet` under the output
prefix, even when its share is empty, so post-processing can count nodes.

With THREADLINE_SHARED_DIR set (the progress sidecar's folder), the node also
writes its progress and checkpoints there, and first looks for a checkpoint
the sidecar shipped in an earlier attempt, to continue after its last block.
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

from jobkit import cli, usage
from jobkit.aws import S3
from jobkit.errors import JobError, UsageError
from jobkit.partials import PartialInfo, partial_name, write_partial

from . import checkpoint
from .backend import Backend, select_backend
from .checkpoint import Checkpoint, Plan
from .model import (
    BLOCK_SCENARIOS,
    REQUIRED_COLUMNS,
    Portfolio,
    PortfolioError,
    ScenarioSchedule,
    block_pnls,
    node_blocks,
    scenario_indices,
)
from .recorder import Recorder
from .shared import checkpoint_uri, shared_dir

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


def simulate_node(portfolio: Portfolio, schedule: ScenarioSchedule, blocks: range, backend: Backend,
                  recorder: Recorder | None = None, start: Checkpoint | None = None) -> np.ndarray:
    """The node's P&L in block order, continuing after `start`'s blocks when given."""
    parts = [start.pnl] if start else []
    done = start.blocks_done if start else 0
    if recorder:
        recorder.progress(done)
    for pnl in block_pnls(portfolio, schedule, blocks[done:], backend):
        parts.append(pnl)
        done += 1
        if recorder:
            recorder.block_done(done, parts)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    usage.report_to(args.output_prefix.bucket, args.run_id)
    node_index, num_nodes = node_position()
    backend = select_backend()
    plan = ScenarioSchedule(scenarios=args.scenarios, horizon_days=args.horizon_days, seed=args.seed)
    blocks = node_blocks(plan.blocks, node_index, num_nodes)
    log.info("node %d of %d: blocks %d..%d of %d (%d scenarios each) on %s (%s)",
             node_index, num_nodes, blocks.start, blocks.stop - 1, plan.blocks, BLOCK_SCENARIOS,
             backend.name, backend.reason)
    s3 = S3()
    target = args.output_prefix.join(partial_name(node_index))
    folder = shared_dir()
    with tempfile.TemporaryDirectory(prefix="analysis-") as tmp:
        local = Path(tmp) / "clean.parquet"
        source = s3.download(args.input, local)
        portfolio = load_portfolio(local)
        recorder, start = None, None
        if folder:
            identity = Plan(scenarios=plan.scenarios, horizon_days=plan.horizon_days, seed=plan.seed,
                            num_nodes=num_nodes, node_index=node_index, block_size=BLOCK_SCENARIOS,
                            backend=backend.name, input_uri=str(args.input),
                            input_version_id=source.version_id, input_etag=source.etag)
            start = checkpoint.find(s3, checkpoint_uri(args.output_prefix, node_index), identity, plan, blocks)
            recorder = Recorder.for_attempt(folder, args.run_id, identity, plan, blocks,
                                            resumed_blocks=start.blocks_done if start else 0)
        started = time.perf_counter()
        pnl = simulate_node(portfolio, plan, blocks, backend, recorder, start)
        scenario = scenario_indices(plan, blocks)
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
    computed = len(scenario) - (len(start.pnl) if start else 0)
    rate = computed * len(portfolio) / elapsed if elapsed > 0 else 0.0
    resumed = f" ({len(start.pnl)} from a checkpoint)" if start else ""
    log.info("wrote %s: %d scenarios%s x %d positions in %.2f s (%.3g scenario-positions/s)",
             target, len(scenario), resumed, len(portfolio), elapsed, rate)
