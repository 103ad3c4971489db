"""What a job attempt used: its peak memory and CPU time, written to S3 as it exits.

Right-sizing hints (threadline_common.rightsizing) compare these figures with the
attempt's resource request. At exit the runner measures, through
`resource.getrusage` of the process itself and of its waited-for children:

- `peak_rss_mib`: the peak resident set size (`ru_maxrss`) of the job's process,
  or of its largest child when that was bigger. It is the process tree's RSS,
  not the container's memory figure: on AWS the container's cgroup also counts
  the page cache and other processes, so its own peak is at least this one.
- `cpu_seconds`: user plus system time of the process and its children, and
  `wall_seconds`, from the moment the runner started the job's main function to
  its end (the interpreter's own start-up is in neither).

The record goes to `s3://<intermediate bucket>/runs/<run id>/usage/<step>/<job>-attempt-<n>.json`
(a multi-node job's `<job id>#<node>` as `<job id>-node-<node>`), on success and
on failure alike: a failed attempt's peak is often the telling one. A job's main
names the bucket and run with `report_to` once its arguments are read; a job
that never does (a bad command line) or that runs outside Batch (no
`AWS_BATCH_JOB_ID`) writes nothing. Neither does a process killed by a signal
(SIGKILL from the OOM killer or at a Spot reclamation's end): no code runs at
that exit, so such an attempt shows only in its exit code and reason. In a
multi-container task only the main container's job reports; a sidecar is small.
Writing never changes the job's exit code: an S3 error is logged and ignored.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .aws import S3
from .errors import JobError
from .s3uri import S3Uri

log = logging.getLogger("jobkit.usage")

USAGE_VERSION = 1
# ru_maxrss is in KiB on Linux and in bytes on macOS.
_MAXRSS_PER_MIB = 1024 * 1024 if sys.platform == "darwin" else 1024


@dataclass(frozen=True)
class Destination:
    """Where this attempt's usage record goes: the run's intermediate bucket and id."""

    bucket: str
    run_id: str


_destination: Destination | None = None


def report_to(bucket: str, run_id: str) -> None:
    """Name the bucket and run the usage record of this process goes to (a job's main calls it once)."""
    global _destination
    _destination = Destination(bucket, run_id)


def forget_destination() -> None:
    """Start with no destination (the runner calls it before each job's main)."""
    global _destination
    _destination = None


@dataclass(frozen=True)
class Meter:
    """CPU seconds and a wall clock read when the job's main started."""

    cpu_seconds: float
    monotonic: float

    @classmethod
    def start(cls) -> Meter:
        return cls(cpu_seconds=_cpu_seconds(), monotonic=time.monotonic())


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_mib() -> float:
    """The larger of this process's peak RSS and its largest waited-for child's, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / _MAXRSS_PER_MIB


def batch_identity(environ: dict[str, str] | os._Environ[str]) -> tuple[str, int | None, int] | None:
    """(job id, node index or None, attempt number) from the variables Batch sets; None outside Batch."""
    raw = environ.get("AWS_BATCH_JOB_ID", "").strip()
    if not raw:
        return None
    job_id, _, node = raw.partition("#")
    try:
        attempt = int(environ.get("AWS_BATCH_JOB_ATTEMPT", "1") or "1")
    except ValueError:
        attempt = 1
    return job_id, int(node) if node.isdigit() else None, attempt


def record_key(run_id: str, step: str, job_id: str, node: int | None, attempt: int) -> str:
    """The record's key in the intermediate bucket."""
    job = job_id if node is None else f"{job_id}-node-{node}"
    return f"runs/{run_id}/usage/{step}/{job}-attempt-{attempt}.json"


def usage_record(step: str, destination: Destination, identity: tuple[str, int | None, int],
                 exit_code: int, meter: Meter) -> dict[str, Any]:
    """The usage record of this attempt as it ends."""
    job_id, node, attempt = identity
    return {
        "version": USAGE_VERSION,
        "run_id": destination.run_id,
        "step": step,
        "job_id": job_id,
        "node_index": node,
        "attempt": attempt,
        "exit_code": exit_code,
        "peak_rss_mib": round(peak_rss_mib(), 3),
        "cpu_seconds": round(max(0.0, _cpu_seconds() - meter.cpu_seconds), 3),
        "wall_seconds": round(max(0.0, time.monotonic() - meter.monotonic), 3),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def write_usage(step: str, exit_code: int, meter: Meter, s3: Any | None = None) -> S3Uri | None:
    """Write this attempt's usage record where `report_to` said; the URI written, or None.

    Never raises: a job's outcome does not depend on its usage record.
    """
    identity = batch_identity(os.environ)
    if _destination is None or identity is None:
        return None
    try:
        record = usage_record(step, _destination, identity, exit_code, meter)
        uri = S3Uri(_destination.bucket, record_key(_destination.run_id, step, *identity))
        S3(s3).put_json(record, uri)
    except JobError as exc:  # an S3 failure, already named
        log.warning("usage record not written: %s", exc.message)
        return None
    except Exception as exc:  # a usage record is never worth a job's outcome
        log.warning("usage record not written: %s: %s", type(exc).__name__, exc)
        return None
    log.info("usage: peak %.0f MiB, %.1f CPU s in %.1f s -> %s",
             record["peak_rss_mib"], record["cpu_seconds"], record["wall_seconds"], uri)
    return uri
