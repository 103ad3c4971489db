"""The analysis job's progress sidecar: ships the node's progress and checkpoint to S3.

    python -m analysis.sidecar --run-id ID --output-prefix s3://intermediate/runs/ID/analysis/

It runs beside the analysis container in the same task and reads the folder
they share (THREADLINE_SHARED_DIR). Every interval (`--interval`, else
THREADLINE_SIDECAR_INTERVAL_S, else 10 s) it uploads what changed there, to the
keys named in shared.py. When the analysis container exits the task stops and
the sidecar gets SIGTERM: it ships once more and exits 0.

It is not essential to the job: an S3 error or an unreadable file is logged and
tried again at the next interval, never raised.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import select
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from jobkit import cli
from jobkit.aws import S3
from jobkit.errors import JobError, UsageError
from jobkit.runner import run
from jobkit.s3uri import S3Uri

from .shared import CHECKPOINT_FILE, PROGRESS_FILE, SHARED_DIR_ENV, checkpoint_uri, progress_uri, shared_dir

log = logging.getLogger("analysis.sidecar")

INTERVAL_ENV = "THREADLINE_SIDECAR_INTERVAL_S"
DEFAULT_INTERVAL_S = 10.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = cli.JobArgumentParser(prog="python -m analysis.sidecar",
                                   description="Ship the analysis node's progress and checkpoints to S3.")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--output-prefix", required=True, type=cli.s3_prefix)
    parser.add_argument("--interval", type=cli.positive_float, default=None,
                        help=f"seconds between rounds (default: ${INTERVAL_ENV} or {DEFAULT_INTERVAL_S:g})")
    return parser.parse_args(argv)


def interval_s(given: float | None) -> float:
    if given is not None:
        return given
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        return cli.positive_float(raw)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"environment variable {INTERVAL_ENV}: {exc}") from None


@dataclass
class Shipper:
    """Uploads each shared file whose content changed since it was last shipped."""

    s3: S3
    folder: Path
    output_prefix: S3Uri
    node_index: int
    _shipped: dict[str, bytes] = field(default_factory=dict)  # file name -> digest of what S3 has

    def ship(self) -> None:
        self._ship(PROGRESS_FILE, progress_uri(self.output_prefix, self.node_index), "application/json")
        self._ship(CHECKPOINT_FILE, checkpoint_uri(self.output_prefix, self.node_index), "application/zip")

    def _ship(self, name: str, uri: S3Uri, content_type: str) -> None:
        try:
            data = (self.folder / name).read_bytes()
        except FileNotFoundError:
            return  # not written yet
        except OSError as exc:
            log.warning("cannot read %s (%s); trying again next round", self.folder / name, exc)
            return
        digest = hashlib.sha256(data).digest()
        if self._shipped.get(name) == digest:
            return
        try:
            self.s3.put_bytes(data, uri, content_type)
        except JobError as exc:
            log.warning("%s; trying again next round", exc.message)
            return
        self._shipped[name] = digest


class StopSignal:
    """Set by SIGTERM (or SIGINT), which also ends a `wait` at once.

    The handler sets a flag and writes a byte to a pipe that `wait` selects on,
    so the last round starts as soon as the task stops the sidecar; the handler
    runs between bytecodes of the main thread, so that is safe at any point.
    """

    def __init__(self) -> None:
        self.stopped = False
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopped = True
        with contextlib.suppress(BlockingIOError):  # a byte is waiting already
            os.write(self._wake_write, b"!")

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds` or until stopped; True once stopped."""
        deadline = time.monotonic() + seconds
        while not self.stopped and (left := deadline - time.monotonic()) > 0:
            select.select([self._wake_read], [], [], left)
        return self.stopped


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    every = interval_s(args.interval)
    folder = shared_dir()
    if folder is None:
        raise UsageError(f"environment variable {SHARED_DIR_ENV} is not set: there is no shared folder to ship")
    node_index = cli.env_int("AWS_BATCH_JOB_NODE_INDEX", 0)
    stop = StopSignal()
    shipper = Shipper(S3(), folder, args.output_prefix, node_index)
    log.info("run %s node %d: shipping %s to %s every %g s", args.run_id, node_index, folder,
             args.output_prefix, every)
    while True:
        shipper.ship()
        if stop.wait(every):
            break
    shipper.ship()
    log.info("stopped; last round shipped")


if __name__ == "__main__":
    raise SystemExit(run("analysis-sidecar", main))
