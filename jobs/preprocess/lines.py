"""Exact physical line numbers, found by a slow streaming pass with Python's csv module.

Only needed in two rare cases: a file with line breaks inside quoted fields or
blank lines between records (record N is then not on line N + 1), and a file
DuckDB refused, where we want the exact line of the first structural problem.
Lines are split at LF only, so CRLF and LF files count alike.
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .sources import UTF8_BOM, FileProblem, open_bytes

FIELD_LIMIT = 1024 * 1024


class _Lines:
    """Decoded lines of a file, counting how many were handed out."""

    def __init__(self, path: Path, compression: str) -> None:
        self.path = path
        self.compression = compression
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        try:
            with open_bytes(self.path, self.compression) as handle:
                for raw in handle:
                    self.count += 1
                    if self.count == 1 and raw.startswith(UTF8_BOM):
                        raw = raw[len(UTF8_BOM):]
                    try:
                        yield raw.decode("utf-8")
                    except UnicodeDecodeError:
                        raise FileProblem(f"line {self.count} is not valid UTF-8", self.count) from None
        except (EOFError, zlib.error, OSError) as exc:
            raise FileProblem(f"the file is not valid gzip: {exc}") from exc


@contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def records(path: Path, compression: str, strict: bool) -> Iterator[tuple[int, list[str]]]:
    """Yield (first line, fields) per record, the header first; blank lines are skipped."""
    lines = _Lines(path, compression)
    with _field_limit(FIELD_LIMIT):
        reader = csv.reader(lines, strict=strict)
        while True:
            start = lines.count + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FileProblem(f"the record starting on line {start} is malformed CSV ({exc})", start) from None
            if fields:
                yield start, fields


def record_lines(path: Path, compression: str, wanted: Iterable[int], expected_records: int) -> dict[int, int] | None:
    """Map data record numbers (1 = first after the header) to their first line.

    Returns None when this pass does not see the same number of records as
    DuckDB did, so the two parsers disagree and no line number is trustworthy.
    """
    wanted_set = set(wanted)
    found: dict[int, int] = {}
    number = -1
    try:
        for number, (line, _fields) in enumerate(records(path, compression, strict=False)):
            if number in wanted_set:
                found[number] = line
    except FileProblem:
        return None
    return found if number == expected_records else None


def first_structure_problem(path: Path, compression: str, columns: int) -> FileProblem | None:
    """The first record that is not valid UTF-8, not valid CSV or has the wrong field count."""
    try:
        for line, fields in records(path, compression, strict=True):
            if len(fields) != columns:
                return FileProblem(
                    f"line {line} has {len(fields)} field(s), the header has {columns}", line
                )
    except FileProblem as problem:
        return problem
    return None
