"""The unique-key rule: among rows that pass every other rule, the first occurrence of a key wins.

A cheap DuckDB pass over the key column alone finds the keys that occur more
than once (usually none or few). The streaming pass then only has to follow
rows carrying one of those keys, so no per-row Python work is done for the
rest and the clean file is written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .checks import quote_ident
from .schema import Schema

KEY = "__key__"


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


def repeated_keys(con: duckdb.DuckDBPyConnection, source: str, schema: Schema) -> pa.Array:
    """Keys occurring more than once anywhere in the file (valid rows or not)."""
    key = key_expression(schema)
    if key is None:
        return pa.array([], pa.string())
    table = con.sql(
        f"SELECT k FROM (SELECT {key} AS k FROM {source}) WHERE k IS NOT NULL GROUP BY k HAVING count(*) > 1"
    ).to_arrow_table()
    return table.column("k").combine_chunks()


@dataclass
class Duplicates:
    """Later occurrences of a key: their record, the record that kept the key, the key text."""

    record: list[int] = field(default_factory=list)
    first_record: list[int] = field(default_factory=list)
    key: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.record)


class KeyTracker:
    """Follows the repeated keys through the batches, in file order."""

    def __init__(self, repeated: pa.Array) -> None:
        self.repeated = repeated
        self.first: dict[str, int] = {}
        self.found = Duplicates()

    def mark(self, keys: pa.Array, bad: pa.Array, records_before: int) -> np.ndarray | None:
        """A mask of this batch's rows that repeat an earlier valid row's key (None: no such row)."""
        if len(self.repeated) == 0:
            return None
        candidates = pc.and_(pc.is_in(keys, value_set=self.repeated), pc.invert(bad))
        positions = pc.indices_nonzero(candidates).to_numpy()
        if len(positions) == 0:
            return None
        mask = np.zeros(len(keys), dtype=bool)
        for position, key in zip(positions.tolist(), keys.take(positions).to_pylist()):
            record = records_before + position + 1
            first = self.first.setdefault(key, record)
            if first != record:
                mask[position] = True
                self.found.record.append(record)
                self.found.first_record.append(first)
                self.found.key.append(key.replace(chr(31), " | "))
        return mask if mask.any() else None
