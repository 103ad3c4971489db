"""EventBridge S3 `Object Created` -> StartExecution of the pipeline, at most once per object version.

Checks the object (incoming prefix, .csv/.csv.gz suffix, size), names the
execution after the object version (threadline_common.naming), gives the run
its team (the Batch fair-share identifier, from the key's folder) and starts it.
A duplicate event finds the name taken (`ExecutionAlreadyExists`) and is
skipped. An event that is not an S3 object event is logged and skipped; other
AWS errors raise so that EventBridge retries (and, at the end, dead-letters).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from threadline_common import aws
from threadline_common.observability import lambda_handler
from threadline_common.run_input import (
    DEFAULT_TEAM,
    SourceObject,
    execution_input,
    rejection_reason,
    upload_folder,
    upload_team,
    utc_timestamp,
)

logger = Logger()

DEFAULT_MAX_INPUT_BYTES = 5 * 1024**3


class BadEventError(ValueError):
    """The event is not an S3 `Object Created` event for one object."""


@lambda_handler(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        source = source_object(event)
    except BadEventError as exc:
        logger.error("Skipped an event that is not an S3 Object Created event", extra={"reason": str(exc)})
        return {"status": "skipped", "reason": str(exc)}

    source = with_stored_key(source)
    prefix = os.environ.get("INCOMING_PREFIX", "")
    max_bytes = int(os.environ.get("MAX_INPUT_BYTES") or DEFAULT_MAX_INPUT_BYTES)
    reason = rejection_reason(source, prefix, max_bytes)
    if reason:
        logger.warning("Skipped an object that cannot start a run", extra={"reason": reason, "uri": source.uri})
        return {"status": "skipped", "reason": reason, "uri": source.uri}

    source = with_team(source, prefix)
    run_id = source.run_id
    logger.append_keys(run_id=run_id)
    payload = execution_input(source, received_at=utc_timestamp())
    try:
        response = aws.client("stepfunctions").start_execution(
            stateMachineArn=os.environ["STATE_MACHINE_ARN"],
            name=run_id,
            input=json.dumps(payload),
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        logger.info("Skipped a duplicate event: this object version already has a run", extra={"uri": source.uri})
        return {"status": "duplicate", "run_id": run_id, "uri": source.uri}

    logger.info("Started a run", extra={"uri": source.uri, "execution_arn": response["executionArn"]})
    return {"status": "started", "run_id": run_id, "execution_arn": response["executionArn"], "uri": source.uri}


def source_object(event: Any) -> SourceObject:
    """The object an EventBridge S3 event names; raises BadEventError saying what is missing."""
    if not isinstance(event, dict):
        raise BadEventError(f"the event is a {type(event).__name__}, not an object")
    try:
        source, detail_type, detail = event["source"], event["detail-type"], event["detail"]
    except KeyError as exc:
        raise BadEventError(f"the event has no {exc}") from None
    if (source, detail_type) != ("aws.s3", "Object Created"):
        raise BadEventError(f"source {_short(source)} / detail-type {_short(detail_type)}"
                            " is not aws.s3 / Object Created")
    if not _names_an_object(detail):
        raise BadEventError("the event's detail names no bucket and object key")
    obj = detail["object"]
    size = obj.get("size")
    if isinstance(size, bool) or not isinstance(size, int):
        raise BadEventError(f"the object size {_short(size)} is not an integer")
    return SourceObject(
        bucket=detail["bucket"]["name"],
        key=obj["key"],  # as sent, maybe URL-encoded: only with_stored_key can tell which spelling is stored
        size=size,
        version_id=obj.get("version-id") or None,
        etag=obj.get("etag") or None,
    )


def _names_an_object(detail: Any) -> bool:
    """Whether an event detail has a bucket name and an object key (non-empty strings)."""
    if not isinstance(detail, dict):
        return False
    bucket, obj = detail.get("bucket"), detail.get("object")
    return (isinstance(bucket, dict) and isinstance(bucket.get("name"), str) and bool(bucket["name"])
            and isinstance(obj, dict) and isinstance(obj.get("key"), str) and bool(obj["key"]))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def with_team(source: SourceObject, prefix: str) -> SourceObject:
    """`source` with its team: the key's folder under the prefix if `TEAMS` knows it, else `DEFAULT_TEAM`."""
    teams = {team.strip() for team in os.environ.get("TEAMS", "").split(",") if team.strip()}
    team = upload_team(source.key, prefix, teams, os.environ.get("DEFAULT_TEAM") or DEFAULT_TEAM)
    folder = upload_folder(source.key, prefix)
    if folder is not None and folder != team:
        logger.warning("The key's folder names no team: the run is the default team's",
                       extra={"folder": folder, "team": team, "teams": sorted(teams)})
    return replace(source, team=team)


def with_stored_key(source: SourceObject) -> SourceObject:
    """`source` with the key as S3 stores it.

    S3's direct notifications URL-encode keys ("my file.csv" -> "my+file.csv");
    the EventBridge documentation shows keys unencoded. When decoding would
    change the key, a HEAD of the object version tells which spelling exists.
    """
    decoded = unquote_plus(source.key)
    if decoded == source.key:
        return source
    s3 = aws.client("s3")
    version = {"VersionId": source.version_id} if source.version_id and source.version_id != "null" else {}
    for key in (source.key, decoded):
        try:
            s3.head_object(Bucket=source.bucket, Key=key, **version)
        except ClientError as exc:
            # Without s3:ListBucket, S3 answers 403 rather than 404 for a key that does not exist.
            if exc.response.get("Error", {}).get("Code") in ("400", "403", "404", "NoSuchKey", "NotFound"):
                continue
            raise
        return replace(source, key=key)
    return source
