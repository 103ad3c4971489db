"""Pre-processing throughput against DuckDB's raw CSV -> Parquet conversion and a pandas version.

    python bench/bench_preprocess.py                 # 1M and 10M rows
    python bench/bench_preprocess.py --rows 200000   # a quick run

For each size it generates a positions file (1 % bad rows), then times, in
rounds that alternate the two: the job's validation core (`validate_file`)
and DuckDB's own `COPY (FROM read_csv(...)) TO parquet` with no validation
(the near-limit); then `pandas_validation.py`, after them. Throughput is
from the best round of each method; the ratio to the raw conversion is the
median of the per-round ratios, since the two runs of a round share the
machine's load at that moment; the pandas ratio compares medians.
CPU seconds (all threads of the process) are reported too: they measure the
work done and move less than wall time on a shared machine.
Results go to stdout and bench/out/preprocess.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from preprocess.checks import quote_literal
from preprocess.schema import load_schema
from preprocess.validate import validate_file
from threadline import samples

from pandas_validation import validate_with_pandas

OUT = Path(__file__).resolve().parent / "out"


def raw_conversion(path: Path, workdir: Path) -> None:
    con = duckdb.connect()
    con.execute(f"COPY (FROM read_csv({quote_literal(str(path))})) "
                f"TO {quote_literal(str(workdir / 'raw.parquet'))} (FORMAT parquet)")
    con.close()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (all threads of this process) of one run."""
    started, cpu = time.perf_counter(), _cpu_seconds()
    action()
    return time.perf_counter() - started, _cpu_seconds() - cpu


def positions_file(rows: int, bad_share: float, work: Path) -> Path:
    """The generated positions file of `rows` rows in `work`, made once and reused by later runs."""
    data = work / f"positions-{rows}.csv"
    if not data.exists():
        print(f"generating {rows:,} rows ...", flush=True)
        samples.main(["--rows", str(rows), "--bad-share", str(bad_share), "--seed", "1", "--out", str(data)])
    return data


def bench_size(rows: int, rounds: int, bad_share: float, skip_pandas: bool, work: Path) -> dict:
    data = positions_file(rows, bad_share, work)
    size_mb = data.stat().st_size / 1e6
    schema = load_schema()
    paired: dict[str, Callable[[], object]] = {
        "duckdb_raw_conversion": lambda: raw_conversion(data, work),
        "threadline_validation": lambda: validate_file(data, work / "job", 0.05, schema),
    }
    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def run(name: str, action: Callable[[], object], round_number: int) -> None:
        wall, used = timed(action)
        times.setdefault(name, []).append(wall)
        cpu.setdefault(name, []).append(used)
        print(f"  {rows:,} rows, round {round_number + 1}: {name} {wall:.2f} s wall, {used:.2f} s CPU", flush=True)

    # The raw conversion and the validation alternate back to back; pandas runs after
    # them, so that freeing its gigabytes never lands on one side of a pair.
    for round_number in range(rounds):
        for name, action in paired.items():
            run(name, action, round_number)
    if not skip_pandas:
        for round_number in range(rounds):
            run("pandas_validation", lambda: validate_with_pandas(data, schema, work / "pandas"), round_number)
    accepted = pq.read_metadata(work / "job" / "clean.parquet").num_rows
    if not skip_pandas:
        pandas_accepted = pq.read_metadata(work / "pandas" / "clean.parquet").num_rows
        assert pandas_accepted == accepted, (pandas_accepted, accepted)
    result: dict = {"rows": rows, "megabytes": round(size_mb, 1), "accepted": accepted, "methods": {}}
    for name, values in times.items():
        best = min(values)
        result["methods"][name] = {"best_s": round(best, 3), "all_s": [round(v, 3) for v in values],
                                   "cpu_s": round(statistics.median(cpu[name]), 3),
                                   "mb_per_s": round(size_mb / best, 1), "rows_per_s": round(rows / best)}
    ours = times["threadline_validation"]
    raw = times["duckdb_raw_conversion"]
    result["vs_raw"] = round(statistics.median(r / o for r, o in zip(raw, ours, strict=True)), 2)
    if not skip_pandas:
        result["vs_pandas"] = round(statistics.median(times["pandas_validation"]) / statistics.median(ours), 2)
    result["cpu_vs_raw"] = round(statistics.median(cpu["duckdb_raw_conversion"]) /
                                 statistics.median(cpu["threadline_validation"]), 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bad-share", type=float, default=0.01)
    parser.add_argument("--skip-pandas-above", type=int, default=20_000_000,
                        help="skip pandas for larger files (it holds the file in memory)")
    parser.add_argument("--work", type=Path, default=OUT / "preprocess-data")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results = [bench_size(rows, args.rounds, args.bad_share, rows > args.skip_pandas_above, args.work)
               for rows in args.rows]
    summary = {"machine": {"cpus": _cpus(), "python": platform.python_version(), "duckdb": duckdb.__version__},
               "results": results}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "preprocess.json").write_text(json.dumps(summary, indent=2))
    print(f"\n{'rows':>12} {'MB':>8} {'method':<24} {'best s':>8} {'MB/s':>8} {'rows/s':>12} {'CPU s':>8}")
    for result in results:
        for name, m in result["methods"].items():
            print(f"{result['rows']:>12,} {result['megabytes']:>8} {name:<24} {m['best_s']:>8} "
                  f"{m['mb_per_s']:>8} {m['rows_per_s']:>12,} {m['cpu_s']:>8}")
        ratios = (f"validation throughput / raw conversion throughput (median of rounds): {result['vs_raw']}x"
                  f" (by CPU seconds: {result['cpu_vs_raw']}x)")
        if "vs_pandas" in result:
            ratios += f"; vs pandas: {result['vs_pandas']}x faster"
        print(f"{'':>12} {ratios}")
    shutil.rmtree(args.work / "job", ignore_errors=True)
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


if __name__ == "__main__":
    raise SystemExit(main())
