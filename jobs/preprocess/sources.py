"""File-level facts about an input CSV, read with plain byte I/O before and beside DuckDB.

DuckDB parses the rows; this module answers what it does not: is the file gzip,
is it empty, does its header name the schema's columns, and how many physical
lines it has (to know whether record numbers map straight onto line numbers).
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .escaping import safe_text
from .schema import Schema

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
HEADER_LIMIT = 64 * 1024
_CHUNK = 4 * 1024 * 1024
_LF = 0x0A


class FileProblem(Exception):
    """The file cannot be read as CSV of this schema; `line` is 1-based when known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def detect_compression(path: Path) -> str:
    """`gzip` when the file starts with the gzip magic bytes, else `none`."""
    with open(path, "rb") as handle:
        return "gzip" if handle.read(2) == GZIP_MAGIC else "none"


def open_bytes(path: Path, compression: str) -> io.BufferedIOBase:
    if compression == "gzip":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _read_start(path: Path, compression: str) -> bytes:
    try:
        with open_bytes(path, compression) as handle:
            return handle.read(HEADER_LIMIT + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise FileProblem(f"the file is not valid gzip: {exc}") from exc


def read_header(path: Path, compression: str) -> tuple[str, ...]:
    """The column names on line 1, stripped of surrounding spaces."""
    start = _read_start(path, compression)
    if not start:
        raise FileProblem("the file is empty")
    if start.startswith(_UTF16_BOMS):
        raise FileProblem("the file is not UTF-8 (it starts with a UTF-16/UTF-32 byte order mark)")
    if start.startswith(UTF8_BOM):
        start = start[len(UTF8_BOM):]
    end = start.find(b"\n")
    if end < 0:
        if len(start) > HEADER_LIMIT:
            raise FileProblem(f"line 1 is longer than {HEADER_LIMIT} bytes; it must be the header", 1)
        end = len(start)
    line = start[:end]
    if line.endswith(b"\r"):
        line = line[:-1]
    if b"\r" in line:
        raise FileProblem("line ends are bare carriage returns; use LF or CRLF", 1)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise FileProblem("line 1 is not valid UTF-8", 1) from None
    if not text.strip():
        raise FileProblem("line 1 is empty; it must be the header", 1)
    fields = next(csv.reader([text]))
    return tuple(field.strip() for field in fields)


def _name_list(names: list[str]) -> str:
    shown = ", ".join(repr(safe_text(name)) for name in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def check_header(names: tuple[str, ...], schema: Schema) -> None:
    """The header must name every schema column once, in any order, and nothing else."""
    counts = Counter(names)
    repeated = [name for name, count in counts.items() if count > 1]
    if repeated:
        raise FileProblem(f"the header repeats column(s) {_name_list(repeated)}", 1)
    missing = [name for name in schema.names if name not in counts]
    unknown = [name for name in names if name not in schema.names]
    problems = []
    if missing:
        problems.append(f"lacks column(s) {_name_list(missing)}")
    if unknown:
        problems.append(f"has unknown column(s) {_name_list(unknown)}")
    if problems:
        raise FileProblem(f"wrong header: it {' and '.join(problems)}", 1)


@dataclass(frozen=True)
class LineCount:
    """Physical line facts: `newlines` counts LF bytes; `trailing_newlines` those in the final run of CR/LF."""

    newlines: int
    ends_with_newline: bool
    trailing_newlines: int

    @property
    def lines_before_trailing_blanks(self) -> int:
        """Lines holding the header and records (blank lines at the very end left out)."""
        if not self.ends_with_newline:
            return self.newlines + 1
        return self.newlines - (self.trailing_newlines - 1)


def count_lines(path: Path, compression: str, chunk_size: int = _CHUNK) -> LineCount:
    """Stream the file once, counting line feeds (no parsing).

    NumPy counts the bytes: several times faster than `bytes.count` (0.32 s
    against 0.8-2.0 s for 634 MB), and this pass runs beside DuckDB's.
    """
    newlines = 0
    trailing = 0
    last = b""
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    try:
        with open_bytes(path, compression) as handle:
            while size := handle.readinto(buffer):
                newlines += int(np.count_nonzero(np.frombuffer(buffer, np.uint8, size) == _LF))
                run, whole = _final_line_break_run(view[:size])
                trailing = trailing + run if whole else run
                last = bytes(view[size - 1:size])
    except (OSError, EOFError, zlib.error) as exc:
        raise FileProblem(f"the file is not valid gzip: {exc}") from exc
    return LineCount(newlines, last == b"\n", trailing)


def _final_line_break_run(data: memoryview) -> tuple[int, bool]:
    """Line feeds in the run of CR/LF bytes that ends `data`, and whether that run is all of it."""
    tail = bytes(data[-64:])
    body = tail.rstrip(b"\r\n")
    if not body and len(data) > len(tail):
        tail = bytes(data)
        body = tail.rstrip(b"\r\n")
    return tail[len(body):].count(b"\n"), not body
