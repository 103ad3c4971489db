"""openCypher over the boto3 `neptunedata` client: Neptune in AWS, the twin's stand-in locally."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from .. import aws

DEFAULT_PORT = "8182"


class CypherRunner(Protocol):
    """Runs one openCypher query with parameters and returns its rows as dicts."""

    def run(self, query: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...


# Answers that say "not now" rather than "not this query": the same write may succeed later.
UNAVAILABLE_CODES = frozenset({
    "ServiceUnavailableException", "ThrottlingException", "TooManyRequestsException",
    "InternalFailureException", "ConcurrentModificationException", "TimeLimitExceededException",
    "MemoryLimitExceededException", "QueryLimitExceededException",
})


class LineageGraphError(RuntimeError):
    """The lineage graph could not be reached or refused a query.

    `unavailable` is true when the graph could not be reached, was busy or
    throttled: every other write would fail the same way just now.
    """

    def __init__(self, message: str, *, code: str | None = None, unavailable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.unavailable = unavailable


def endpoint_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """None when AWS_ENDPOINT_URL_NEPTUNEDATA is set (boto3 applies it), else Neptune's HTTPS endpoint.

    With the real endpoint boto3 signs every request with SigV4 (service
    `neptune-db`), which is what a cluster with IAM authentication expects.
    """
    if environ.get("AWS_ENDPOINT_URL_NEPTUNEDATA"):
        return None
    host = environ.get("NEPTUNE_ENDPOINT", "").strip()
    if not host:
        raise LineageGraphError("NEPTUNE_ENDPOINT is not set (nor AWS_ENDPOINT_URL_NEPTUNEDATA)")
    port = environ.get("NEPTUNE_PORT", "").strip() or DEFAULT_PORT
    return f"https://{host}:{port}"


class NeptuneCypher:
    """A CypherRunner over `neptunedata.execute_open_cypher_query`."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> NeptuneCypher:
        return cls(aws.client("neptunedata", endpoint_url=endpoint_url(environ)))

    def run(self, query: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        request: dict[str, Any] = {"openCypherQuery": query}
        if parameters:
            request["parameters"] = json.dumps(parameters)
        try:
            response = self._client.execute_open_cypher_query(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code") or exc.response.get("code") or "ClientError"
            detail = exc.response.get("detailedMessage") or error.get("Message") or ""
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            raise LineageGraphError(f"{code}: {detail}".rstrip(": "), code=code,
                                    unavailable=code in UNAVAILABLE_CODES or status >= 500) from exc
        except BotoCoreError as exc:
            raise LineageGraphError(f"{type(exc).__name__}: {exc}", code=type(exc).__name__,
                                    unavailable=True) from exc
        return list(response.get("results", []))
