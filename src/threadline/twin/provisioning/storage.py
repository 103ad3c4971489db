"""S3 buckets and bucket policies."""

from __future__ import annotations

import json
from typing import Any

from .core import Provisioner, handles


def _tags(props: dict[str, Any]) -> list[dict[str, str]]:
    tags = props.get("Tags", [])
    if isinstance(tags, dict):
        return [{"Key": k, "Value": str(v)} for k, v in tags.items()]
    return tags


@handles("AWS::S3::Bucket")
def _bucket(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    s3 = p.client("s3")
    name = p.physical_name(logical_id, props, "BucketName", lower=True)
    s3.create_bucket(Bucket=name)
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name,
                                   PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "BucketEncryption" in props:
        rules = [{("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                  for k, v in rule.items()}
                 for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if props.get("VersioningConfiguration", {}).get("Status"):
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    if "LifecycleConfiguration" in props:
        rules = [_lifecycle_rule(rule) for rule in props["LifecycleConfiguration"]["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if props.get("NotificationConfiguration", {}).get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}})
    if props.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(props)})
    return name, {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com",
                  "RegionalDomainName": f"{name}.s3.{p.region}.amazonaws.com"}


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule shape -> the S3 API's."""
    out: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"],
                           "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(days)}
    if "NoncurrentVersionExpiration" in rule:
        days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(days)}
    return out


@handles("AWS::S3::BucketPolicy")
def _bucket_policy(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    document = dict(props["PolicyDocument"])
    statements = document.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    kept = [s for s in statements if not _denies_plain_http(s)]
    if len(kept) < len(statements):
        p.notes.append(f"{logical_id}: the TLS-only statement stays cloud-only (the twin serves HTTP on 127.0.0.1)")
    if kept:
        document["Statement"] = kept
        p.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))
    return f"{props['Bucket']}-policy", {}


def _denies_plain_http(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition", {})
    return statement.get("Effect") == "Deny" and any(
        "aws:SecureTransport" in clause for clause in condition.values() if isinstance(clause, dict))
