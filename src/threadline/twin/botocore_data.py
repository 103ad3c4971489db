"""botocore's data files, decoded once per installed file and kept on disk as marshal.

A twin start reads about 40 of botocore's JSON files (the service models of the
15 services it provisions, EC2's 4 MB among them, and the endpoint list), and
decoding them into ordered dictionaries was about a sixth of the start. What a
file decodes to depends on its bytes only, so it is kept under a hash of the
file's path, size and modification time and of the Python version (marshal's
format is Python's own), in the start cache folder (`template_cache.cache_dir`):
a changed or upgraded botocore is a new key. marshal reads a model about four
times as fast as `json` builds it.

The one difference: the data comes back as plain dictionaries, which keep their
order as botocore's `OrderedDict`s do; botocore never asks for the type. An entry
that cannot be read is decoded again, and where the folder cannot be written
every start decodes, as botocore does.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import os
import sys
from pathlib import Path
from typing import Any

import botocore.loaders

from .state_files import write_bytes
from .template_cache import cache_dir, keep_newest

KEEP_ENTRIES = 512  # a few botocore versions' worth of the files a twin reads
_PATTERN = "botocore-*.marshal"

log = logging.getLogger("threadline.twin")


class CachedJSONFileLoader(botocore.loaders.JSONFileLoader):
    """botocore's JSON file loader, answering from the cache folder when the file is unchanged."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or cache_dir()

    def _load_file(self, full_path: str, open_method: Any) -> Any:
        try:
            stat = os.stat(full_path)
        except OSError:
            return None  # not there with this extension: botocore tries the next one
        entry = self.directory / f"botocore-{_key(full_path, stat)}.marshal"
        try:
            return marshal.loads(entry.read_bytes())
        except FileNotFoundError:
            pass
        except (OSError, ValueError, EOFError, TypeError) as exc:
            log.warning("ignoring the unreadable botocore cache entry %s (%s)", entry, exc)
        data = super()._load_file(full_path, open_method)
        if data is None:
            return None
        plain = _plain(data)  # the same answer on the first read as on every later one
        _write(entry, plain)
        return plain


def _plain(value: Any) -> Any:
    """`value` with every (ordered) dictionary a plain one: marshal holds only the built-in types."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _key(full_path: str, stat: os.stat_result) -> str:
    text = f"{full_path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{sys.version}\0{marshal.version}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _write(entry: Path, data: Any) -> None:
    """Written whole or not at all (`state_files.write_bytes`): a reader never sees half an entry."""
    try:
        write_bytes(entry, marshal.dumps(data))
    except (OSError, ValueError) as exc:  # a read-only home or a full disk, or a value marshal cannot hold
        log.info("could not keep botocore's decoded data in %s: %s", entry.parent, exc)
        return
    keep_newest(entry.parent, _PATTERN, KEEP_ENTRIES)
