"""boto3 clients, made once per process: a warm Lambda container reuses them."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard"}, user_agent_extra="threadline")


@cache
def client(service_name: str, endpoint_url: str | None = None) -> Any:
    """A boto3 client; with `endpoint_url=None` boto3 applies AWS_ENDPOINT_URL[_<SERVICE>] itself."""
    return boto3.client(service_name, endpoint_url=endpoint_url, config=_CONFIG)
