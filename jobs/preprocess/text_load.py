"""The exact path: every column read as text and checked by `checks`.

Always right, and the only path for files whose record numbers DuckDB's
rejects table cannot be trusted with (blank lines, line breaks in quoted
fields) or whose values the typed reader and the text rules judge apart.
It also re-checks, as text, the few records the typed reader refused.
"""

from __future__ import annotations

import duckdb

from . import staging
from .checks import BAD, checked_query, code_column, quote_ident, text_column
from .duplicates import key_output_column
from .schema import Schema


def bad_rows_select(schema: Schema, checked: str) -> str:
    """`__bad_rows__` columns from a relation of checked rows that has a `record` column."""
    columns = ["record"]
    for column in schema.columns:
        value = text_column(column.name) if column.type == "number" else column.name
        columns.append(quote_ident(code_column(column.name)))
        columns.append(f"CAST({quote_ident(value)} AS VARCHAR) AS {quote_ident(staging.value_column(column.name))}")
    return f"SELECT {', '.join(columns)} FROM {checked} WHERE {BAD}"


def load(con: duckdb.DuckDBPyConnection, schema: Schema, source: str, key: str | None) -> int:
    """Fill the checked table and `__bad_rows__` from `source` (a text reader, see `checks.csv_source`).

    Every record is a row here; returns how many.
    """
    rows = staging.load(con, checked_query(schema, source, key), key_output_column(schema))
    staging.number_records(con)
    numbered = f"(SELECT rowid + 1 AS record, * FROM {staging.TABLE})"
    con.execute(f"CREATE OR REPLACE TABLE {staging.BAD_ROWS} AS {bad_rows_select(schema, numbered)}")
    return rows
