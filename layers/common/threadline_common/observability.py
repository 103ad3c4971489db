"""Logging helpers for the handlers (Powertools Logger)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

Handler = Callable[[Any, Any], Any]


def lambda_handler(logger: Logger) -> Callable[[Handler], Handler]:
    """Powertools' `inject_lambda_context`: every log line names the function, the request and the cold start.

    Lambda always passes a context, and so do the twin and the tests (a Powertools
    `LambdaContext`). The one exception left is a handler called with `None`
    (record_lineage's own tests still do): it runs without the Lambda keys.
    """

    def decorate(handler: Handler) -> Handler:
        with_context = logger.inject_lambda_context(handler, clear_state=True)

        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            if context is None:
                return handler(event, context)
            return with_context(event, context)

        return run

    return decorate
