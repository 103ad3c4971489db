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

runs as what it means: a primary-key lookup of which keys exist (but those the
transaction has already seen), a CREATE of the others with the ON CREATE and SET
items as their properties, and a MATCH of the rest with the ON MATCH and SET
items, each followed by what follows `WITH v, row`. Each is one set-based query
on the primary-key index, sent only the row fields it reads: ladybug converts
every field of every row it is sent, which costs more than most of these writes.
A relationship that cannot exist yet (at a node the transaction created, of a
type it has not written) is CREATEd rather than MERGEd, which ladybug does
without looking for it first.

JSON nulls carry no type, and ladybug types a row field that is null in every
row of a query as STRING, which it then refuses to store in a number property.
Neptune, schemaless, stores such a null as it is; so each query is sent with a
literal `NULL` in place of a field that no row of it has a value for.

A chained write, several such writes in one request,

    UNWIND $w0 AS row ...
    WITH count(*) AS _0
    UNWIND $w1 AS row ...

is taken apart at each `WITH count(*) AS <name>` (which passes one row on, so
every part runs whatever the one before it matched) and each part runs as the
write it is, with its own parameter as `$rows`. The caller runs all parts in
one transaction, as Neptune runs one request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

UNWIND_ROWS = re.compile(r"^\s*UNWIND \$rows AS row\s*\n")
_UNWIND_PART = re.compile(r"^\s*UNWIND \$(\w+) AS row\s*\n")
_CHAIN_LINK = re.compile(r"^[ \t]*WITH count\(\*\) AS \w+[ \t]*$", re.MULTILINE)
_SETS = re.compile(r"\bSET\b")
_WRITTEN_TYPE = re.compile(r"^\s*(?:MERGE|CREATE)\b.*?\)<?-\[\w*:(\w+)", re.MULTILINE)
_LINK = re.compile(
    r"UNWIND \$rows AS row\s*"
    r"MATCH \((?P<a>\w+):(?P<a_label>\w+) \{`~id`: row\.(?P<a_field>\w+)\}\)\s*"
    r"MATCH \((?P<b>\w+):(?P<b_label>\w+) \{`~id`: row\.(?P<b_field>\w+)\}\)\s*"
    r"(?P<merge>MERGE) \((?P<from>\w+)\)-\[:(?P<type>\w+)\]->\((?P<to>\w+)\)")
_KEY_FIELD = re.compile(r"\{`~id`: row\.(\w+)\}")
_NODE_MERGE = re.compile(r"^MERGE \((\w+):(\w+) \{`~id`: row\.(\w+)\}\)$")
_CLAUSES = ("ON CREATE SET ", "ON MATCH SET ", "SET ")
_ROW_FIELD = re.compile(r"\brow\.(\w+)\b")
_WHOLE_ROW = re.compile(r"(?<!AS )\brow\b(?!\.)")  # `row` itself, not a field of it

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
        """A CREATE with the ON CREATE and SET items as its properties, then what follows `WITH var, row`.

        The properties go in the CREATE pattern, which ladybug stores in one step
        rather than one step per SET item; a new node has no properties yet, so an
        item that reads one of them reads null. Items that read a property an
        earlier item set are left as a SET.
        """
        properties = self._properties(self.on_create + self.always)
        if properties is None:
            text = self._write("CREATE", self.on_create + self.always)
        else:
            pattern = ", ".join([f"`~id`: row.{self.key}", *properties])
            text = f"UNWIND $rows AS row\nCREATE ({self.var}:{self.label} {{{pattern}}})"
        return self._then(text, self._new_node_links())

    def update(self) -> str | None:
        """A MATCH with the ON MATCH and SET items, then what follows `WITH var, row`; None when nothing is left."""
        items = self.on_match + self.always
        return self._then(self._write("MATCH", items)) if items or self.then else None

    def _then(self, text: str, then: tuple[str, ...] | None = None) -> str:
        then = self.then if then is None else then
        return "\n".join((text, f"WITH {self.var}, row", *then)) if then else text

    def _new_node_links(self) -> tuple[str, ...]:
        """`then` for nodes just created: a MERGE of one relationship at the new node is a CREATE.

        No relationship of a node can exist before the node, and each row of the
        CREATE is a node of its own (waves), so no two rows make the same one.
        """
        link = re.compile(rf"MERGE (\({self.var}\)-\[:\w+\]->\(\w+\)|\(\w+\)-\[:\w+\]->\({self.var}\))")
        return tuple(link.sub(r"CREATE \1", line) if link.fullmatch(line) else line for line in self.then)

    def _properties(self, items: tuple[str, ...]) -> list[str] | None:
        """`v.x = <expr>` items as `x: <expr>` with v's properties read as null; None if that would change them."""
        own = re.compile(rf"\b{self.var}\.(\w+)\b")
        assigned: set[str] = set()
        properties = []
        for item in items:
            match = re.fullmatch(rf"{self.var}\.(\w+)\s*=\s*(.+)", item, re.DOTALL)
            if match is None or match.group(1) in assigned or assigned.intersection(own.findall(match.group(2))):
                return None
            assigned.add(match.group(1))
            properties.append(f"`{match.group(1)}`: {own.sub('NULL', match.group(2))}")
        return properties

    def _write(self, verb: str, items: tuple[str, ...]) -> str:
        text = f"UNWIND $rows AS row\n{verb} ({self.var}:{self.label} {{`~id`: row.{self.key}}})"
        return text + ("\nSET " + ",\n    ".join(items) if items else "")


@dataclass(frozen=True)
class WritePart:
    """One `UNWIND $rows AS row ...` write of a request, with its rows."""

    query: str
    rows: Sequence[Mapping[str, Any]]


def write_parts(query: str, parameters: Mapping[str, Any]) -> list[WritePart] | None:
    """The request as the batched writes it holds, in order; None when it is any other query.

    One write counts only when it sets properties (its rows' order matters);
    a chained write counts when every part is `UNWIND $<list parameter> AS row ...`.
    Anything else (a part of another shape, a parameter missing) runs as it is,
    for the graph to answer or refuse.
    """
    texts = _CHAIN_LINK.split(query)
    if len(texts) == 1:
        rows = parameters.get("rows")
        if isinstance(rows, list) and UNWIND_ROWS.match(query) and _SETS.search(query):
            return [WritePart(query, rows)]
        return None
    parts: list[WritePart] = []
    for text in texts:
        head = _UNWIND_PART.match(text)
        rows = parameters.get(head.group(1)) if head else None
        if head is None or not isinstance(rows, list):
            return None
        parts.append(WritePart(_UNWIND_PART.sub("UNWIND $rows AS row\n", text, count=1).strip() + "\n", rows))
    return parts


@dataclass
class Seen:
    """What one transaction has written so far; nothing is deleted, so what it saw exist still does."""

    existing: dict[str, set[Any]] = field(default_factory=dict)  # node keys by label, found or created
    created: dict[str, set[Any]] = field(default_factory=dict)  # node keys by label, created here
    linked: set[str] = field(default_factory=set)  # relationship types written here

    def write(self, execute: Execute, query: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.linked.update(_WRITTEN_TYPE.findall(query))
        _execute_rows(execute, query, rows)


def run_write(parts: Sequence[WritePart], execute: Execute) -> None:
    """Run the parts in order (the caller holds the transaction)."""
    seen = Seen()
    for part in parts:
        if _SETS.search(part.query):
            run_batched_write(part.query, part.rows, execute, seen)
        else:  # relationships between found nodes: idempotent MERGEs, in any order
            run_link(part, execute, seen)


def run_link(part: WritePart, execute: Execute, seen: Seen) -> None:
    """A relationship MERGE between two nodes found by key; a CREATE when none of them can exist yet.

    That is when every row has an end this transaction created, and no relationship
    of the type has been written in it: a node has no relationships before it exists.
    """
    text = part.query.strip()
    shape = _LINK.fullmatch(text)
    if shape is None or shape["type"] in seen.linked or {shape["from"], shape["to"]} != {shape["a"], shape["b"]}:
        seen.write(execute, part.query, part.rows)
        return
    ends = ((shape["a_field"], seen.created.get(shape["a_label"], set())),
            (shape["b_field"], seen.created.get(shape["b_label"], set())))
    if not all(any(row.get(name) in created for name, created in ends) for row in part.rows):
        seen.write(execute, part.query, part.rows)
        return
    unique = {(row.get(shape["a_field"]), row.get(shape["b_field"])): row for row in part.rows}
    create = text[:shape.start("merge")] + "CREATE" + text[shape.end("merge"):]
    seen.write(execute, create, list(unique.values()))


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


def run_batched_write(query: str, rows: Sequence[Mapping[str, Any]], execute: Execute, seen: Seen) -> None:
    """Run the write wave by wave (`execute` runs one query; the caller holds the transaction).

    A node key the transaction has already seen is not looked up again.
    """
    merge = node_merge(query)
    for wave in waves(query, rows):
        if merge is None:
            seen.write(execute, query, wave)
            continue
        exists = seen.existing.setdefault(merge.label, set())
        keys = [row.get(merge.key) for row in wave]
        unknown = [key for key in keys if key not in exists]
        found = exists.intersection(keys)
        if unknown:
            found.update(answer["k"] for answer in execute(_sized(merge.existing(), unknown), {"keys": unknown}))
        exists.update(keys)
        created = [row for row in wave if row.get(merge.key) not in found]
        matched = [row for row in wave if row.get(merge.key) in found]
        update = merge.update()
        if created:
            seen.created.setdefault(merge.label, set()).update(row.get(merge.key) for row in created)
            seen.write(execute, merge.create(), created)
        if matched and update:
            seen.write(execute, update, matched)


def untyped_nulls(query: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """The query with a literal NULL for every `row.field` that is null (or absent) in all `rows`."""
    def replace(match: re.Match[str]) -> str:
        field = match.group(1)
        return "NULL" if all(row.get(field) is None for row in rows) else match.group(0)
    return _ROW_FIELD.sub(replace, query)


def _execute_rows(execute: Execute, query: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """The query over `rows`, each cut to the fields it reads."""
    text = untyped_nulls(query, rows)
    fields = [] if _WHOLE_ROW.search(text) else sorted(set(_ROW_FIELD.findall(text)))
    sent = [{name: row.get(name) for name in fields} for row in rows] if fields else list(rows)
    execute(_sized(text, sent), {"rows": sent})


def _sized(query: str, rows: Sequence[Any]) -> str:
    """The query with a comment naming its size class (1, 4, 16, ... rows).

    ladybug plans a query for the rows it gets the first time it runs it, and reuses
    that plan for the same text: one planned for 2,000 rows cost up to twice as much
    on the few rows of one SQS batch as one planned for those.
    """
    size = 1
    while size < len(rows):
        size *= 4
    return f"{query}\n// planned for up to {size} rows"


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
