"""Run a job's main function: logging, the `threadline-error:` line and the exit code.

Whatever goes wrong, the last line on stderr starts with `threadline-error:` and
says why in one line; an unexpected exception also prints its traceback first.
SIGTERM is left alone so a Spot reclamation still shows as one.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Sequence

from . import usage
from .errors import JobError
from .exitcodes import EX_FAILURE, EX_OK

ERROR_PREFIX = "threadline-error:"
_MAX_LINE = 1000

Main = Callable[[Sequence[str] | None], None]


def error_line(message: str) -> str:
    """The one-line failure report: control characters flattened, length capped."""
    flat = " ".join(message.split())
    if len(flat) > _MAX_LINE:
        flat = flat[: _MAX_LINE - 3] + "..."
    return f"{ERROR_PREFIX} {flat}"


def report_failure(message: str) -> None:
    print(error_line(message), file=sys.stderr, flush=True)


def configure_logging(job: str) -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {job} %(levelname)s %(message)s",
    )
    # boto's own chatter adds nothing to a job log.
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(job: str, main: Main, argv: Sequence[str] | None = None) -> int:
    """Call `main(argv)`, record what it used (jobkit.usage), and turn its outcome into an exit code."""
    configure_logging(job)
    usage.forget_destination()
    meter = usage.Meter.start()
    code, failure = _outcome(job, main, argv)
    usage.write_usage(job, code, meter)
    if failure is not None:
        report_failure(failure)  # last, so it stays the last line on stderr
    return code


def _outcome(job: str, main: Main, argv: Sequence[str] | None) -> tuple[int, str | None]:
    """(exit code, the failure line's message or None)."""
    try:
        main(argv)
    except JobError as exc:
        return exc.exit_code, exc.message
    except Exception as exc:  # the last resort: never end on a bare traceback
        traceback.print_exc(file=sys.stderr)
        return EX_FAILURE, f"{job} failed unexpectedly: {type(exc).__name__}: {exc}"
    return EX_OK, None
