"""Errors a job raises on purpose; each carries the exit code it ends the job with."""

from __future__ import annotations

from .exitcodes import EX_DATAERR, EX_FAILURE, EX_USAGE


class JobError(Exception):
    """A failure with a message fit for the `threadline-error:` line."""

    exit_code: int = EX_FAILURE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(JobError):
    """The command line or the job's environment is wrong (exit 2)."""

    exit_code = EX_USAGE


class DataError(JobError):
    """The input failed validation (exit 65); Batch must not retry it."""

    exit_code = EX_DATAERR
