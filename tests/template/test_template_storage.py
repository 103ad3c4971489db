"""Storage and encryption: buckets, run table, Slack secret, data key."""

from __future__ import annotations

from typing import Any

import pytest

BUCKETS = ["IncomingBucket", "IntermediateBucket", "ResultsBucket", "QuarantineBucket"]  # data: the data key
# Code only (the job images' build contexts for CodeBuild, a day each): S3-managed keys, so that
# the deploy command and CodeBuild need no grant on the data key.
CODE_BUCKETS = ["ImageSourceBucket"]
EVERY_BUCKET = BUCKETS + CODE_BUCKETS


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _bucket_policies(resources: dict[str, Any], bucket: str) -> list[dict[str, Any]]:
    """Policy documents that always apply to `bucket` (a conditional policy may be absent)."""
    return [
        res["Properties"]["PolicyDocument"]
        for res in resources.values()
        if res["Type"] == "AWS::S3::BucketPolicy"
        and res["Properties"]["Bucket"] == {"Ref": bucket}
        and "Condition" not in res
    ]


def test_exactly_the_four_data_buckets_and_the_image_source_bucket(resources: dict[str, Any]) -> None:
    found = sorted(name for name, res in resources.items() if res["Type"] == "AWS::S3::Bucket")
    assert found == sorted(EVERY_BUCKET)


@pytest.mark.parametrize("bucket", CODE_BUCKETS)
def test_code_bucket_is_encrypted_and_expires(resources: dict[str, Any], bucket: str) -> None:
    props = resources[bucket]["Properties"]
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert [r["ExpirationInDays"] for r in props["LifecycleConfiguration"]["Rules"]] == [1]


@pytest.mark.parametrize("bucket", EVERY_BUCKET)
def test_bucket_blocks_public_access(resources: dict[str, Any], bucket: str) -> None:
    block = resources[bucket]["Properties"].get("PublicAccessBlockConfiguration", {})
    for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
        assert block.get(flag) is True, f"{bucket}: {flag} must be true"


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_is_encrypted_with_the_data_key(resources: dict[str, Any], bucket: str) -> None:
    rules = resources[bucket]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert len(rules) == 1
    default = rules[0]["ServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    assert default["KMSMasterKeyID"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert rules[0]["BucketKeyEnabled"] is True


@pytest.mark.parametrize("bucket", EVERY_BUCKET)
def test_bucket_owner_enforced(resources: dict[str, Any], bucket: str) -> None:
    rules = resources[bucket]["Properties"]["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]


@pytest.mark.parametrize("bucket", EVERY_BUCKET)
def test_bucket_denies_plain_http(resources: dict[str, Any], bucket: str) -> None:
    arn = {"Fn::GetAtt": [bucket, "Arn"]}
    objects = {"Fn::Sub": f"${{{bucket}.Arn}}/*"}
    tls_only = [
        statement
        for document in _bucket_policies(resources, bucket)
        for statement in document["Statement"]
        if statement["Effect"] == "Deny"
        and statement.get("Principal") in ("*", {"AWS": "*"})
        and "s3:*" in _as_list(statement["Action"])
        and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
    ]
    assert len(tls_only) == 1, f"{bucket} needs one TLS-only Deny statement"
    covered = _as_list(tls_only[0]["Resource"])
    assert arn in covered and objects in covered, f"{bucket}: the Deny must cover the bucket and its objects"


def test_incoming_bucket_is_versioned_and_sends_events(resources: dict[str, Any]) -> None:
    props = resources["IncomingBucket"]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["NotificationConfiguration"]["EventBridgeConfiguration"] == {"EventBridgeEnabled": True}


def test_intermediate_bucket_expires_objects_and_uploads(resources: dict[str, Any]) -> None:
    rules = resources["IntermediateBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    enabled = [rule for rule in rules if rule["Status"] == "Enabled"]
    assert any(int(rule.get("ExpirationInDays", 0)) > 0 and "Prefix" not in rule for rule in enabled)
    assert any(int(rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation", 0)) > 0
               for rule in enabled)


def test_data_key_rotates_and_is_kept(resources: dict[str, Any]) -> None:
    key = resources["DataKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("key", ["DataKey", "AlarmKey"])
def test_key_policy_wildcard_is_for_the_account_only(resources: dict[str, Any], key: str) -> None:
    """kms:* goes only to the account root (IAM policies then decide); services get named actions."""
    for statement in resources[key]["Properties"]["KeyPolicy"]["Statement"]:
        actions = _as_list(statement["Action"])
        if any(action in ("*", "kms:*") for action in actions):
            assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}


def test_data_key_names_no_service_principal(resources: dict[str, Any]) -> None:
    """The data key (S3, Neptune, the Slack secret) is used only through callers' own permissions."""
    statements = resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert [s["Principal"] for s in statements] == [
        {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    ]


def test_alarm_topic_has_its_own_key(resources: dict[str, Any]) -> None:
    """CloudWatch's grant sits on a key that protects alarm notifications and nothing else."""
    assert resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "AlarmKey"}
    key = resources["AlarmKey"]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert len(cloudwatch) == 1, "CloudWatch alarms must be able to publish to the KMS-encrypted AlarmTopic"
    assert set(_as_list(cloudwatch[0]["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    users = sorted(name for name, res in resources.items() if "AlarmKey" in str(res.get("Properties")))
    assert users == ["AlarmTopic"], f"only the alarm topic may use AlarmKey, not {users}"


def test_results_bucket_keeps_old_report_versions(resources: dict[str, Any]) -> None:
    props = resources["ResultsBucket"]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = [r for r in props["LifecycleConfiguration"]["Rules"] if r["Status"] == "Enabled"]
    assert any(int(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays", 0)) > 0 for r in rules)


def test_run_table(resources: dict[str, Any]) -> None:
    props = resources["RunTable"]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "run_id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "run_id", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_slack_secret_is_json_and_encrypted(resources: dict[str, Any]) -> None:
    props = resources["SlackWebhookSecret"]["Properties"]
    assert props["SecretString"] == {"Fn::Sub": '{"webhook_url": "${SlackWebhookUrl}"}'}
    assert props["KmsKeyId"] == {"Ref": "DataKey"}


@pytest.mark.parametrize("bucket", ["IncomingBucket", "ResultsBucket", "QuarantineBucket"])
def test_data_buckets_outlive_the_stack(resources: dict[str, Any], bucket: str) -> None:
    assert resources[bucket]["DeletionPolicy"] == "Retain"
    assert resources[bucket]["UpdateReplacePolicy"] == "Retain"
