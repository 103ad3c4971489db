"""Neutralise spreadsheet formulas in text that reaches a report.

A value that starts with `=`, `+`, `-` or `@` is run as a formula when a report
is opened in a spreadsheet. Importers that trim leading whitespace (a space, a
tab, a line feed, a carriage return, ...) run `" =..."` too, and some locales
read the full-width signs (U+FF1D, U+FF0B, U+FF0D, U+FF20) as the ASCII ones.
So a value that starts with any of these characters, whitespace included, gets
a leading `'` (the usual way to force text), unless the whole value is a plain
number like `-3.5`. Values are also capped in length. The same rule exists as
a Python function (for JSON) and as a DuckDB macro (for the bulk reject list);
a test checks they agree.
"""

from __future__ import annotations

import re

MAX_CHARS = 200
# Any leading whitespace is escaped, not only whitespace before a formula sign:
# simpler to keep equal in Python and in DuckDB's RE2, and harmless in a report.
# ASCII signs and whitespace as regex escapes; the no-break space, the ideographic
# space and the full-width signs as the characters themselves (Python and RE2 both
# read UTF-8 literals; RE2 has no \u escape).
FORMULA_START = "^[=+\\-@\\t\\n\\v\\f\\r \u00a0\u3000\uff1d\uff0b\uff0d\uff20]"
PLAIN_NUMBER = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"  # whole value

_FORMULA = re.compile(FORMULA_START)
_NUMBER = re.compile(PLAIN_NUMBER)


def safe_text(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_CHARS:
        value = value[: MAX_CHARS - 1] + "…"
    if _FORMULA.match(value) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def sql_macro(name: str = "safe_text") -> str:
    """DuckDB `CREATE MACRO` statements with the same behaviour as `safe_text`.

    Plain expressions, no subquery: DuckDB runs a subquery in a macro as a join
    at every call site, which cost more than the rest of the reject list.
    """
    formula = FORMULA_START.replace("'", "''")
    number = PLAIN_NUMBER.replace("'", "''")
    capped = f"{name}_capped"
    return (
        f"CREATE OR REPLACE TEMP MACRO {capped}(v) AS"
        f" CASE WHEN length(v) > {MAX_CHARS} THEN left(v, {MAX_CHARS - 1}) || '…' ELSE v END;"
        f" CREATE OR REPLACE TEMP MACRO {name}(v) AS"
        f" CASE WHEN regexp_matches(v, '{formula}') AND NOT regexp_full_match({capped}(v), '{number}')"
        f" THEN '''' || {capped}(v) ELSE {capped}(v) END"
    )
