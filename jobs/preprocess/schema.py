"""The input schema: one JSON file read by the validation code and by the docs.

A schema names its columns in file-independent order, each with a type
(`string` or `number`), whether it is required, and its rules: `allowed`
values and `max_length` for strings; `minimum`, `exclusive_minimum`,
`maximum`, `exclusive_maximum` for numbers (which must also be finite).
An allowed value may not be blank (that reads as missing) or longer than
`max_length` (it could never pass). `unique_key` lists the columns whose
values must not repeat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POSITIONS_SCHEMA = Path(__file__).with_name("positions.schema.json")

TYPES = ("string", "number")
_COLUMN_KEYS = {
    "name", "type", "required", "description", "allowed", "max_length",
    "minimum", "exclusive_minimum", "maximum", "exclusive_maximum",
}
_SCHEMA_KEYS = {"name", "version", "description", "unique_key", "columns"}
_STRING_RULES = {"allowed", "max_length"}
_NUMBER_RULES = {"minimum", "exclusive_minimum", "maximum", "exclusive_maximum"}


class SchemaError(ValueError):
    """The schema file itself is wrong."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool
    description: str = ""
    allowed: tuple[str, ...] | None = None
    max_length: int | None = None
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    exclusive_maximum: float | None = None

    @property
    def lower_bound(self) -> tuple[float, bool] | None:
        """(bound, inclusive) or None."""
        if self.exclusive_minimum is not None:
            return self.exclusive_minimum, False
        if self.minimum is not None:
            return self.minimum, True
        return None

    @property
    def upper_bound(self) -> tuple[float, bool] | None:
        if self.exclusive_maximum is not None:
            return self.exclusive_maximum, False
        if self.maximum is not None:
            return self.maximum, True
        return None


@dataclass(frozen=True)
class Schema:
    name: str
    version: int
    description: str
    columns: tuple[Column, ...]
    unique_key: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(f"{where} must be a number")
    return float(value)


def _column(raw: Any, index: int) -> Column:
    if not isinstance(raw, dict):
        raise SchemaError(f"columns[{index}] must be an object")
    unknown = set(raw) - _COLUMN_KEYS
    if unknown:
        raise SchemaError(f"columns[{index}] has unknown keys {sorted(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise SchemaError(f"columns[{index}] needs a name")
    kind = raw.get("type")
    if kind not in TYPES:
        raise SchemaError(f"column {name}: type must be one of {TYPES}")
    rules = set(raw) & (_STRING_RULES | _NUMBER_RULES)
    wrong = rules - (_STRING_RULES if kind == "string" else _NUMBER_RULES)
    if wrong:
        raise SchemaError(f"column {name}: rules {sorted(wrong)} do not apply to {kind}")
    if "minimum" in raw and "exclusive_minimum" in raw:
        raise SchemaError(f"column {name}: give minimum or exclusive_minimum, not both")
    if "maximum" in raw and "exclusive_maximum" in raw:
        raise SchemaError(f"column {name}: give maximum or exclusive_maximum, not both")
    allowed = raw.get("allowed")
    if allowed is not None and (
        not isinstance(allowed, list) or not allowed or not all(isinstance(v, str) for v in allowed)
    ):
        raise SchemaError(f"column {name}: allowed must be a non-empty list of strings")
    if allowed is not None and any(value.strip(" ") == "" for value in allowed):
        raise SchemaError(f"column {name}: allowed values must not be blank (a blank value counts as missing)")
    max_length = raw.get("max_length")
    if max_length is not None and (not isinstance(max_length, int) or max_length <= 0):
        raise SchemaError(f"column {name}: max_length must be a positive integer")
    if max_length is not None and allowed is not None and any(len(value) > max_length for value in allowed):
        raise SchemaError(f"column {name}: an allowed value is longer than max_length")
    bounds = {key: _number(raw[key], f"column {name}: {key}") for key in _NUMBER_RULES if key in raw}
    return Column(
        name=name,
        type=kind,
        required=bool(raw.get("required", True)),
        description=str(raw.get("description", "")),
        allowed=tuple(allowed) if allowed is not None else None,
        max_length=max_length,
        **bounds,
    )


def parse_schema(raw: Any) -> Schema:
    """Build a Schema from its JSON document, checking it thoroughly."""
    if not isinstance(raw, dict):
        raise SchemaError("a schema is a JSON object")
    unknown = set(raw) - _SCHEMA_KEYS
    if unknown:
        raise SchemaError(f"unknown schema keys {sorted(unknown)}")
    raw_columns = raw.get("columns")
    if not isinstance(raw_columns, list) or not raw_columns:
        raise SchemaError("columns must be a non-empty list")
    columns = tuple(_column(item, i) for i, item in enumerate(raw_columns))
    names = [column.name for column in columns]
    if len(set(names)) != len(names):
        raise SchemaError("column names must be unique")
    unique_key = tuple(raw.get("unique_key", ()))
    for key in unique_key:
        if key not in names:
            raise SchemaError(f"unique_key column {key!r} is not a column")
    version = raw.get("version", 1)
    if not isinstance(version, int):
        raise SchemaError("version must be an integer")
    return Schema(
        name=str(raw.get("name", "")),
        version=version,
        description=str(raw.get("description", "")),
        columns=columns,
        unique_key=unique_key,
    )


def load_schema(path: Path = POSITIONS_SCHEMA) -> Schema:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SchemaError(f"cannot read schema {path.name}: {exc}") from exc
    return parse_schema(raw)


def _format_number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def rules_text(column: Column, schema: Schema) -> str:
    """The column's rules in words, as the docs table shows them."""
    parts: list[str] = []
    if column.type == "number":
        parts.append("finite")
    low, high = column.lower_bound, column.upper_bound
    if low is not None:
        parts.append(f"{'≥' if low[1] else '>'} {_format_number(low[0])}")
    if high is not None:
        parts.append(f"{'≤' if high[1] else '<'} {_format_number(high[0])}")
    if column.max_length is not None:
        parts.append(f"at most {column.max_length} characters")
    if column.allowed is not None:
        parts.append("one of " + ", ".join(f"`{value}`" for value in column.allowed))
    if column.name in schema.unique_key:
        parts.append("unique" if len(schema.unique_key) == 1 else "part of the unique key")
    return "; ".join(parts) if parts else "—"


def markdown_table(schema: Schema) -> str:
    """The schema as the Markdown table in jobs/README.md."""
    lines = [
        "| column | type | required | rules | meaning |",
        "|---|---|---|---|---|",
    ]
    for column in schema.columns:
        lines.append(
            f"| `{column.name}` | {column.type} | {'yes' if column.required else 'no'} "
            f"| {rules_text(column, schema)} | {column.description} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(load_schema()), end="")
