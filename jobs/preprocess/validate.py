"""The validation core: a local CSV (or .csv.gz) in, clean Parquet and a report out. No S3 here.

DuckDB reads the file once and evaluates every rule in SQL on all cores into
a table of a private in-memory database (see `staging`): typed when it can
(`typed_load`), as text otherwise (`text_load`), with the same verdicts
either way. The unique-key rule, then the reject list and the clean Parquet
(written by DuckDB, side by side) are scans of that table. Rows never become
Python objects, and DuckDB spills to disk when the table outgrows its memory.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from . import rejects, staging, text_load, typed_load
from .checks import csv_source
from .duplicates import DUPS, KEY, drop_later, find_duplicates, key_expression, key_output_column
from .lines import first_structure_problem, record_lines
from .report import build_report, file_error_report
from .schema import POSITIONS_SCHEMA, Schema, load_schema
from .sources import FileProblem, LineCount, check_header, count_lines, detect_compression, read_header

DEFAULT_MAX_REJECT_SHARE = 0.05
CLEAN_NAME = "clean.parquet"
REJECTS_NAME = "rejects.csv"
_SPILL_NAME = "duckdb-spill"

@dataclass(frozen=True)
class Validation:
    """The outcome: `clean` exists only when the file passed; `rejects` when rows were rejected."""

    passed: bool
    report: dict[str, Any]
    clean: Path | None
    rejects: Path | None


def _locate(path: Path, compression: str, columns: int, error: Exception) -> FileProblem:
    """Name the first structural problem exactly; fall back to DuckDB's own words."""
    problem = first_structure_problem(path, compression, columns)
    if problem is not None:
        return problem
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return FileProblem(f"cannot be read as CSV: {first}")


def _line_map(con: duckdb.DuckDBPyConnection, path: Path, compression: str, records: int) -> dict[int, int] | None:
    dups = con.execute(f"SELECT record FROM {DUPS} UNION SELECT first_record FROM {DUPS}").fetchall()
    wanted = set(staging.bad_records(con)) | {row[0] for row in dups}
    return record_lines(path, compression, wanted, records)


def _apart[T](action: Callable[..., T], con: duckdb.DuckDBPyConnection, *args: Any) -> T:
    """Run `action` on a second connection to `con`'s database, beside work on `con` itself."""
    cursor = con.cursor()
    try:
        return action(cursor, *args)
    finally:
        cursor.close()


def _load(con: duckdb.DuckDBPyConnection, schema: Schema, path: Path, compression: str, header: tuple[str, ...],
          lines: Future[LineCount], workdir: Path, pool: ThreadPoolExecutor) -> tuple[int, bool, Future[int] | None]:
    """Load and check the rows, typed when that gives the text path's answer.

    Returns (records, fast_lines, the duplicate count when already under way). On the typed
    path the duplicate rule runs apart while the refused records are re-checked and the bad
    rows coded: NumPy's sort of the key hashes and DuckDB's small queries fill both cores.
    """
    key = key_expression(schema) if key_output_column(schema) == KEY else None

    def lines_are_records(records: int) -> bool:
        return lines.result().lines_before_trailing_blanks == 1 + records

    try:
        if typed_load.usable(schema):
            loaded = typed_load.load(con, schema, path, compression, header, key)
            records = loaded.rows + loaded.skipped
            if lines_are_records(records):
                duplicates = pool.submit(_apart, find_duplicates, con, schema)
                try:
                    confirmed = typed_load.finish(con, schema, loaded, header, key, workdir)
                finally:
                    wait([duplicates])  # the text path replaces the tables it reads
                if confirmed:
                    return records, True, duplicates
        records = text_load.load(con, schema, csv_source(str(path), header, compression), key)
    except (duckdb.Error, typed_load.ReaderStructureError) as exc:
        raise _locate(path, compression, len(header), exc) from exc
    return records, lines_are_records(records), None


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
    clean, rejects_csv, spill = workdir / CLEAN_NAME, workdir / REJECTS_NAME, workdir / _SPILL_NAME
    size = path.stat().st_size
    compression = "none"
    try:
        compression = detect_compression(path)
        header = read_header(path, compression)
        check_header(header, schema)
        with ThreadPoolExecutor(max_workers=2) as pool:
            lines = pool.submit(count_lines, path, compression)
            con = staging.connect(spill)
            writing: Future[None] | None = None
            try:
                records, fast_lines, duplicates = _load(con, schema, path, compression, header, lines, workdir, pool)
                if records == 0:
                    raise FileProblem("the file has a header but no data rows")
                duplicate_count = duplicates.result() if duplicates else find_duplicates(con, schema)
                rejected = staging.bad_count(con) + duplicate_count
                passed = rejected / records <= max_reject_share
                if passed:
                    drop_later(con)  # the reject list reads `__dups__`, not the table
                    # The Parquet writer leaves part of the cores idle: the reject list's queries fill them.
                    writing = pool.submit(_apart, staging.write_clean, con, schema, clean)
                line_map = None if fast_lines else _line_map(con, path, compression, records)
                rejected_list = rejects.build(con, schema, line_map, fast_lines, rejects_csv)
                if writing is not None:
                    writing.result()
            finally:
                if writing is not None:
                    wait([writing])  # before the connection closes under it
                con.close()
                shutil.rmtree(spill, ignore_errors=True)
    except FileProblem as problem:
        for leftover in (clean, rejects_csv):
            leftover.unlink(missing_ok=True)
        report = file_error_report(schema, problem, compression, size, max_reject_share,
                                   time.perf_counter() - started)
        return Validation(False, report, None, None)
    if not passed:
        clean.unlink(missing_ok=True)
    report = build_report(
        schema=schema,
        passed=passed,
        compression=compression,
        size=size,
        records=records,
        rejected=rejected,
        max_reject_share=max_reject_share,
        rejects=rejected_list,
        lines_exact=fast_lines or line_map is not None,
        duration=time.perf_counter() - started,
    )
    return Validation(passed, report, clean if passed else None,
                      rejects_csv if rejected_list.entries else None)
