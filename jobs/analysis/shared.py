"""The folder the analysis container shares with its progress sidecar, and where the sidecar ships it.

The analysis writes `progress.json` and `checkpoint.npz` into THREADLINE_SHARED_DIR;
the sidecar copies them under the node's output prefix:

    <output-prefix>progress/node-NNNN.json
    <output-prefix>checkpoints/node-NNNN/latest.npz

Every file is replaced atomically (a temporary file, then `os.replace`), so a
reader sees a whole old file or a whole new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from jobkit.s3uri import S3Uri

SHARED_DIR_ENV = "THREADLINE_SHARED_DIR"
PROGRESS_FILE = "progress.json"
CHECKPOINT_FILE = "checkpoint.npz"


def shared_dir() -> Path | None:
    """The shared folder, or None when the job runs without a sidecar."""
    value = os.environ.get(SHARED_DIR_ENV, "").strip()
    return Path(value) if value else None


def node_name(node_index: int) -> str:
    return f"node-{node_index:04d}"


def progress_uri(output_prefix: S3Uri, node_index: int) -> S3Uri:
    return output_prefix.join(f"progress/{node_name(node_index)}.json")


def checkpoint_uri(output_prefix: S3Uri, node_index: int) -> S3Uri:
    return output_prefix.join(f"checkpoints/{node_name(node_index)}/latest.npz")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one step, as readers in another process see it."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise


def utc_now() -> str:
    """The time now as `2026-11-30T16:19:23.123Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Progress:
    """How far one node of one attempt has come (`progress.json`)."""

    run_id: str
    job_id: str  # AWS_BATCH_JOB_ID as the node sees it (`<job id>#<node>` on a multi-node job)
    node_index: int
    num_nodes: int
    attempt: int
    blocks_done: int
    blocks_total: int
    scenarios_done: int
    scenarios_total: int
    resumed_blocks: int  # of blocks_done, how many came from a checkpoint
    updated_at: str

    def write(self, folder: Path) -> None:
        write_atomic(folder / PROGRESS_FILE, json.dumps(asdict(self), indent=2).encode("utf-8"))
