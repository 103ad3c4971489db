"""The files under `<workdir>/state/`: written whole or not at all, read back or set aside.

A twin killed mid-write must not leave half a file that the next start
chokes on, so every write goes to a temporary file in the same folder and is
renamed over the old one. A file that still cannot be read (edited by hand,
truncated by a full disk) is renamed to `<name>.corrupt-<time>` with a warning
naming both paths, and the twin starts without it rather than with a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger("threadline.twin")


def write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Create `path` from what `write` writes to a binary handle, replacing any old file in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name[:40]}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    write_atomic(path, lambda handle: handle.write(data))


def write_json(path: Path, value: Any) -> None:
    """JSON of `value`; datetimes become ISO 8601 strings."""
    write_bytes(path, json_bytes(value))


def json_bytes(value: Any, encoder: type[json.JSONEncoder] | None = None) -> bytes:
    """The bytes `write_json` writes for `value` (or `encoder` writes, for values of its own types)."""
    if encoder is not None:
        return json.dumps(value, cls=encoder, ensure_ascii=False).encode("utf-8")
    return json.dumps(value, default=_iso, ensure_ascii=False).encode("utf-8")


class ChangedFile:
    """A state file written only when its bytes differ from what this process last wrote to it.

    A twin saves every second and is mostly idle: rewriting the same bytes cost a
    temporary file and a rename each time.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: bytes | None = None

    def write(self, data: bytes) -> bool:
        """Write `data` unless the file already holds it; whether it was written."""
        if data == self._written:
            return False
        write_bytes(self.path, data)
        self._written = data
        return True


def read_json(path: Path, problems: list[str] | None = None) -> Any | None:
    """The JSON in `path`; None when it is missing, or unreadable (then it is set aside, said in `problems`)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        said = set_aside(path, str(exc))
        if problems is not None:
            problems.append(said)
        return None


def set_aside(path: Path, why: str) -> str:
    """Rename an unreadable state file out of the way so that the twin starts without it; what was done."""
    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        os.replace(path, target)
    except OSError:
        said = f"{path} cannot be read ({why}) nor moved aside; started without it"
    else:
        said = f"{path} cannot be read ({why}); moved to {target} and started without it"
    logger.warning("%s", said)
    return said


def _iso(value: Any) -> str:
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
