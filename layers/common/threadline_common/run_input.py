"""The input object of a run, the checks it must pass and the state-machine input built from it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .naming import input_suffix, object_identity, run_id_for

DEFAULT_TEAM = "shared"  # the team of a run whose upload names none (template parameter DefaultTeam)


@dataclass(frozen=True)
class SourceObject:
    """One version of one S3 object, as the state machine and the lineage graph see it."""

    bucket: str
    key: str
    size: int
    version_id: str | None = None
    etag: str | None = None
    team: str = DEFAULT_TEAM
    """Who uploaded it: the Batch fair-share identifier its jobs run under (`upload_team`)."""

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
            "team": self.team,
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


def upload_folder(key: str, incoming_prefix: str) -> str | None:
    """The first folder of `key` under the incoming prefix (`incoming/risk/a.csv`: `risk`), or None."""
    folder, sep, _ = key.removeprefix(incoming_prefix).partition("/")
    return folder if sep and folder else None


def upload_team(key: str, incoming_prefix: str, teams: Collection[str], default: str) -> str:
    """The team an upload runs as: its folder under the incoming prefix if that is a known team, else `default`.

    The known teams are the share identifiers of the queues' fair-share policy
    (template.yaml, `TeamSchedulingPolicy`); a folder that names none of them
    must not reach SubmitJob as a share of its own.
    """
    folder = upload_folder(key, incoming_prefix)
    return folder if folder is not None and folder in teams else default


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a `Z`, e.g. `2026-11-21T19:40:00.123Z`."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def execution_input(source: SourceObject, received_at: str) -> dict[str, Any]:
    """The state-machine input that `start_run` writes (docs/design.md, "State-machine input")."""
    return {"run_id": source.run_id, "source": source.to_dict(), "received_at": received_at}
