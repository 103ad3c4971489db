"""Every row rule of a schema as one DuckDB SQL query over the CSV read as text.

The query reads all columns as VARCHAR with DuckDB's strict CSV reader, casts
numbers once, and gives per column a rule code (0 = fine). The output holds
the typed values, the codes, the original text of number columns on bad rows
(for the report) and a `__bad__` flag, in file order.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

from .schema import Column, Schema


class Rule(IntEnum):
    """Why a value was rejected; the names appear in reports."""

    MISSING = 1
    NOT_A_NUMBER = 2
    NOT_FINITE = 3
    TOO_SMALL = 4
    TOO_LARGE = 5
    NOT_ALLOWED = 6
    TOO_LONG = 7
    DUPLICATE = 8

    @property
    def label(self) -> str:
        return self.name.lower()


BAD = "__bad__"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def code_column(name: str) -> str:
    return f"__code__{name}"


def text_column(name: str) -> str:
    return f"__text__{name}"


def _num(value: float) -> str:
    return repr(float(value))


def reason(column: Column, rule: Rule) -> str:
    """The rule broken, in words; never includes the offending value."""
    match rule:
        case Rule.MISSING:
            return "required value is missing"
        case Rule.NOT_A_NUMBER:
            return "not a number"
        case Rule.NOT_FINITE:
            return "not a finite number"
        case Rule.TOO_SMALL:
            bound, inclusive = column.lower_bound or (0.0, True)
            return f"must be {'>=' if inclusive else '>'} {bound:g}"
        case Rule.TOO_LARGE:
            bound, inclusive = column.upper_bound or (0.0, True)
            return f"must be {'<=' if inclusive else '<'} {bound:g}"
        case Rule.NOT_ALLOWED:
            return "not one of: " + ", ".join(column.allowed or ())
        case Rule.TOO_LONG:
            return f"longer than {column.max_length} characters"
        case Rule.DUPLICATE:
            return "duplicate key"
    raise ValueError(rule)


def possible_rules(column: Column) -> list[Rule]:
    """The rules a column can break (the duplicate rule is handled apart)."""
    rules = [Rule.MISSING] if column.required else []
    if column.type == "number":
        rules += [Rule.NOT_A_NUMBER, Rule.NOT_FINITE]
        rules += [Rule.TOO_SMALL] if column.lower_bound else []
        rules += [Rule.TOO_LARGE] if column.upper_bound else []
    else:
        rules += [Rule.TOO_LONG] if column.max_length is not None else []
        rules += [Rule.NOT_ALLOWED] if column.allowed is not None else []
    return rules


def string_code(column: Column) -> str:
    v = quote_ident(column.name)
    missing = int(Rule.MISSING) if column.required else 0
    # Most values are fine: one cheap test settles them before the rule-by-rule CASE.
    fine = [f"{v} IS NOT NULL", f"NOT starts_with({v}, ' ')"]
    branches = [f"WHEN {v} IS NULL OR (starts_with({v}, ' ') AND trim({v}) = '') THEN {missing}"]
    if column.max_length is not None:
        fine.append(f"strlen({v}) <= {column.max_length}")  # bytes >= characters
        branches.append(f"WHEN length({v}) > {column.max_length} THEN {int(Rule.TOO_LONG)}")
    if column.allowed is not None:
        allowed = ", ".join(quote_literal(value) for value in column.allowed)
        fine.append(f"{v} IN ({allowed})")
        branches.append(f"WHEN {v} NOT IN ({allowed}) THEN {int(Rule.NOT_ALLOWED)}")
    return f"CASE WHEN {' AND '.join(fine)} THEN 0 {' '.join(branches)} ELSE 0 END"


_BREAKS = {">=": "<", ">": "<=", "<=": ">", "<": ">="}  # the comparison that breaks each test


def _bounds(column: Column) -> list[tuple[str, str, Rule]]:
    """(comparison a value must pass, bound, rule it breaks otherwise) per schema bound."""
    bounds = []
    if column.lower_bound:
        bound, inclusive = column.lower_bound
        bounds.append((">=" if inclusive else ">", _num(bound), Rule.TOO_SMALL))
    if column.upper_bound:
        bound, inclusive = column.upper_bound
        bounds.append(("<=" if inclusive else "<", _num(bound), Rule.TOO_LARGE))
    return bounds


def bound_tests(column: Column, number: str) -> list[str]:
    """SQL tests that `number` keeps within the column's schema bounds (none when unbounded)."""
    return [f"{number} {passing} {bound}" for passing, bound, _rule in _bounds(column)]


def bound_branches(column: Column, number: str) -> list[str]:
    """`WHEN` branches naming the bound that `number` breaks."""
    return [f"WHEN {number} {_BREAKS[passing]} {bound} THEN {int(rule)}" for passing, bound, rule in _bounds(column)]


def _number_code(column: Column, number: str) -> str:
    v = quote_ident(column.name)
    missing = int(Rule.MISSING) if column.required else 0
    fine = [f"{number} IS NOT NULL", f"isfinite({number})", *bound_tests(column, number)]
    branches = [
        f"WHEN {v} IS NULL THEN {missing}",
        f"WHEN {number} IS NULL THEN CASE WHEN trim({v}) = '' THEN {missing} ELSE {int(Rule.NOT_A_NUMBER)} END",
        f"WHEN NOT isfinite({number}) THEN {int(Rule.NOT_FINITE)}",
        *bound_branches(column, number),
    ]
    return f"CASE WHEN {' AND '.join(fine)} THEN 0 {' '.join(branches)} ELSE 0 END"


def csv_source(
    path: str,
    file_columns: tuple[str, ...],
    compression: str,
    types: Mapping[str, str] | None = None,
    rejects_table: str | None = None,
) -> str:
    """DuckDB's strict CSV reader over `path`, columns named as in the header.

    Columns are VARCHAR unless `types` names an SQL type. With `rejects_table`
    the reader keeps going past values it cannot convert and lists them there
    (DuckDB's `store_rejects`); otherwise it fails on the first.
    """
    types = types or {}
    columns = ", ".join(f"{quote_literal(name)}: {quote_literal(types.get(name, 'VARCHAR'))}" for name in file_columns)
    rejects = ""
    if rejects_table:
        rejects = (f", store_rejects = true, rejects_table = {quote_literal(rejects_table)},"
                   f" rejects_scan = {quote_literal(rejects_table + '_scans')}")
    return (
        f"read_csv({quote_literal(path)}, header = true, auto_detect = false,"
        f" columns = {{{columns}}}, delim = ',', quote = '\"', escape = '\"',"
        f" strict_mode = true, null_padding = false, encoding = 'utf-8',"
        f" compression = {quote_literal(compression)}{rejects})"
    )


def checked_query(schema: Schema, source: str, key: str | None = None) -> str:
    """Typed values, rule codes, bad-row text and the bad flag, in file order.

    `key`, when given, is SQL over the raw columns carried along as `__key__`.
    """
    numbers = [c for c in schema.columns if c.type == "number"]
    casts = ", ".join(
        f"TRY_CAST({quote_ident(c.name)} AS DOUBLE) AS {quote_ident('__num__' + c.name)}" for c in numbers
    )
    # The raw text columns stay referenced after the casts on purpose: DuckDB 2.0.0
    # pushes a TRY_CAST whose input is otherwise unused into the CSV reader, where
    # it fails the whole read instead of yielding NULL.
    extra = [casts] if casts else []
    extra += [f"{key} AS __key__"] if key else []
    cast_step = f"SELECT *{''.join(', ' + e for e in extra)} FROM {source}"

    values, codes = [], []
    for column in schema.columns:
        if column.type == "number":
            number = quote_ident("__num__" + column.name)
            values.append(f"{number} AS {quote_ident(column.name)}")
            codes.append(f"CAST({_number_code(column, number)} AS UTINYINT) AS {quote_ident(code_column(column.name))}")
            values.append(f"{quote_ident(column.name)} AS {quote_ident(text_column(column.name))}")
        else:
            values.append(quote_ident(column.name))
            codes.append(f"CAST({string_code(column)} AS UTINYINT) AS {quote_ident(code_column(column.name))}")
    carried = ["__key__"] if key else []
    check_step = f"SELECT {', '.join(values + codes + carried)} FROM ({cast_step})"

    any_bad = " OR ".join(f"{quote_ident(code_column(c.name))} <> 0" for c in schema.columns)
    final = []
    for column in schema.columns:
        final.append(quote_ident(column.name))
        if column.type == "number":
            text = quote_ident(text_column(column.name))
            final.append(f"CASE WHEN {BAD} THEN {text} END AS {text}")
        final.append(quote_ident(code_column(column.name)))
    final += carried
    return (
        f"SELECT {', '.join(final)}, {BAD} FROM "
        f"(SELECT *, ({any_bad}) AS {BAD} FROM ({check_step}))"
    )
