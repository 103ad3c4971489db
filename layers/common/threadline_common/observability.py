"""Logging helpers for the handlers (Powertools Logger)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

Handler = Callable[[Any, Any], Any]


def lambda_handler(logger: Logger) -> Callable[[Handler], Handler]:
    """Powertools' `inject_lambda_context`: every log line names the function, the request and the cold start.

    Lambda always passes a context, and so do the twin and the tests (a Powertools
    `LambdaContext`).
    """

    def decorate(handler: Handler) -> Handler:
        return logger.inject_lambda_context(handler, clear_state=True)

    return decorate
