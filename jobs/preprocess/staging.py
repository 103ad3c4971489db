"""The checked rows as DuckDB tables: parsed and checked once, then read by every later step.

Loading the rows into a table (of a private in-memory database) lets DuckDB
parse and check the CSV a single time on all cores; the unique-key rule, the
reject list and the clean Parquet are then scans of that table. DuckDB keeps
the table in its own memory and spills to `spill_dir` when it does not fit,
so Python never holds the rows. Insertion order is preserved, so `rowid`
follows file order and maps to record numbers (1 = first row after the
header) in SQL, allowing for records the reader kept out of the table
(`number_records`, `with_records`).

All tables are plain tables of the connection's private in-memory database,
not TEMP ones: the duplicate rule and the clean Parquet run on second
connections to it (`con.cursor()`), beside the main one.

Whichever way the rows were loaded (`typed_load` or `text_load`), the rows
breaking a rule other than the unique key end up in `__bad_rows__`: record,
then per column the rule code and the value as reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from .checks import BAD, quote_ident, quote_literal
from .schema import Schema

TABLE = "__checked__"
BAD_ROWS = "__bad_rows__"
KEY_HASH = "__key_hash__"
_OFFSETS = "__record_offsets__"


def value_column(name: str) -> str:
    return f"__value__{name}"


def connect(spill_dir: Path) -> duckdb.DuckDBPyConnection:
    """A connection that keeps file order and spills into `spill_dir`."""
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    # DuckDB checkpoints on its own once 16 MB of changes pile up, compressing every
    # table (strings with DictFSST): 2-2.5 s of a 10M-row run spent on tables that
    # live for seconds. Nothing here needs a checkpoint.
    con.execute("SET checkpoint_threshold = '1TB'")
    # DuckDB turns `x IN (many constants)` into a hash join, which does not keep
    # row order over a multi-buffer CSV; kept as an expression, order holds.
    con.execute("SET disabled_optimizers = 'in_clause'")
    con.execute(f"SET temp_directory = {quote_literal(str(spill_dir))}")
    return con


def number_records(con: duckdb.DuckDBPyConnection, skipped: str | None = None) -> None:
    """Prepare `with_records` for a table that lacks the records `skipped` (SQL for a `record` column).

    Run once per load; without `skipped`, rows and records coincide.
    """
    # kept_before: how many records before a skipped one are in the table; `skipped`:
    # how many were skipped up to it. Ties keep the largest count.
    source = skipped or "SELECT CAST(NULL AS BIGINT) AS record WHERE false"
    con.execute(
        f"CREATE OR REPLACE TABLE {_OFFSETS} AS SELECT kept_before, max(skipped) AS skipped FROM ("
        f"SELECT record - n AS kept_before, n AS skipped FROM ("
        f"SELECT record, row_number() OVER (ORDER BY record) AS n FROM ({source}))) GROUP BY kept_before"
    )


def with_records(rows: str, row: str = "row", record: str = "record") -> str:
    """SQL: the relation `rows` plus `record`, the record number of its table row `row`."""
    # An ASOF join finds, per row, the last skipped record whose kept_before it reaches.
    return (f"SELECT r.*, r.{row} + 1 + coalesce(o.skipped, 0) AS {record} FROM ({rows}) r"
            f" ASOF LEFT JOIN {_OFFSETS} o ON r.{row} >= o.kept_before")


def load(con: duckdb.DuckDBPyConnection, query: str, key_column: str | None) -> int:
    """Run `query` into the table; returns the number of rows.

    With `key_column`, the table also keeps its hash as `__key_hash__`: hashing
    during the load, on all cores, is cheaper than the duplicate rule's two
    later passes over the key each hashing it again.
    """
    if key_column is not None:
        query = f"SELECT *, hash({quote_ident(key_column)}) AS {KEY_HASH} FROM ({query})"
    con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS {query}")
    return one_row(con, f"SELECT count(*) FROM {TABLE}")[0]


def bad_count(con: duckdb.DuckDBPyConnection) -> int:
    return one_row(con, f"SELECT count(*) FROM {BAD_ROWS}")[0]


def one_row(con: duckdb.DuckDBPyConnection, query: str) -> tuple[Any, ...]:
    """The row of an aggregate query, which always answers one (DuckDB types `fetchone` as optional)."""
    row = con.execute(query).fetchone()
    assert row is not None, query
    return row


def bad_records(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Record numbers of rows breaking a rule other than the unique key."""
    return [row[0] for row in con.execute(f"SELECT record FROM {BAD_ROWS} ORDER BY record").fetchall()]


def write_clean(con: duckdb.DuckDBPyConnection, schema: Schema, path: Path) -> None:
    """The rows without a rule broken, in file order, as Parquet written by DuckDB.

    Numbers are DOUBLE and every other column a Parquet string (DuckDB writes
    an ENUM column as one), however the table was loaded. Later occurrences
    of a unique key must already be gone (`duplicates.drop_later`).

    No Bloom filters: they speed up lookups of single values, and the analysis
    reads every row; DuckDB spends a fifth of the write building them.
    Row-group min/max statistics are still written.
    """
    columns = ", ".join(quote_ident(name) for name in schema.names)
    con.execute(
        f"COPY (SELECT {columns} FROM {TABLE} WHERE NOT {BAD})"
        f" TO {quote_literal(str(path))} (FORMAT parquet, COMPRESSION snappy, WRITE_BLOOM_FILTER false)"
    )
