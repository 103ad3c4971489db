"""The schema's rules over values DuckDB's CSV reader has already typed: the fast path.

Numbers are read as DOUBLE and allowed-value columns as ENUM, so the reader
itself rejects what is not a number or not allowed, and lists those records
in its rejects table (they are re-checked as text by `checks`). What it keeps
needs only the cheap rules below. `passes` is exact: a row is bad if and only
if some column's `code` is not 0, the same verdict `checks` gives on the text.
"""

from __future__ import annotations

from .checks import Rule, bound_branches, bound_tests, quote_ident, quote_literal, string_code
from .schema import Column, Schema


def sql_type(column: Column) -> str:
    if column.type == "number":
        return "DOUBLE"
    if column.allowed is not None:
        return "ENUM(" + ", ".join(quote_literal(value) for value in column.allowed) + ")"
    return "VARCHAR"


def column_types(schema: Schema) -> dict[str, str]:
    return {column.name: sql_type(column) for column in schema.columns}


def reported_value(column: Column) -> str:
    """SQL for a typed value as the reject list shows it.

    An ENUM value is allowed by construction, so it never breaks a rule and is
    never shown (NULL).
    """
    if column.allowed is not None:
        return "CAST(NULL AS VARCHAR)"
    return f"CAST({quote_ident(column.name)} AS VARCHAR)"


def _number_passes(column: Column) -> str:
    v = quote_ident(column.name)
    tests = bound_tests(column, v)  # DuckDB orders NaN above +inf: an upper bound also fails NaN
    if not (column.lower_bound and column.upper_bound):
        tests.insert(0, f"isfinite({v})")
    return " AND ".join(tests)


def _not_blank(v: str) -> str:
    # As `checks.string_code`: blank means spaces only. `v < ' ' OR v >= '!'` is
    # `NOT starts_with(v, ' ')`, at half the cost; trim settles the rest.
    return f"({v} < ' ' OR {v} >= '!' OR trim({v}) <> '')"


def _string_passes(column: Column) -> str:
    v = quote_ident(column.name)
    if column.allowed is not None:
        # An ENUM value is one of the allowed values, none blank or too long (see `schema`).
        return f"{v} IS NOT NULL" if column.required else "true"
    length = None
    if column.max_length is not None:  # bytes >= characters: the byte count settles most values
        length = f"(strlen({v}) <= {column.max_length} OR length({v}) <= {column.max_length})"
    if column.required:
        return f"{_not_blank(v)} AND {length}" if length else _not_blank(v)
    return f"{v} IS NULL OR trim({v}) = '' OR {length}" if length else "true"


def passes(schema: Schema) -> str:
    """SQL that is true exactly when a typed row breaks no rule but the unique key.

    Meant for `CASE WHEN`, where DuckDB evaluates an AND or OR only on rows still
    undecided; NULL (a missing required value) counts as false there.
    """
    tests = []
    for column in schema.columns:
        test = _number_passes(column) if column.type == "number" else _string_passes(column)
        if column.type == "number" and not column.required:
            test = f"({quote_ident(column.name)} IS NULL OR ({test}))"
        tests.append(f"({test})")
    return " AND ".join(tests)


def code(column: Column) -> str:
    """SQL for the rule a typed value breaks (0 = none); run on bad rows only."""
    v = quote_ident(column.name)
    if column.allowed is not None:  # an ENUM value is allowed, present and short enough by construction
        return f"CASE WHEN {v} IS NULL THEN {int(Rule.MISSING) if column.required else 0} ELSE 0 END"
    if column.type != "number":
        return string_code(column)
    branches = [f"WHEN {v} IS NULL THEN {int(Rule.MISSING) if column.required else 0}",
                f"WHEN NOT isfinite({v}) THEN {int(Rule.NOT_FINITE)}", *bound_branches(column, v)]
    return f"CASE {' '.join(branches)} ELSE 0 END"
