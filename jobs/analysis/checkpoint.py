"""A node's P&L after its first k blocks, and whether a later attempt may continue from it.

Each block draws from streams seeded by (seed, block, stream) only, and a node's
partial is its blocks' P&L in block order; so the P&L of the first k blocks from
a checkpoint, followed by the rest computed afresh, is bit for bit what an
uninterrupted run writes, provided plan, input and backend are the same. The
manifest records them, and a checkpoint that differs in any of them is not used.

`checkpoint.npz` is one zip of `manifest.json` and `pnl.npy` (NumPy reads it as
an .npz). Being one file, it is replaced and shipped whole: the manifest always
describes the P&L beside it, and the zip's CRC-32 catches a damaged copy.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from dataclasses import asdict, dataclass, fields

import numpy as np
from botocore.exceptions import ClientError

from jobkit.aws import S3
from jobkit.errors import JobError
from jobkit.s3uri import S3Uri

from .model import ScenarioSchedule

log = logging.getLogger("analysis")

FORMAT = 1
MANIFEST_MEMBER = "manifest.json"
PNL_MEMBER = "pnl.npy"
_MISSING = {"NoSuchKey", "404", "NotFound"}
# The job role may read checkpoints but not list the bucket; S3 then answers a missing key so.
_MISSING_OR_DENIED = {"AccessDenied", "403"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read."""


@dataclass(frozen=True)
class Plan:
    """Everything a checkpoint's P&L depends on: it is continued only when all of it matches."""

    scenarios: int
    horizon_days: float
    seed: int
    num_nodes: int
    node_index: int
    block_size: int
    backend: str
    input_uri: str
    input_version_id: str | None
    input_etag: str


@dataclass(frozen=True)
class Checkpoint:
    plan: Plan
    run_id: str
    blocks_done: int  # the node's first `blocks_done` blocks
    pnl: np.ndarray

    def encode(self) -> bytes:
        manifest = {"format": FORMAT, "run_id": self.run_id, "blocks_done": self.blocks_done,
                    "scenarios_done": len(self.pnl), "plan": asdict(self.plan)}
        pnl = io.BytesIO()
        np.lib.format.write_array(pnl, np.ascontiguousarray(self.pnl, dtype=np.float64), allow_pickle=False)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(MANIFEST_MEMBER, json.dumps(manifest, indent=2))
            archive.writestr(PNL_MEMBER, pnl.getvalue())
        return out.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Checkpoint:
        """The checkpoint in `data`; CheckpointError when it is damaged or not a checkpoint."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                manifest = json.loads(archive.read(MANIFEST_MEMBER))
                with archive.open(PNL_MEMBER) as member:
                    pnl = np.lib.format.read_array(member, allow_pickle=False)
            if manifest.get("format") != FORMAT:
                raise CheckpointError(f"format {manifest.get('format')!r}, expected {FORMAT}")
            checkpoint = cls(Plan(**manifest["plan"]), str(manifest["run_id"]), int(manifest["blocks_done"]),
                             pnl)
        except CheckpointError:
            raise
        except (zipfile.BadZipFile, KeyError, TypeError, ValueError, OSError, EOFError) as exc:
            raise CheckpointError(f"{type(exc).__name__}: {exc}") from exc
        if pnl.dtype != np.float64 or pnl.ndim != 1:
            raise CheckpointError(f"P&L is {pnl.dtype} with {pnl.ndim} dimension(s), expected float64 with 1")
        return checkpoint


def unusable_because(checkpoint: Checkpoint, plan: Plan, schedule: ScenarioSchedule, blocks: range) -> str | None:
    """Why this attempt may not continue from `checkpoint`; None when it may."""
    differs = [f"{f.name} {getattr(checkpoint.plan, f.name)!r} (this run: {getattr(plan, f.name)!r})"
               for f in fields(Plan) if getattr(checkpoint.plan, f.name) != getattr(plan, f.name)]
    if differs:
        return "it is for another plan or input: " + ", ".join(differs)
    if not 0 < checkpoint.blocks_done <= len(blocks):
        return f"it says {checkpoint.blocks_done} block(s) are done of this node's {len(blocks)}"
    expected = sum(len(schedule.block_scenarios(block)) for block in blocks[:checkpoint.blocks_done])
    if len(checkpoint.pnl) != expected:
        return f"it holds {len(checkpoint.pnl)} scenarios where {checkpoint.blocks_done} block(s) have {expected}"
    return None


def _error_code(exc: JobError) -> str:
    cause = exc.__cause__
    return str(cause.response.get("Error", {}).get("Code", "")) if isinstance(cause, ClientError) else ""


def find(s3: S3, uri: S3Uri, plan: Plan, schedule: ScenarioSchedule, blocks: range) -> Checkpoint | None:
    """The shipped checkpoint this attempt continues from, or None (saying why when one was there)."""
    try:
        data = s3.get_bytes(uri)
    except JobError as exc:
        code = _error_code(exc)
        if code in _MISSING:
            log.info("no checkpoint at %s: starting from the node's first block", uri)
        elif code in _MISSING_OR_DENIED:
            log.info("no checkpoint at %s (%s: absent, as S3 says it to a role that may not list the "
                     "bucket): starting from the node's first block", uri, code)
        else:
            log.warning("checkpoint not read (%s): starting from the node's first block", exc.message)
        return None
    try:
        checkpoint = Checkpoint.decode(data)
    except CheckpointError as exc:
        log.warning("checkpoint %s is damaged and ignored (%s): starting from the node's first block", uri, exc)
        return None
    reason = unusable_because(checkpoint, plan, schedule, blocks)
    if reason:
        log.warning("checkpoint %s is not used, %s: starting from the node's first block", uri, reason)
        return None
    log.info("resuming from checkpoint %s: %d of %d block(s) done", uri, checkpoint.blocks_done, len(blocks))
    return checkpoint
