"""Where the commands write, how they say an error, and how they exit."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as for any program whose reader went away


def say_error(message: str) -> None:
    """`error: message` on stderr, the message as given (no markup, no highlighting)."""
    err_console.print(f"[red]error:[/] {escape(message)}", highlight=False)


def fail(message: str, code: int, twin_started: bool = False) -> NoReturn:
    """Say what happened and what to do, and exit with `code`.

    Once a twin has started (its server threads may still run) the exit is
    immediate, as at the end of a run.
    """
    say_error(message)
    if twin_started:
        exit_now(code)
    raise typer.Exit(code)


def exit_now(code: int) -> NoReturn:
    """Exit once the twin is stopped and the output flushed.

    Tearing down moto's in-memory backends at interpreter exit takes ~1.5 s and
    holds nothing that still needs writing, so skip it.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
