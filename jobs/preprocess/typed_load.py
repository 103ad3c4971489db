"""The fast path: DuckDB's typed CSV reader loads and half-checks the rows in one go.

The reader parses numbers as DOUBLE and allowed-value columns as ENUM
straight from its buffers, which costs less than text plus casts. A value it
cannot convert keeps the whole record out of the table and into the reader's
rejects table, with the record's position and text. Those records are then
re-checked as text (`text_load.bad_rows_select` over `checks`), so the
reasons and values reported for them are exactly the text path's.

The fast path steps aside (`finish` returns False; the caller loads the text path)
when its answer could differ from the text path's: a unique key with a
number column (typed, 1 and 1.0 would be one key), or a re-checked record
that breaks no rule (the reader refused a value the rules accept). Record
numbers come from the rejects table's `line`, which counts records, so the
caller must use this path only when records and lines coincide (no blank
lines, no line breaks inside quoted fields). Table rows get their record
numbers by counting the refused records before them (`staging.with_records`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import duckdb

from . import staging, text_load
from .checks import BAD, checked_query, code_column, csv_source, quote_ident
from .duplicates import key_output_column
from .schema import Schema
from .typed_checks import code, column_types, passes, reported_value

READER_REJECTS = "__reader_rejects__"
_RECHECKED = "__rechecked__"
_SKIPPED = "__skipped_records__"
# The refused records, numbered as they are written for the re-check (ordinal = its rowid).
_SKIPPED_QUERY = (f"SELECT line - 1 AS record, row_number() OVER (ORDER BY line) - 1 AS ordinal"
                  f" FROM (SELECT DISTINCT line FROM {READER_REJECTS})")
_RECHECK_FILE = "refused-records.csv"


class ReaderStructureError(Exception):
    """The reader met a record that is not CSV of the header's shape (not a value problem)."""


@dataclass(frozen=True)
class TypedLoad:
    rows: int  # in the checked table
    refused_text: list[str]  # the text of the records the reader refused, in file order

    @property
    def skipped(self) -> int:
        return len(self.refused_text)


def usable(schema: Schema) -> bool:
    """Typed keys would compare numbers, not their text: such schemas take the text path."""
    by_name = {column.name: column for column in schema.columns}
    return all(by_name[name].type != "number" for name in schema.unique_key)


def load(con: duckdb.DuckDBPyConnection, schema: Schema, path: Path, compression: str,
         header: tuple[str, ...], key: str | None) -> TypedLoad:
    """Fill the checked table through the typed reader and number its rows.

    Raises ReaderStructureError on a broken record.
    """
    source = csv_source(str(path), header, compression, column_types(schema), READER_REJECTS)
    columns = [quote_ident(name) for name in schema.names] + ([f"{key} AS __key__"] if key else [])
    rows = staging.load(
        con, f"SELECT {', '.join(columns)}, CASE WHEN {passes(schema)} THEN false ELSE true END AS {BAD} FROM {source}",
        key_output_column(schema),
    )
    refused = con.execute(
        f"SELECT line, bool_or(error_type <> 'CAST'), any_value(error_message), any_value(csv_line)"
        f" FROM {READER_REJECTS} GROUP BY line ORDER BY line"
    ).fetchall()
    broken = [(line, message) for line, structural, message, _text in refused if structural]
    if broken:
        raise ReaderStructureError(f"record {broken[0][0] - 1}: {broken[0][1]}")
    con.execute(f"CREATE OR REPLACE TABLE {_SKIPPED} AS {_SKIPPED_QUERY}")
    staging.number_records(con, f"SELECT record FROM {_SKIPPED}")
    return TypedLoad(rows=rows, refused_text=[text for *_, text in refused])


def _write_refused(loaded: TypedLoad, header: tuple[str, ...], path: Path) -> None:
    """The refused records as a CSV of their own (the rejects table's text lacks the CR of CRLF files)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(header)
    for text in loaded.refused_text:
        out.write(text.strip("\r\n") + "\n")
    path.write_text(out.getvalue(), encoding="utf-8")


def _recheck(con: duckdb.DuckDBPyConnection, schema: Schema, loaded: TypedLoad, header: tuple[str, ...],
             key: str | None, workdir: Path) -> bool:
    """Check the refused records as text into `__rechecked__`; False unless every one breaks a rule."""
    refused_file = workdir / _RECHECK_FILE
    try:
        _write_refused(loaded, header, refused_file)
        source = csv_source(str(refused_file), header, "none")
        con.execute(f"CREATE OR REPLACE TABLE {_RECHECKED} AS {checked_query(schema, source, key)}")
    except duckdb.Error:
        return False  # the refused text does not parse on its own
    finally:
        refused_file.unlink(missing_ok=True)
    counted, bad = staging.one_row(con, f"SELECT count(*), count(*) FILTER ({BAD}) FROM {_RECHECKED}")
    return counted == bad == loaded.skipped


def finish(con: duckdb.DuckDBPyConnection, schema: Schema, loaded: TypedLoad, header: tuple[str, ...],
           key: str | None, workdir: Path) -> bool:
    """Re-check the refused records and fill `__bad_rows__`; False when the text path must decide."""
    if loaded.skipped and not _recheck(con, schema, loaded, header, key, workdir):
        return False
    # Bad rows only (filter, then number, then codes), and a value only where a rule is broken.
    bad = staging.with_records(f"SELECT rowid AS row, * FROM {staging.TABLE} WHERE {BAD}")
    codes = [f"CAST({code(column)} AS UTINYINT) AS {quote_ident(code_column(column.name))}"
             for column in schema.columns]
    columns = ["record"]
    for column in schema.columns:
        broken = quote_ident(code_column(column.name))
        columns.append(broken)
        columns.append(f"CASE WHEN {broken} <> 0 THEN {reported_value(column)} END"
                       f" AS {quote_ident(staging.value_column(column.name))}")
    con.execute(f"CREATE OR REPLACE TABLE {staging.BAD_ROWS} AS SELECT {', '.join(columns)}"
                f" FROM (SELECT *, {', '.join(codes)} FROM ({bad}))")
    if loaded.skipped:
        rechecked = (f"(SELECT s.record, c.* FROM (SELECT rowid AS ordinal, * FROM {_RECHECKED}) c"
                     f" JOIN {_SKIPPED} s USING (ordinal))")
        con.execute(f"INSERT INTO {staging.BAD_ROWS} {text_load.bad_rows_select(schema, rechecked)}")
    return True
