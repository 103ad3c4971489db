"""Command-line and environment parsing that fails with exit code 2 and a clear line."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from .errors import UsageError
from .s3uri import S3Uri


class JobArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad command line raises UsageError instead of exiting."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(f"bad command line: {message}")


def s3_object(value: str) -> S3Uri:
    try:
        uri = S3Uri.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if uri.is_prefix:
        raise argparse.ArgumentTypeError(f"{value!r} names a prefix, not an object")
    return uri


def s3_prefix(value: str) -> S3Uri:
    try:
        return S3Uri.parse_prefix(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None


def positive_int(value: str) -> int:
    number = _integer(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be > 0")
    return number


def non_negative_int(value: str) -> int:
    number = _integer(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be >= 0")
    return number


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} must be a finite number > 0")
    return number


def share(value: str) -> float:
    """A share between 0 and 1; `5%` is read as 0.05."""
    text = value.strip()
    try:
        number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a share (like 0.05 or 5%)") from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"{value!r} must be between 0 and 1")
    return number


def env_int(name: str, default: int) -> int:
    """An integer environment variable; absent or empty means `default`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"environment variable {name}={raw!r} is not an integer") from None


def env_required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise UsageError(f"environment variable {name} is not set")
    return value
