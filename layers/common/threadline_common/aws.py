"""boto3 clients, made once per process and only when first asked for.

A warm Lambda container reuses them. boto3 is imported by the first call, not
with this module: importing it takes longer than the rest of a handler's init
(bench/README.md), and an invocation that never calls AWS does not pay for it.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service_name: str, endpoint_url: str | None = None, region_name: str | None = None) -> Any:
    """A boto3 client; with `endpoint_url=None` boto3 applies AWS_ENDPOINT_URL[_<SERVICE>] itself, and with
    `region_name=None` the environment's region."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard"}, user_agent_extra="threadline")
    return boto3.client(service_name, endpoint_url=endpoint_url, region_name=region_name, config=config)
