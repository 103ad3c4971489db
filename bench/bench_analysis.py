"""Analysis throughput (scenario-positions per second) on CPU for 1 and 2 nodes.

    python bench/bench_analysis.py                          # 200 positions, 200k scenarios
    python bench/bench_analysis.py --positions 1000 --scenarios 50000 --nodes 1 2 4

Each node runs in its own process, as on Batch, over the same positions (made
by the sample generator and the validation core); the wall time is from the
first node's start to the last node's end. The merged P&L is checked to be
bit-identical across node counts. On a machine with a GPU and CuPy,
THREADLINE_ARRAY_BACKEND=cupy measures the GPU path the same way.
Results go to stdout and bench/out/analysis.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from analysis.backend import select_backend
from analysis.model import Portfolio, ScenarioSchedule, node_blocks, simulate
from preprocess.validate import validate_file
from threadline import samples

OUT = Path(__file__).resolve().parent / "out"


def run_node(clean: str, plan: ScenarioSchedule, node: int, nodes: int,
             start_at: float) -> tuple[float, float, bytes, str]:
    backend = select_backend()
    portfolio = Portfolio.from_table(pq.read_table(clean))
    while time.time() < start_at:  # all nodes start together
        time.sleep(0.001)
    started = time.time()
    _, pnl = simulate(portfolio, plan, node_blocks(plan.blocks, node, nodes), backend)
    return started, time.time(), pnl.tobytes(), backend.name


def bench_nodes(clean: Path, plan: ScenarioSchedule, nodes: int) -> dict:
    context = multiprocessing.get_context("spawn")
    with context.Pool(nodes) as pool:
        start_at = time.time() + 2.0
        results = pool.starmap(run_node, [(str(clean), plan, k, nodes, start_at) for k in range(nodes)])
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    return {"nodes": nodes, "wall_s": round(wall, 3), "backend": results[0][3],
            "pnl": b"".join(r[2] for r in results)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=200)
    parser.add_argument("--scenarios", type=int, default=200_000)
    parser.add_argument("--horizon-days", type=float, default=10)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "positions.csv"
        samples.main(["--rows", str(args.positions), "--seed", "3", "--out", str(csv_path)])
        clean = validate_file(csv_path, Path(tmp) / "pre").clean
        assert clean is not None
        positions = pq.read_metadata(clean).num_rows
        plan = ScenarioSchedule(scenarios=args.scenarios, horizon_days=args.horizon_days, seed=42)
        runs: dict[int, dict] = {}
        for _ in range(args.rounds):
            for nodes in args.nodes:
                result = bench_nodes(clean, plan, nodes)
                if nodes not in runs or result["wall_s"] < runs[nodes]["wall_s"]:
                    runs[nodes] = result
    reference = runs[args.nodes[0]]["pnl"]
    identical = all(run["pnl"] == reference for run in runs.values())
    work = args.scenarios * positions
    rows = []
    for nodes, run in sorted(runs.items()):
        rate = work / run["wall_s"]
        rows.append({"nodes": nodes, "backend": run["backend"], "wall_s": run["wall_s"],
                     "scenario_positions_per_s": round(rate)})
        print(f"{nodes} node(s), {run['backend']}: {args.scenarios:,} scenarios x {positions} positions "
              f"in {run['wall_s']:.2f} s = {rate:,.0f} scenario-positions/s")
    print(f"merged P&L bit-identical across node counts: {identical}")
    OUT.mkdir(parents=True, exist_ok=True)
    summary = {"positions": positions, "scenarios": args.scenarios, "runs": rows, "bit_identical": identical,
               "pnl_mean": float(np.frombuffer(reference).mean())}
    (OUT / "analysis.json").write_text(json.dumps(summary, indent=2))
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
