"""The input object of a run, the checks it must pass and the state-machine input built from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .naming import input_suffix, object_identity, run_id_for


@dataclass(frozen=True)
class SourceObject:
    """One version of one S3 object, as the state machine and the lineage graph see it."""

    bucket: str
    key: str
    size: int
    version_id: str | None = None
    etag: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def run_id(self) -> str:
        return run_id_for(self.bucket, self.key, self.version_id, self.etag)

    def to_dict(self) -> dict[str, Any]:
        """The `source` object of the state-machine input (docs/design.md)."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "etag": self.etag,
            "size": self.size,
            "uri": self.uri,
        }


def rejection_reason(source: SourceObject, incoming_prefix: str, max_bytes: int) -> str | None:
    """Why `source` must not start a run, or None when it may."""
    if not source.bucket:
        return "the event names no bucket"
    if not source.key.startswith(incoming_prefix):
        return f"key {source.key!r} is outside the incoming prefix {incoming_prefix!r}"
    if input_suffix(source.key) is None:
        return f"key {source.key!r} does not end with .csv or .csv.gz"
    if source.size <= 0:
        return f"object {source.uri} is empty"
    if source.size > max_bytes:
        return f"object {source.uri} has {source.size} bytes, more than the limit of {max_bytes}"
    try:
        object_identity(source.version_id, source.etag)
    except ValueError as exc:
        return str(exc)
    return None


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a `Z`, e.g. `2026-11-21T19:40:00.123Z`."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def execution_input(source: SourceObject, received_at: str) -> dict[str, Any]:
    """The state-machine input that `start_run` writes (docs/design.md, "State-machine input")."""
    return {"run_id": source.run_id, "source": source.to_dict(), "received_at": received_at}
