"""Small text helpers shared by what the CLI prints and the pages it writes."""

from __future__ import annotations


def short(text: str | None, limit: int) -> str:
    """`text` on one line, cut to at most `limit` characters (an ellipsis marks the cut); None is ''."""
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
