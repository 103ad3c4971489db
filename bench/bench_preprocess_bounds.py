"""How fast could any DuckDB design of the validation be? Stages timed against the raw conversion.

    python bench/bench_preprocess_bounds.py                  # 1M and 10M rows
    python bench/bench_preprocess_bounds.py --rows 200000    # a quick run

The validation needs three things the raw conversion does not: a record
number for every rejected row, the unique-key rule over all rows, and a
second output (the reject list). DuckDB's CSV reader gives no row number, so
the job loads the checked rows into a table (its insertion order, with the
records the reader refused counted in, numbers them) and writes the Parquet
from that table. This benchmark times, in
alternating rounds on the same file, the parts any other design would still
pay, each as a single DuckDB statement:

- `checked_fused`: the job's own checking query written straight to Parquet.
  Every rule, but no table, no record numbers, no unique key, no reject list.
- `typed_fused`: the job's typed read (`typed_load`: numbers as DOUBLE,
  allowed values as ENUM, `store_rejects`) with its rules as a filter,
  straight to Parquet. Rows that fail conversion vanish into the rejects
  table; a stream has no row numbers, no unique key and no reject list.
- `key_hash_pass`: one pass over the CSV hashing the key column only, the
  least a design that learns the duplicates before writing must add.

Each is reported as raw seconds / stage seconds (median of per-round ratios):
a ceiling on the throughput ratio of any design built from that stage.
Results go to stdout and bench/out/preprocess_bounds.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
from bench_preprocess import OUT, positions_file, raw_conversion

from preprocess.checks import BAD, checked_query, csv_source, quote_ident, quote_literal
from preprocess.schema import Schema, load_schema
from preprocess.sources import read_header
from preprocess.typed_checks import column_types, passes
from preprocess.validate import validate_file


def stages(path: Path, work: Path, schema: Schema) -> dict[str, Callable[[], object]]:
    header = read_header(path, "none")
    text_source = csv_source(str(path), header, "none")
    names = ", ".join(quote_ident(name) for name in schema.names)
    parquet = quote_literal(str(work / "stage.parquet"))
    checked_sql = (f"COPY (SELECT {names} FROM ({checked_query(schema, text_source)}) WHERE NOT {BAD})"
                   f" TO {parquet} (FORMAT parquet, COMPRESSION snappy)")
    typed_source = csv_source(str(path), header, "none", column_types(schema), "__reader_rejects__")
    typed_sql = (f"COPY (SELECT {names} FROM {typed_source} WHERE {passes(schema)})"
                 f" TO {parquet} (FORMAT parquet, COMPRESSION snappy)")
    key = quote_ident(schema.unique_key[0])
    hash_sql = f"SELECT hash({key}) AS h FROM {text_source}"

    def run(sql: str, fetch: bool = False) -> Callable[[], object]:
        def action() -> None:
            con = duckdb.connect()
            con.execute("SET preserve_insertion_order = true")
            result = con.execute(sql)
            if fetch:
                result.fetchnumpy()
            con.close()
        return action

    return {
        "raw_conversion": lambda: raw_conversion(path, work),
        "threadline_validation": lambda: validate_file(path, work / "job", 0.05, schema),
        "checked_fused": run(checked_sql),
        "typed_fused": run(typed_sql),
        "key_hash_pass": run(hash_sql, fetch=True),
    }


def bench_size(rows: int, rounds: int, bad_share: float, work: Path) -> dict:
    data = positions_file(rows, bad_share, work)
    actions = stages(data, work, load_schema())
    times: dict[str, list[float]] = {name: [] for name in actions}
    for round_number in range(rounds):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - started)
            print(f"  {rows:,} rows, round {round_number + 1}: {name} {times[name][-1]:.2f} s", flush=True)
    raw = times["raw_conversion"]
    ratio = {name: round(statistics.median(r / t for r, t in zip(raw, values, strict=True)), 2)
             for name, values in times.items()}
    two_pass = [h + t for h, t in zip(times["key_hash_pass"], times["typed_fused"], strict=True)]
    ratio["key_hash_pass+typed_fused"] = round(statistics.median(r / t for r, t in zip(raw, two_pass, strict=True)), 2)
    return {"rows": rows, "best_s": {n: round(min(v), 3) for n, v in times.items()}, "vs_raw": ratio}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bad-share", type=float, default=0.01)
    parser.add_argument("--work", type=Path, default=OUT / "preprocess-data")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results = [bench_size(rows, args.rounds, args.bad_share, args.work) for rows in args.rows]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "preprocess_bounds.json").write_text(json.dumps({"duckdb": duckdb.__version__, "results": results},
                                                           indent=2))
    print(f"\n{'rows':>12} {'stage':<28} {'best s':>8} {'raw s / stage s':>16}")
    for result in results:
        for name, ratio in result["vs_raw"].items():
            best = result["best_s"].get(name, "")
            print(f"{result['rows']:>12,} {name:<28} {best!s:>8} {ratio:>16}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
