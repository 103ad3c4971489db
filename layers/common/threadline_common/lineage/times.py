"""The one format the lineage graph stores times in: ISO-8601 UTC, milliseconds, `Z`.

Times arrive as Step Functions writes them (`2026-11-30T11:05:12.123Z`), as
Batch does (epoch milliseconds, turned into the same text), or from any other
sender with an offset or microseconds (`2026-11-30T11:05:12.123456+00:00`).
The graph compares times as text (`failures --since`), which orders them in time
only when every one has the same shape, so each is rewritten on its way in.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..run_input import utc_timestamp


def stored_time(value: str | None) -> str | None:
    """`value` (ISO-8601, any offset or precision; no offset means UTC) as the graph stores it; None if unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return utc_timestamp(moment)
