"""Logging helpers for the handlers (Powertools Logger)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

Handler = Callable[[Any, Any], Any]


def lambda_handler(logger: Logger) -> Callable[[Handler], Handler]:
    """Powertools' `inject_lambda_context`, skipped when there is no real context (unit tests, scripts)."""

    def decorate(handler: Handler) -> Handler:
        with_context = logger.inject_lambda_context(handler, clear_state=True)

        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            if hasattr(context, "function_name") and hasattr(context, "aws_request_id"):
                return with_context(event, context)
            return handler(event, context)

        return run

    return decorate
