"""Run ids: one S3 object version gives one run id, which is also the execution name.

A duplicate S3 event for the same object version yields the same name, so Step
Functions refuses the second StartExecution (`ExecutionAlreadyExists`) and a
file never starts two runs.
"""

from __future__ import annotations

import hashlib
import re

INPUT_SUFFIXES = (".csv.gz", ".csv")
MAX_STEM_CHARS = 40
HASH_HEX_CHARS = 16
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]+")


def input_suffix(key: str) -> str | None:
    """The accepted suffix `key` ends with (case-sensitive, as the EventBridge rule is), or None."""
    for suffix in INPUT_SUFFIXES:
        if key.endswith(suffix):
            return suffix
    return None


def key_stem(key: str) -> str:
    """The file name without folder and input suffix, reduced to [A-Za-z0-9_-], at most 40 characters."""
    name = key.rsplit("/", 1)[-1]
    suffix = input_suffix(name)
    if suffix:
        name = name[: -len(suffix)]
    stem = _NOT_ALLOWED.sub("-", name).strip("-")
    stem = stem[:MAX_STEM_CHARS].rstrip("-")
    return stem or "run"


def object_identity(version_id: str | None, etag: str | None) -> str:
    """What tells two uploads of one key apart: the version id, else the ETag (quotes removed).

    S3 reports the version of an object in an unversioned bucket as the string
    "null", which would make every upload of a key look the same: it counts as absent.
    """
    if version_id == "null":
        version_id = None
    identity = version_id or (etag or "").strip('"')
    if not identity:
        raise ValueError("an S3 object needs a version id or an ETag to name its run")
    return identity


def run_id_for(bucket: str, key: str, version_id: str | None = None, etag: str | None = None) -> str:
    """`<key stem>-<first 16 hex of sha256("bucket/key/version-or-etag")>`, e.g. `sample-positions-4f1c2a9e0b7d3c15`."""
    identity = object_identity(version_id, etag)
    digest = hashlib.sha256(f"{bucket}/{key}/{identity}".encode()).hexdigest()[:HASH_HEX_CHARS]
    return f"{key_stem(key)}-{digest}"
