"""The validation core: a local CSV (or .csv.gz) in, clean Parquet and a report out. No S3 here.

One streaming pass: DuckDB reads the file (strict CSV, all text), evaluates
every rule in SQL in parallel and hands over Arrow batches in file order;
good rows go straight to `clean.parquet`, bad rows to a spool file. Memory
stays bounded by the batch size whatever the file size. Then the unique-key
rule runs over the clean file, and the reject list is built from the spool.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import rejects
from .checks import BAD, checked_query, csv_source
from .duplicates import KEY, Duplicates, KeyTracker, key_expression, key_output_column, repeated_keys
from .lines import first_structure_problem, record_lines
from .report import build_report, file_error_report
from .schema import POSITIONS_SCHEMA, Schema, load_schema
from .sources import FileProblem, LineCount, check_header, count_lines, detect_compression, read_header
from .writer import BackgroundParquetWriter

DEFAULT_MAX_REJECT_SHARE = 0.05
BATCH_ROWS = 256 * 1024
STREAM_BUFFER = "128MiB"
CLEAN_NAME = "clean.parquet"
REJECTS_NAME = "rejects.csv"
_SPOOL_NAME = "rejected-rows.parquet"
DROP = "__drop__"  # per batch: rows kept out of the clean file (bad or repeated key)

_ARROW_TYPES = {"string": pa.string(), "number": pa.float64()}


@dataclass(frozen=True)
class Validation:
    """The outcome: `clean` exists only when the file passed; `rejects` when rows were rejected."""

    passed: bool
    report: dict[str, Any]
    clean: Path | None
    rejects: Path | None


def clean_arrow_schema(schema: Schema) -> pa.Schema:
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type], nullable=not c.required) for c in schema.columns])


@dataclass
class _Stream:
    records: int
    bad_records: np.ndarray
    spool: Path | None
    duplicates: Duplicates


def _stream(con: duckdb.DuckDBPyConnection, query: str, schema: Schema, keys: KeyTracker,
            clean: Path, spool: Path) -> _Stream:
    """Run the checking query once, splitting its batches into the clean file and the spool."""
    target = clean_arrow_schema(schema)
    key_column = key_output_column(schema)
    records = 0
    bad_chunks: list[np.ndarray] = []
    bad_writer: pq.ParquetWriter | None = None
    names = list(schema.names)

    def clean_rows(batch: pa.RecordBatch) -> pa.RecordBatch:
        keep = pc.invert(batch.column(DROP))
        return batch.select(names).filter(keep).cast(target)

    reader = con.sql(query).to_arrow_reader(BATCH_ROWS)
    try:
        with BackgroundParquetWriter(clean, target, clean_rows) as clean_writer:
            for batch in reader:
                bad = batch.column(BAD)
                dropped = bad
                if key_column is not None:
                    repeats = keys.mark(batch.column(key_column), bad, records)
                    if repeats is not None:
                        dropped = pc.or_(bad, pa.array(repeats))
                clean_writer.write(batch.append_column(DROP, dropped))
                if pc.any(bad).as_py():
                    positions = pc.indices_nonzero(bad).to_numpy().astype(np.int64)
                    numbers = positions + records + 1
                    rows = batch.filter(bad).append_column("__record__", pa.array(numbers, pa.int64()))
                    if bad_writer is None:
                        bad_writer = pq.ParquetWriter(spool, rows.schema)
                    bad_writer.write_batch(rows)
                    bad_chunks.append(numbers)
                records += batch.num_rows
    finally:
        reader.close()
        if bad_writer is not None:
            bad_writer.close()
    bad_records = np.concatenate(bad_chunks) if bad_chunks else np.zeros(0, dtype=np.int64)
    return _Stream(records, bad_records, spool if bad_writer is not None else None, keys.found)


def _locate(path: Path, compression: str, columns: int, error: duckdb.Error) -> FileProblem:
    """Name the first structural problem exactly; fall back to DuckDB's own words."""
    problem = first_structure_problem(path, compression, columns)
    if problem is not None:
        return problem
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return FileProblem(f"cannot be read as CSV: {first}")


def _line_map(path: Path, compression: str, stream: _Stream) -> dict[int, int] | None:
    dups = stream.duplicates
    wanted = set(stream.bad_records.tolist()) | set(dups.record) | set(dups.first_record)
    return record_lines(path, compression, wanted, stream.records)


def validate_file(
    path: Path,
    workdir: Path,
    max_reject_share: float = DEFAULT_MAX_REJECT_SHARE,
    schema: Schema | None = None,
) -> Validation:
    """Validate `path`, writing `clean.parquet` and `rejects.csv` into `workdir`."""
    started = time.perf_counter()
    schema = schema or load_schema(POSITIONS_SCHEMA)
    workdir.mkdir(parents=True, exist_ok=True)
    clean, spool, rejects_csv = workdir / CLEAN_NAME, workdir / _SPOOL_NAME, workdir / REJECTS_NAME
    size = path.stat().st_size
    compression = "none"
    try:
        compression = detect_compression(path)
        header = read_header(path, compression)
        check_header(header, schema)
        with ThreadPoolExecutor(max_workers=1) as pool:
            lines_future = pool.submit(count_lines, path, compression)
            con = duckdb.connect()
            # Room for DuckDB to run ahead of the consumer between fetches.
            con.execute(f"SET streaming_buffer_size = '{STREAM_BUFFER}'")
            con.execute(f"SET max_streaming_buffer_size = '{STREAM_BUFFER}'")
            try:
                source = csv_source(str(path), header, compression)
                key = key_expression(schema)
                query = checked_query(schema, source, key if key_output_column(schema) == KEY else None)
                try:
                    keys = KeyTracker(repeated_keys(con, source, schema))
                    stream = _stream(con, query, schema, keys, clean, spool)
                except duckdb.Error as exc:
                    raise _locate(path, compression, len(header), exc) from exc
                line_count: LineCount = lines_future.result()
                if stream.records == 0:
                    raise FileProblem("the file has a header but no data rows")
                fast_lines = line_count.lines_before_trailing_blanks == 1 + stream.records
                line_map = None if fast_lines else _line_map(path, compression, stream)
                rejected_list = rejects.build(con, schema, stream.spool, stream.duplicates, line_map,
                                              fast_lines, rejects_csv)
                rejected = len(stream.bad_records) + len(stream.duplicates)
                passed = rejected / stream.records <= max_reject_share
            finally:
                con.close()
    except FileProblem as problem:
        for leftover in (clean, spool, rejects_csv):
            leftover.unlink(missing_ok=True)
        report = file_error_report(schema, problem, compression, size, max_reject_share,
                                   time.perf_counter() - started)
        return Validation(False, report, None, None)
    spool.unlink(missing_ok=True)
    if not passed:
        clean.unlink(missing_ok=True)
    report = build_report(
        schema=schema,
        passed=passed,
        compression=compression,
        size=size,
        records=stream.records,
        rejected=rejected,
        max_reject_share=max_reject_share,
        rejects=rejected_list,
        lines_exact=fast_lines or line_map is not None,
        duration=time.perf_counter() - started,
    )
    return Validation(passed, report, clean if passed else None,
                      rejects_csv if rejected_list.entries else None)
