"""A plan's writes sent as few requests as a row budget allows: one multi-part openCypher query each.

Every request to Neptune is a round trip and a transaction of its own, so a
batch of events written one query text at a time paid for both about ten times.
The writes of a request are chained in their order into one query, each part
reading its own parameter:

    UNWIND $w0 AS row ...
    WITH count(*) AS _0
    UNWIND $w1 AS row ...

An aggregate with no grouping key always yields one row, so a part whose MATCH
finds nothing does not stop the parts after it; each part sees what the earlier
ones wrote, and the request is all or nothing. A request holding one write is
sent as that write's own text with `$rows`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from .graph import Write

_ROWS_PARAMETER = re.compile(r"\$rows\b")
# Rows in one request (all its parts together): large enough for a batch of events, small enough that
# one request stays well inside Neptune's request size and query time limits.
REQUEST_ROWS = 2000


def requests(writes: Sequence[Write], budget: int = REQUEST_ROWS) -> Iterator[list[Write]]:
    """The writes, in order, grouped into requests of at most `budget` rows.

    A write larger than the budget is cut into parts of `budget` rows, as a
    batched write's rows may be sent in any number of pieces in their order.
    """
    current: list[Write] = []
    used = 0
    for write in writes:
        for start in range(0, len(write.rows), budget):
            part = Write(write.query, write.rows[start:start + budget])
            if current and used + len(part.rows) > budget:
                yield current
                current, used = [], 0
            current.append(part)
            used += len(part.rows)
    if current:
        yield current


def chained(writes: Sequence[Write]) -> tuple[str, dict[str, Any]]:
    """One query and its parameters that run `writes` in order (see the module docstring)."""
    if len(writes) == 1:
        return writes[0].query, {"rows": writes[0].rows}
    parts: list[str] = []
    parameters: dict[str, Any] = {}
    for index, write in enumerate(writes):
        if not _ROWS_PARAMETER.search(write.query):
            raise ValueError(f"a chained write must read $rows: {write.query.strip()[:60]!r}")
        if parts:
            parts.append(f"WITH count(*) AS _{index - 1}")
        parts.append(_ROWS_PARAMETER.sub(f"$w{index}", write.query.strip()))
        parameters[f"w{index}"] = write.rows
    return "\n".join(parts) + "\n", parameters
