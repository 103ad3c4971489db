"""The unique-key rule: among rows that pass every other rule, the first occurrence of a key wins.

Runs in DuckDB over the checked table (see `staging`): a grouping over the
key column of the valid rows finds the keys that occur more than once
(usually none or few); only rows carrying one of them are ranked, and the
later occurrences are listed in `__dups__`. Once the reject list is built they
are deleted from the table, so the clean file leaves them out. (A DELETE, not
an UPDATE of a flag column: DuckDB 2.0.0 takes seconds over the first UPDATE
of a 10M-row table and milliseconds over the DELETE; the clean write stays a
single-table scan, which keeps file order.)
"""

from __future__ import annotations

import duckdb

from .checks import BAD, quote_ident
from .schema import Schema
from .staging import TABLE

KEY = "__key__"
DUPS = "__dups__"  # record, first_record (the one that kept the key), key (as reported)


def key_expression(schema: Schema) -> str | None:
    """SQL for the key over the raw text columns; None when the schema has no unique key."""
    if not schema.unique_key:
        return None
    if len(schema.unique_key) == 1:
        return quote_ident(schema.unique_key[0])
    parts = ", ".join(quote_ident(name) for name in schema.unique_key)
    return f"CASE WHEN {' OR '.join(f'{quote_ident(n)} IS NULL' for n in schema.unique_key)} THEN NULL ELSE concat_ws(chr(31), {parts}) END"


def key_output_column(schema: Schema) -> str | None:
    """The column of the checked query that carries the key."""
    if not schema.unique_key:
        return None
    return schema.unique_key[0] if len(schema.unique_key) == 1 else KEY


def find_duplicates(con: duckdb.DuckDBPyConnection, schema: Schema) -> int:
    """Fill `__dups__`; returns how many rows it lists."""
    column = key_output_column(schema)
    if column is None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {DUPS} (record BIGINT, first_record BIGINT, key VARCHAR)")
        return 0
    k = quote_ident(column)
    valid = f"FROM {TABLE} WHERE NOT {BAD} AND {k} IS NOT NULL"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {DUPS} AS
        SELECT record, first_record, replace(key, chr(31), ' | ') AS key FROM (
            SELECT rowid + 1 AS record, min(rowid) OVER (PARTITION BY {k}) + 1 AS first_record, {k} AS key
            {valid} AND {k} IN (SELECT {k} {valid} GROUP BY {k} HAVING count(*) > 1)
        ) WHERE record <> first_record
        """
    )
    return con.execute(f"SELECT count(*) FROM {DUPS}").fetchone()[0]


def drop_later(con: duckdb.DuckDBPyConnection) -> None:
    """Delete the rows listed in `__dups__` from the checked table (after the reject list is built)."""
    con.execute(f"DELETE FROM {TABLE} WHERE rowid IN (SELECT record - 1 FROM {DUPS})")
