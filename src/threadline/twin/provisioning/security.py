"""IAM roles, policies and instance profiles, KMS keys and aliases, Secrets Manager secrets."""

from __future__ import annotations

import json
from typing import Any

from .core import Provisioner, handles


@handles("AWS::KMS::Key")
def _kms_key(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    args = {"Description": props.get("Description", logical_id)}
    if "KeyPolicy" in props:
        args["Policy"] = json.dumps(props["KeyPolicy"])
    key = p.client("kms").create_key(**args)
    key_id = key["KeyMetadata"]["KeyId"]
    if props.get("EnableKeyRotation"):
        p.client("kms").enable_key_rotation(KeyId=key_id)
    return key_id, {"Arn": key["KeyMetadata"]["Arn"], "KeyId": key_id}


@handles("AWS::KMS::Alias")
def _kms_alias(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    p.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    return props["AliasName"], {}


@handles("AWS::IAM::Role")
def _iam_role(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    iam = p.client("iam")
    name = props.get("RoleName") or f"{p.stack_name}-{logical_id}"[:64]
    role = iam.create_role(RoleName=name, Path=props.get("Path", "/"),
                           AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))
    for arn in props.get("ManagedPolicyArns", []):
        if arn.startswith("arn:aws:iam::aws:policy/"):
            # AWS-owned policies are not in the twin's IAM (loading all of them costs ~0.7 s a start);
            # the twin does not evaluate IAM, so the attachment is recorded as a tag instead.
            iam.tag_role(RoleName=name, Tags=[{"Key": f"threadline:managed-policy:{arn.rsplit('/', 1)[-1]}"[:128],
                                               "Value": "attached in AWS"}])
            continue
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    for policy in props.get("Policies", []):
        iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                            PolicyDocument=json.dumps(policy["PolicyDocument"]))
    return name, {"Arn": role["Role"]["Arn"], "RoleId": role["Role"]["RoleId"]}


@handles("AWS::IAM::Policy")
def _iam_policy(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    for role in props.get("Roles", []):
        p.client("iam").put_role_policy(RoleName=role, PolicyName=props["PolicyName"],
                                        PolicyDocument=json.dumps(props["PolicyDocument"]))
    return props["PolicyName"], {}


@handles("AWS::IAM::InstanceProfile")
def _instance_profile(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    iam = p.client("iam")
    name = props.get("InstanceProfileName") or f"{p.stack_name}-{logical_id}"
    profile = iam.create_instance_profile(InstanceProfileName=name, Path=props.get("Path", "/"))
    for role in props.get("Roles", []):
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    return name, {"Arn": profile["InstanceProfile"]["Arn"]}


@handles("AWS::SecretsManager::Secret")
def _secret(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    args: dict[str, Any] = {"Name": props.get("Name") or f"{p.stack_name}/{logical_id}"}
    if "SecretString" in props:
        args["SecretString"] = props["SecretString"]
    if "KmsKeyId" in props:
        args["KmsKeyId"] = props["KmsKeyId"]
    arn = p.client("secretsmanager").create_secret(**args)["ARN"]
    return arn, {"Id": arn}
