"""boto3 clients and the few S3 operations the jobs need, with readable failures.

boto3 reads `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_<SERVICE>`) by itself, so
the same code talks to AWS in Batch and to the local moto server in the twin.

A job process makes one session and one client per service, and every part of
the job (its main, the usage record at exit) shares them: each new session
registers botocore's few hundred event handlers again, and each client builds
its endpoint resolver and signer, tens of milliseconds apiece. They are remade
only when the AWS settings in the environment change (tests switch endpoints).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .errors import JobError
from .s3uri import S3Uri

DEFAULT_REGION = "us-east-1"
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"})
_MULTIPART_THRESHOLD = TransferConfig().multipart_threshold
_CHUNK_BYTES = 1024 * 1024
# Batch's own variables say which job this is, not how to reach AWS: they never renew the clients.
_NOT_SETTINGS = "AWS_BATCH_"

_lock = threading.Lock()
_settings: tuple[tuple[str, str], ...] | None = None
_session: boto3.session.Session | None = None
_clients: dict[str, Any] = {}


def client(service: str) -> Any:
    """This process's boto3 client for `service`; the region falls back to us-east-1 when none is configured."""
    global _settings, _session
    settings = _aws_settings()
    with _lock:
        if settings != _settings or _session is None:
            _settings, _session = settings, boto3.session.Session()
            _clients.clear()
        made = _clients.get(service)
        if made is None:
            made = _session.client(service, region_name=_session.region_name or DEFAULT_REGION, config=_CONFIG)
            _clients[service] = made
        return made


def _aws_settings() -> tuple[tuple[str, str], ...]:
    """The environment's AWS settings (credentials, region, endpoints, profile, config files)."""
    return tuple(sorted((name, value) for name, value in os.environ.items()
                        if name.startswith("AWS_") and not name.startswith(_NOT_SETTINGS)))


def describe(exc: BaseException) -> str:
    """One line naming an AWS failure: error code and message."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "ClientError")
        message = error.get("Message", "")
        return f"{code}: {message}" if message else str(code)
    return f"{type(exc).__name__}: {exc}"


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn botocore failures (and boto3's transfer failures) into a JobError that says what was being done."""
    try:
        yield
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        raise JobError(f"{action}: {describe(exc)}") from exc


@dataclass(frozen=True)
class ObjectInfo:
    """What S3 said about an object we read."""

    uri: S3Uri
    size: int
    etag: str
    version_id: str | None


def _object_info(uri: S3Uri, response: dict[str, Any]) -> ObjectInfo:
    """The object's size, ETag and version as a GetObject response gives them."""
    version = response.get("VersionId")
    return ObjectInfo(uri, int(response["ContentLength"]), response.get("ETag", "").strip('"'),
                      version if version and version != "null" else None)


class S3:
    """Thin helpers over an S3 client; every failure names the URI."""

    def __init__(self, s3_client: Any | None = None) -> None:
        self.client = s3_client or client("s3")

    def download(self, uri: S3Uri, path: Path, version_id: str | None = None) -> ObjectInfo:
        """Write the object (the given version, else the current one) to `path` and say which one it was.

        One GetObject streamed to the file for an object below the multipart threshold: no HEAD and no
        transfer threads, which cost more than a small job's whole transfer. A larger object is fetched
        in ranged parts by boto3's transfer manager, pinned to the version the GetObject saw."""
        request = {"Bucket": uri.bucket, "Key": uri.key}
        if version_id:
            request["VersionId"] = version_id
        with aws_errors(f"cannot read {uri}"):
            response = self.client.get_object(**request)
            info = _object_info(uri, response)
            if info.size >= _MULTIPART_THRESHOLD:
                response["Body"].close()  # the parts come in requests of their own
                pinned = {"VersionId": info.version_id} if info.version_id else None
                self.client.download_file(uri.bucket, uri.key, os.fspath(path), ExtraArgs=pinned)
                return info
            # Read to its end, the response hands its connection back to the pool for the next request.
            with path.open("wb") as out:
                for chunk in response["Body"].iter_chunks(_CHUNK_BYTES):
                    out.write(chunk)
        return info

    def upload(self, path: Path, uri: S3Uri, content_type: str) -> None:
        """One PutObject for a file below the multipart threshold (what `upload_file` would send, without
        its transfer threads); a larger one goes in parts."""
        with aws_errors(f"cannot write {uri}"):
            if path.stat().st_size < _MULTIPART_THRESHOLD:
                with path.open("rb") as body:
                    self.client.put_object(Bucket=uri.bucket, Key=uri.key, Body=body, ContentType=content_type)
            else:
                self.client.upload_file(os.fspath(path), uri.bucket, uri.key,
                                        ExtraArgs={"ContentType": content_type})

    def put_bytes(self, data: bytes, uri: S3Uri, content_type: str) -> None:
        with aws_errors(f"cannot write {uri}"):
            self.client.put_object(Bucket=uri.bucket, Key=uri.key, Body=data, ContentType=content_type)

    def put_json(self, document: Any, uri: S3Uri) -> None:
        data = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")
        self.put_bytes(data, uri, "application/json")

    def get_bytes(self, uri: S3Uri) -> bytes:
        with aws_errors(f"cannot read {uri}"):
            return self.client.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read()

    def get_json(self, uri: S3Uri) -> Any:
        data = self.get_bytes(uri)
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise JobError(f"{uri} is not valid JSON: {exc}") from exc

    def copy(self, source: S3Uri, target: S3Uri, version_id: str | None = None) -> None:
        """Server-side copy (multipart for large objects) of one object version."""
        copy_source = {"Bucket": source.bucket, "Key": source.key}
        if version_id:
            copy_source["VersionId"] = version_id
        with aws_errors(f"cannot copy {source} to {target}"):
            self.client.copy(copy_source, target.bucket, target.key)

    def list_keys(self, prefix: S3Uri) -> list[str]:
        """Every key under a prefix, relative to it."""
        keys: list[str] = []
        with aws_errors(f"cannot list {prefix}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=prefix.bucket, Prefix=prefix.key)
            for page in pages:
                keys.extend(item["Key"][len(prefix.key):] for item in page.get("Contents", []))
        return keys
