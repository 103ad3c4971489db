"""The unique-key rule: among rows that pass every other rule, the first occurrence of a key wins.

Runs over the checked table (see `staging`), which holds the hash of every
row's key. NumPy sorts the hashes of the valid rows: equal keys have equal
hashes, so a hash seen once is a key seen once, and only rows whose hash
repeats (usually none or few) are compared by their key, in DuckDB, to list
the later occurrences in `__dups__`. (Grouping 10M distinct strings in DuckDB
took 1.3-1.7 s on two cores, grouping their hashes 1.0 s; fetching and
sorting the hashes took 0.4-0.8 s.) Before the clean file is written they are
deleted from the table, so it leaves them out. (A DELETE, not an UPDATE of a
flag column: DuckDB 2.0.0 takes seconds over the first UPDATE of a 10M-row
table and milliseconds over the DELETE; the clean write stays a single-table
scan, which keeps file order.)
"""

from __future__ import annotations

import duckdb
import numpy as np

from .checks import BAD, quote_ident
from .schema import Schema
from .staging import KEY_HASH, TABLE, one_row, with_records

KEY = "__key__"
DUPS = "__dups__"  # row (in the checked table), record, first_record (the one that kept the key), key (as reported)


def key_expression(schema: Schema) -> str | None:
    """SQL for the key over the raw text columns; None when the schema has no unique key."""
    if not schema.unique_key:
        return None
    if len(schema.unique_key) == 1:
        return quote_ident(schema.unique_key[0])
    parts = ", ".join(quote_ident(name) for name in schema.unique_key)
    missing = " OR ".join(f"{quote_ident(n)} IS NULL" for n in schema.unique_key)
    return f"CASE WHEN {missing} THEN NULL ELSE concat_ws(chr(31), {parts}) END"


def key_output_column(schema: Schema) -> str | None:
    """The column of the checked query that carries the key."""
    if not schema.unique_key:
        return None
    return schema.unique_key[0] if len(schema.unique_key) == 1 else KEY


def find_duplicates(con: duckdb.DuckDBPyConnection, schema: Schema) -> int:
    """Fill `__dups__`; returns how many rows it lists. Needs `staging.number_records` done."""
    con.execute(f"CREATE OR REPLACE TABLE {DUPS} (row BIGINT, record BIGINT, first_record BIGINT, key VARCHAR)")
    column = key_output_column(schema)
    if column is None:
        return 0
    k = quote_ident(column)
    valid = f"FROM {TABLE} WHERE NOT {BAD} AND {k} IS NOT NULL"
    repeated = _repeated_hashes(con.execute(f"SELECT {KEY_HASH} AS h {valid}").fetchnumpy()["h"])
    if repeated.size == 0:
        return 0
    later = f"""
        SELECT row, first_row, replace(CAST(key AS VARCHAR), chr(31), ' | ') AS key FROM (
            SELECT rowid AS row, min(rowid) OVER (PARTITION BY {k}) AS first_row, {k} AS key
            {valid} AND {KEY_HASH} IN (SELECT unnest($1::UBIGINT[]))
        ) WHERE row <> first_row
    """
    numbered = with_records(with_records(later), "first_row", "first_record")
    con.execute(f"INSERT INTO {DUPS} SELECT row, record, first_record, key FROM ({numbered})", [repeated.tolist()])
    return one_row(con, f"SELECT count(*) FROM {DUPS}")[0]


def _repeated_hashes(hashes: np.ndarray) -> np.ndarray:
    """The values that occur more than once in `hashes` (sorted in place)."""
    hashes.sort()
    return np.unique(hashes[1:][hashes[1:] == hashes[:-1]])


def drop_later(con: duckdb.DuckDBPyConnection) -> None:
    """Delete the rows listed in `__dups__` from the checked table (after the reject list is built)."""
    con.execute(f"DELETE FROM {TABLE} WHERE rowid IN (SELECT row FROM {DUPS})")
