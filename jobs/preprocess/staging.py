"""The checked rows as a DuckDB table: parsed and checked once, then read by every later step.

Loading the checking query into a temporary table lets DuckDB parse and check
the CSV a single time on all cores; the unique-key rule, the reject list and
the clean Parquet are then cheap scans of that table. DuckDB keeps the table in
its own memory and spills to `spill_dir` when it does not fit, so Python never
holds the rows. Insertion order is preserved, so `rowid + 1` is the record
number (1 = first row after the header).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from .checks import BAD, quote_ident, quote_literal
from .schema import Schema

TABLE = "__checked__"


def connect(spill_dir: Path) -> duckdb.DuckDBPyConnection:
    """A connection that keeps file order and spills into `spill_dir`."""
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    # DuckDB turns `x IN (many constants)` into a hash join, which does not keep
    # row order over a multi-buffer CSV; kept as an expression, order holds.
    con.execute("SET disabled_optimizers = 'in_clause'")
    con.execute(f"SET temp_directory = {quote_literal(str(spill_dir))}")
    return con


def load(con: duckdb.DuckDBPyConnection, checked_query: str) -> int:
    """Run the checking query into the table; returns the number of records."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {TABLE} AS {checked_query}")
    return con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]


def bad_count(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(f"SELECT count(*) FROM {TABLE} WHERE {BAD}").fetchone()[0]


def bad_records(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Record numbers of rows breaking a rule other than the unique key."""
    return [row[0] for row in con.execute(f"SELECT rowid + 1 FROM {TABLE} WHERE {BAD} ORDER BY rowid").fetchall()]


def write_clean(con: duckdb.DuckDBPyConnection, schema: Schema, path: Path) -> None:
    """The rows without a rule broken, typed and in file order, as Parquet written by DuckDB.

    Later occurrences of a unique key must already be gone (`duplicates.drop_later`).
    """
    columns = ", ".join(quote_ident(name) for name in schema.names)
    con.execute(
        f"COPY (SELECT {columns} FROM {TABLE} WHERE NOT {BAD})"
        f" TO {quote_literal(str(path))} (FORMAT parquet, COMPRESSION snappy)"
    )
