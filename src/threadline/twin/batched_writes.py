"""How the embedded graph runs a batched write (`UNWIND $rows AS row ...`) as Neptune would.

openCypher applies UNWIND rows in order: a later row for the same node wins and
sees what the earlier ones wrote. ladybug does not (within one query it reads
properties as they were before it, and keeps the first row for a node the query
created), and it plans `UNWIND ... MERGE (n:Label {...})` as a join against a
scan of the whole node table, so each such write gets slower as the graph grows.

So a write is split into waves in which no node key repeats (the first
occurrence of every key, then the second, ...), run in order; and the node
MERGE that every node write of `threadline_common.lineage.queries` is,

    UNWIND $rows AS row
    MERGE (v:Label {`~id`: row.key})
    ON CREATE SET ...        (optional)
    ON MATCH SET ...         (optional)
    SET ...                  (optional)
    WITH v, row              (optional, with the relationship writes from v after it)
    ...

runs as what it means: a primary-key lookup of which keys exist, a CREATE of the
others with the ON CREATE and SET items, a MATCH of the rest with the ON MATCH
and SET items, then what follows `WITH v, row` from every row's node, found by
its key. Each is one set-based query on the primary-key index.

JSON nulls carry no type, and ladybug types a row field that is null in every
row of a query as STRING, which it then refuses to store in a number property.
Neptune, schemaless, stores such a null as it is; so each query is sent with a
literal `NULL` in place of a field that no row of it has a value for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

UNWIND_ROWS = re.compile(r"^\s*UNWIND \$rows AS row\s*\n")
_KEY_FIELD = re.compile(r"\{`~id`: row\.(\w+)\}")
_NODE_MERGE = re.compile(r"^MERGE \((\w+):(\w+) \{`~id`: row\.(\w+)\}\)$")
_CLAUSES = ("ON CREATE SET ", "ON MATCH SET ", "SET ")
_ROW_FIELD = re.compile(r"\brow\.(\w+)\b")

Execute = Callable[[str, Mapping[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class NodeMerge:
    """`UNWIND $rows AS row MERGE (var:label {`~id`: row.key}) ...` taken apart."""

    var: str
    label: str
    key: str
    on_create: tuple[str, ...]
    on_match: tuple[str, ...]
    always: tuple[str, ...]
    then: tuple[str, ...] = ()  # the lines after `WITH var, row`

    def existing(self) -> str:
        return f"UNWIND $keys AS k MATCH ({self.var}:{self.label} {{`~id`: k}}) RETURN k"

    def create(self) -> str:
        return self._write("CREATE", self.on_create + self.always)

    def update(self) -> str | None:
        items = self.on_match + self.always
        return self._write("MATCH", items) if items else None

    def follow(self) -> str | None:
        """What the query does after `WITH var, row`, from every row's node."""
        return "\n".join((self._write("MATCH", ()), *self.then)) if self.then else None

    def _write(self, verb: str, items: tuple[str, ...]) -> str:
        text = f"UNWIND $rows AS row\n{verb} ({self.var}:{self.label} {{`~id`: row.{self.key}}})"
        return text + ("\nSET " + ",\n    ".join(items) if items else "")


def is_batched_write(query: str, parameters: Mapping[str, Any]) -> bool:
    """A write of `$rows` that sets properties, whose rows' order therefore matters."""
    return (isinstance(parameters.get("rows"), list) and bool(UNWIND_ROWS.match(query))
            and re.search(r"\bSET\b", query) is not None)


def node_merge(query: str) -> NodeMerge | None:
    """The query as a NodeMerge, or None when it has any other shape."""
    lines = UNWIND_ROWS.sub("", query, count=1).strip().splitlines()
    head = _NODE_MERGE.match(lines[0].strip()) if lines else None
    if head is None:
        return None
    clauses: dict[str, list[str]] = {clause: [] for clause in _CLAUSES}
    current: str | None = None
    body, then = _split_at_with(lines[1:], head.group(1))
    for line in body:
        text = line.strip()
        clause = next((c for c in _CLAUSES if text.startswith(c)), None)
        if clause is not None:
            if clauses[clause]:
                return None  # a clause twice: not the shape this understands
            current, text = clause, text[len(clause):]
        elif current is None or not line.startswith((" ", "\t")):
            return None
        clauses[current].append(text)
    items = {clause: _items(" ".join(parts)) for clause, parts in clauses.items()}
    return NodeMerge(head.group(1), head.group(2), head.group(3),
                     items["ON CREATE SET "], items["ON MATCH SET "], items["SET "], then)


def _split_at_with(lines: list[str], var: str) -> tuple[list[str], tuple[str, ...]]:
    """The lines before the first `WITH var, row`, and those after it (all and none without one)."""
    marker = f"WITH {var}, row"
    index = next((i for i, line in enumerate(lines) if line.strip() == marker), None)
    if index is None:
        return lines, ()
    return lines[:index], tuple(line.strip() for line in lines[index + 1:])


def waves(query: str, rows: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """The rows in waves in which no node key of the query repeats, in order."""
    fields = _KEY_FIELD.findall(query)
    seen: dict[tuple[Any, ...], int] = {}
    split: list[list[Mapping[str, Any]]] = []
    for row in rows:
        key = tuple(row.get(name) for name in fields)
        wave = seen.get(key, 0)
        seen[key] = wave + 1
        if wave == len(split):
            split.append([])
        split[wave].append(row)
    return split


def run_batched_write(query: str, rows: Sequence[Mapping[str, Any]], execute: Execute) -> None:
    """Run the write wave by wave (`execute` runs one query; the caller holds the transaction)."""
    merge = node_merge(query)
    for wave in waves(query, rows):
        if merge is None:
            _execute_rows(execute, query, wave)
            continue
        keys = [row.get(merge.key) for row in wave]
        found = {answer["k"] for answer in execute(merge.existing(), {"keys": keys})}
        created = [row for row in wave if row.get(merge.key) not in found]
        matched = [row for row in wave if row.get(merge.key) in found]
        update = merge.update()
        if created:
            _execute_rows(execute, merge.create(), created)
        if matched and update:
            _execute_rows(execute, update, matched)
        follow = merge.follow()
        if follow:
            _execute_rows(execute, follow, wave)


def untyped_nulls(query: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """The query with a literal NULL for every `row.field` that is null (or absent) in all `rows`."""
    def replace(match: re.Match[str]) -> str:
        field = match.group(1)
        return "NULL" if all(row.get(field) is None for row in rows) else match.group(0)
    return _ROW_FIELD.sub(replace, query)


def _execute_rows(execute: Execute, query: str, rows: Sequence[Mapping[str, Any]]) -> None:
    execute(untyped_nulls(query, rows), {"rows": list(rows)})


def _items(text: str) -> tuple[str, ...]:
    """`a.x = 1, a.y = coalesce(a.y, row.y)` -> its assignments (commas in brackets or quotes kept)."""
    items: list[str] = []
    depth, start, quote = 0, 0, ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(text[start:index].strip())
            start = index + 1
    tail = text[start:].strip()
    return tuple(items + [tail]) if tail else tuple(items)
