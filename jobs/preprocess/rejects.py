"""The reject list: one entry per (row, column, rule), with line number, reason and escaped value.

Built in DuckDB from `__bad_rows__` and the duplicates, so a file with
millions of rejects is written to `rejects.csv` without Python loops; the
report keeps the first entries and the counts per rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from .checks import Rule, code_column, possible_rules, quote_ident, quote_literal, reason
from .duplicates import DUPS
from .escaping import sql_macro
from .schema import Schema
from .staging import BAD_ROWS, one_row, value_column

SAMPLE_SIZE = 1000
CSV_COLUMNS = ("line", "record", "column", "rule", "reason", "value")


@dataclass(frozen=True)
class RejectList:
    entries: int
    by_rule: list[dict[str, Any]]
    sample: list[dict[str, Any]]


def _create_rules_table(con: duckdb.DuckDBPyConnection, schema: Schema) -> None:
    """`__rules__`: the words for every (column, rule code) the schema can give."""
    columns, codes, names, reasons = [], [], [], []
    for column in schema.columns:
        for rule in possible_rules(column):
            columns.append(column.name)
            codes.append(int(rule))
            names.append(rule.label)
            reasons.append(reason(column, rule))
    key = "+".join(schema.unique_key)
    columns.append(key)
    codes.append(int(Rule.DUPLICATE))
    names.append(Rule.DUPLICATE.label)
    reasons.append(f"duplicate {key}")
    con.execute(
        'CREATE OR REPLACE TABLE __rules__ AS SELECT unnest($1::VARCHAR[]) AS "column",'
        " unnest($2::UTINYINT[]) AS code, unnest($3::VARCHAR[]) AS rule, unnest($4::VARCHAR[]) AS reason",
        [columns, codes, names, reasons],
    )


def _entry_selects(schema: Schema) -> list[str]:
    selects = []
    for position, column in enumerate(schema.columns):
        code = quote_ident(code_column(column.name))
        value = quote_ident(value_column(column.name))
        selects.append(
            f"SELECT record, {position} AS pos, {quote_literal(column.name)} AS \"column\","
            f" {code} AS code, {value} AS value, CAST(NULL AS BIGINT) AS first_record"
            f" FROM {BAD_ROWS} WHERE {code} <> 0"
        )
    return selects


def build(
    con: duckdb.DuckDBPyConnection,
    schema: Schema,
    line_map: dict[int, int] | None,
    fast_lines: bool,
    out_csv: Path,
) -> RejectList:
    """Write `out_csv` (when there is anything to list) and summarise it.

    Reads the checked table and `__dups__`, both already filled.
    """
    con.execute(sql_macro())
    _create_rules_table(con, schema)
    key = "+".join(schema.unique_key)
    key_position = min((schema.names.index(k) for k in schema.unique_key), default=0)
    selects = _entry_selects(schema)
    selects.append(
        f"SELECT record, {key_position} AS pos, {quote_literal(key)} AS \"column\","
        f" CAST({int(Rule.DUPLICATE)} AS UTINYINT) AS code, key AS value, first_record FROM {DUPS}"
    )
    joins = ""
    if fast_lines:
        line, first_line = "e.record + 1", "e.first_record + 1"
    else:
        items = sorted((line_map or {}).items())
        con.execute("CREATE OR REPLACE TABLE __lines__ AS"
                    " SELECT unnest($1::BIGINT[]) AS record, unnest($2::BIGINT[]) AS line",
                    [[r for r, _ in items], [n for _, n in items]])
        line, first_line = "l1.line", "l2.line"
        joins = ("LEFT JOIN __lines__ l1 ON l1.record = e.record"
                 " LEFT JOIN __lines__ l2 ON l2.record = e.first_record")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE __entries__ AS
        SELECT {line} AS line, e.record, e."column", r.rule,
               CASE WHEN e.code = {int(Rule.DUPLICATE)}
                    THEN r.reason || ' (first on line ' || coalesce(CAST({first_line} AS VARCHAR), 'unknown')
                         || ', record ' || e.first_record || ')'
                    ELSE r.reason END AS reason,
               safe_text(e.value) AS value, e.pos, r.reason AS rule_reason
        FROM ({' UNION ALL '.join(selects)}) e
        JOIN __rules__ r ON r."column" = e."column" AND r.code = e.code
        {joins}
        """
    )
    entries = one_row(con, "SELECT count(*) FROM __entries__")[0]
    if entries:
        columns = ", ".join(f'"{name}"' for name in CSV_COLUMNS)
        con.execute(
            f"COPY (SELECT {columns} FROM __entries__ ORDER BY record, pos)"
            f" TO {quote_literal(str(out_csv))} (FORMAT csv, HEADER true)"
        )
    sample_rows = con.execute(
        f"SELECT {', '.join(f'{chr(34)}{n}{chr(34)}' for n in CSV_COLUMNS)} FROM __entries__"
        f" ORDER BY record, pos LIMIT {SAMPLE_SIZE}"
    ).fetchall()
    counts = con.execute(
        'SELECT "column", rule, rule_reason, count(*) AS rows FROM __entries__'
        ' GROUP BY ALL ORDER BY rows DESC, "column", rule'
    ).fetchall()
    con.execute("DROP TABLE IF EXISTS __lines__")
    return RejectList(
        entries=entries,
        by_rule=[{"column": c, "rule": r, "reason": why, "rows": n} for c, r, why, n in counts],
        sample=[dict(zip(CSV_COLUMNS, row, strict=True)) for row in sample_rows],
    )
