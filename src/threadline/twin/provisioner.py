"""Creates what the translated template declares, through the AWS APIs of the twin.

One function per resource type calls the same APIs CloudFormation would; a
type with no function here is reported as cloud-only, never silently dropped.
moto's own CloudFormation is not used: it skips alarms and S3 notifications,
ignores DefinitionSubstitutions and fails on multi-node job definitions.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3

from .batch_runtime import LocalBatchRuntime, QueueSpec
from .lambda_async import AsyncConfig
from .lambda_runtime import FunctionSpec, LocalLambdaRuntime
from .template import LocalArtifacts, Resolver, TemplateError, creation_order

ACCOUNT_ID = "123456789012"


@dataclass
class CloudOnly:
    logical_id: str
    resource_type: str
    why: str


@dataclass
class Provisioned:
    """The outcome of provisioning: physical ids, outputs and what stayed cloud-only."""

    physical_ids: dict[str, Any] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    cloud_only: list[CloudOnly] = field(default_factory=list)
    skipped_by_condition: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# Cloud-only resources with the local stand-in that takes their place.
CLOUD_ONLY_TYPES: dict[str, str] = {
    "AWS::Neptune::DBCluster": "lineage goes to the twin's embedded graph behind a local openCypher endpoint",
    "AWS::Neptune::DBInstance": "lineage goes to the twin's embedded graph behind a local openCypher endpoint",
    "AWS::Neptune::DBSubnetGroup": "no Neptune cluster in the twin",
    "AWS::Neptune::DBClusterParameterGroup": "no Neptune cluster in the twin",
    "AWS::Lambda::Permission": "the twin's EventBridge and SNS deliver to functions without resource policies",
    "AWS::SNS::TopicPolicy": "topic policies are not enforced by the twin",
    "AWS::SQS::QueuePolicy": "queue policies are not enforced by the twin (EventBridge delivers to the queue)",
    "AWS::EC2::SecurityGroupIngress": "network rules have no effect on one machine",
    "AWS::EC2::SecurityGroupEgress": "network rules have no effect on one machine",
    "AWS::EC2::PlacementGroup": "instance placement has no meaning for local processes",
    "AWS::Logs::ResourcePolicy": "log delivery policies are not enforced by the twin",
}


class Provisioner:
    def __init__(self, session: boto3.Session, endpoint_url: str, root: Path, stack_name: str,
                 lambda_runtime: LocalLambdaRuntime, batch_runtime: LocalBatchRuntime,
                 neptune_host: str, neptune_port: int) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self.root = root
        self.stack_name = stack_name
        self.region = session.region_name or "us-east-1"
        self.lambda_runtime = lambda_runtime
        self.batch_runtime = batch_runtime
        self.neptune_host = neptune_host
        self.neptune_port = neptune_port
        self._clients: dict[str, Any] = {}
        self.artifacts = LocalArtifacts()
        self.resolver: Resolver | None = None
        self.lambda_runtime_layers: dict[str, Path] = {}  # layer version ARN -> local folder
        self.notes: list[str] = []  # what the twin does differently, said out loud

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url)
        return self._clients[service]

    # -- entry point -----------------------------------------------------------

    def provision(self, template: dict[str, Any], artifacts: LocalArtifacts,
                  parameters: dict[str, Any]) -> Provisioned:
        self.artifacts = artifacts
        values = self._parameter_values(template.get("Parameters", {}), parameters)
        self.resolver = resolver = Resolver(
            parameters=values,
            pseudo={"AWS::Region": self.region, "AWS::AccountId": ACCOUNT_ID,
                    "AWS::StackName": self.stack_name, "AWS::Partition": "aws",
                    "AWS::URLSuffix": "amazonaws.com",
                    "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{ACCOUNT_ID}:stack/{self.stack_name}/twin"},
            conditions=template.get("Conditions", {}),
            attr_fallback=self._attr_fallback,
        )
        result = Provisioned()
        resources = template.get("Resources", {})
        for logical_id in creation_order(resources):
            resource = resources[logical_id]
            kind = resource["Type"]
            result.types[logical_id] = kind
            if "Condition" in resource and not resolver.condition(resource["Condition"]):
                result.skipped_by_condition.append(logical_id)
                continue
            handler = _HANDLERS.get(kind)
            if handler is None:
                why = CLOUD_ONLY_TYPES.get(kind, "no twin equivalent; created only by `sam deploy`")
                result.cloud_only.append(CloudOnly(logical_id, kind, why))
                resolver.refs[logical_id] = f"{self.stack_name}-{logical_id}"
                continue
            props = resolver.resolve(resource.get("Properties", {}))
            try:
                ref, attrs = handler(self, logical_id, props, resource)
            except TemplateError:
                raise
            except Exception as exc:
                raise TemplateError(f"provisioning {logical_id} ({kind}) failed: {exc}") from exc
            resolver.refs[logical_id] = ref
            for name, value in attrs.items():
                resolver.attrs[(logical_id, name)] = value
            result.physical_ids[logical_id] = ref
        for name, output in template.get("Outputs", {}).items():
            if "Condition" in output and not resolver.condition(output["Condition"]):
                continue
            result.outputs[name] = resolver.resolve(output["Value"])
        result.notes = self.notes
        return result

    def _parameter_values(self, declared: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in given:
                value = given[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"template parameter {name} has no default and the twin got no value")
            if str(spec.get("Type", "")).startswith("List<") or spec.get("Type") == "CommaDelimitedList":
                value = value if isinstance(value, list) else [v for v in str(value).split(",") if v]
            values[name] = value
        return values

    def _attr_fallback(self, logical_id: str, attribute: str) -> Any:
        """Attributes of cloud-only resources that the twin's stand-ins answer for."""
        if attribute in ("Endpoint", "ReadEndpoint"):
            return self.neptune_host
        if attribute == "Port":
            return str(self.neptune_port)
        if attribute == "ClusterResourceId":
            return "cluster-THREADLINETWIN"
        return None

    def physical_name(self, logical_id: str, props: dict[str, Any], key: str, lower: bool = False) -> str:
        name = props.get(key) or f"{self.stack_name}-{logical_id}"
        return name.lower() if lower else name

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{resource}"


Handler = Callable[[Provisioner, str, dict[str, Any], dict[str, Any]], tuple[Any, dict[str, Any]]]
_HANDLERS: dict[str, Handler] = {}


def handles(resource_type: str) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        _HANDLERS[resource_type] = function
        return function
    return register


def _tags(props: dict[str, Any]) -> list[dict[str, str]]:
    tags = props.get("Tags", [])
    if isinstance(tags, dict):
        return [{"Key": k, "Value": str(v)} for k, v in tags.items()]
    return tags


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "code runs from the local folder in the threadline twin\n")
    return buffer.getvalue()


# -- security and keys ---------------------------------------------------------

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


# -- storage -------------------------------------------------------------------

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


@handles("AWS::DynamoDB::Table")
def _table(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    ddb = p.client("dynamodb")
    name = p.physical_name(logical_id, props, "TableName")
    args: dict[str, Any] = {"TableName": name, "KeySchema": props["KeySchema"],
                            "AttributeDefinitions": props["AttributeDefinitions"],
                            "BillingMode": props.get("BillingMode", "PROVISIONED")}
    if args["BillingMode"] == "PROVISIONED":
        args["ProvisionedThroughput"] = {k: int(v) for k, v in props["ProvisionedThroughput"].items()}
    if "GlobalSecondaryIndexes" in props:
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("SSESpecification", {}).get("SSEEnabled"):
        sse = {"Enabled": True}
        if props["SSESpecification"].get("SSEType"):
            sse["SSEType"] = props["SSESpecification"]["SSEType"]
        if props["SSESpecification"].get("KMSMasterKeyId"):
            sse["KMSMasterKeyId"] = props["SSESpecification"]["KMSMasterKeyId"]
        args["SSESpecification"] = sse
    table = ddb.create_table(**args)["TableDescription"]
    return name, {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn", "")}


@handles("AWS::Logs::LogGroup")
def _log_group(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("LogGroupName") or f"/threadline/{p.stack_name}/{logical_id}"
    p.client("logs").create_log_group(logGroupName=name)
    if "RetentionInDays" in props:
        p.client("logs").put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    return name, {"Arn": p.arn("logs", f"log-group:{name}:*")}


@handles("AWS::ECR::Repository")
def _ecr(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = p.physical_name(logical_id, props, "RepositoryName", lower=True)
    repo = p.client("ecr").create_repository(repositoryName=name)["repository"]
    return name, {"Arn": repo["repositoryArn"], "RepositoryUri": repo["repositoryUri"]}


# -- messaging and alarms -------------------------------------------------------

@handles("AWS::SNS::Topic")
def _topic(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("TopicName") or f"{p.stack_name}-{logical_id}"
    attributes = {"KmsMasterKeyId": props["KmsMasterKeyId"]} if "KmsMasterKeyId" in props else {}
    arn = p.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    for subscription in props.get("Subscription", []):
        p.client("sns").subscribe(TopicArn=arn, Protocol=subscription["Protocol"],
                                  Endpoint=subscription["Endpoint"])
    return arn, {"TopicArn": arn, "TopicName": name}


@handles("AWS::SNS::Subscription")
def _subscription(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    arn = p.client("sns").subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"],
                                    Endpoint=props["Endpoint"])["SubscriptionArn"]
    return arn, {}


@handles("AWS::SQS::Queue")
def _queue(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("QueueName") or f"{p.stack_name}-{logical_id}"
    attributes = {k: (json.dumps(v) if isinstance(v, dict) else str(v)) for k, v in props.items()
                  if k in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy",
                           "KmsMasterKeyId", "SqsManagedSseEnabled", "DelaySeconds")}
    url = p.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = p.arn("sqs", name)
    return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}


@handles("AWS::CloudWatch::Alarm")
def _alarm(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("AlarmName") or f"{p.stack_name}-{logical_id}"
    keys = ("AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions", "InsufficientDataActions",
            "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit",
            "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
            "TreatMissingData", "Metrics")
    args = {k: props[k] for k in keys if k in props}
    for number in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if number in args:
            args[number] = int(args[number])
    if "Threshold" in args:
        args["Threshold"] = float(args["Threshold"])
    p.client("cloudwatch").put_metric_alarm(AlarmName=name, **args)
    return name, {"Arn": p.arn("cloudwatch", f"alarm:{name}")}


@handles("AWS::CloudWatch::Dashboard")
def _dashboard(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("DashboardName") or f"{p.stack_name}-{logical_id}"
    body = props["DashboardBody"]
    p.client("cloudwatch").put_dashboard(DashboardName=name,
                                         DashboardBody=body if isinstance(body, str) else json.dumps(body))
    return name, {}


# -- compute: Lambda, EventBridge, Step Functions -------------------------------

@handles("AWS::Lambda::LayerVersion")
def _layer(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("LayerName") or f"{p.stack_name}-{logical_id}"
    layer = p.client("lambda").publish_layer_version(
        LayerName=name, Content={"ZipFile": _dummy_zip()},
        CompatibleRuntimes=props.get("CompatibleRuntimes", []))
    arn = layer["LayerVersionArn"]
    p.lambda_runtime_layers[arn] = p.artifacts.layer_dirs[_sam_source(logical_id, p.artifacts.layer_dirs)]
    return arn, {}


def _sam_source(logical_id: str, known: dict[str, Path]) -> str:
    """SAM adds a hash suffix to layer logical ids (CommonLayer -> CommonLayer1a2b3c)."""
    if logical_id in known:
        return logical_id
    for candidate in known:
        if logical_id.startswith(candidate):
            return candidate
    raise TemplateError(f"no local ContentUri folder for {logical_id}")


@handles("AWS::Lambda::Function")
def _function(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("FunctionName") or f"{p.stack_name}-{logical_id}"
    environment = props.get("Environment", {}).get("Variables", {})
    function = p.client("lambda").create_function(
        FunctionName=name, Runtime=props.get("Runtime", "python3.13"), Role=props["Role"],
        Handler=props["Handler"], Code={"ZipFile": _dummy_zip()},
        Timeout=int(props.get("Timeout", 3)), MemorySize=int(props.get("MemorySize", 128)),
        Environment={"Variables": {k: str(v) for k, v in environment.items()}},
    )
    code_dir = p.artifacts.code_dirs.get(logical_id)
    if code_dir is None:
        raise TemplateError(f"{logical_id} has no local CodeUri folder")
    p.lambda_runtime.register(FunctionSpec(
        logical_id=logical_id, name=name, arn=function["FunctionArn"], code_dir=code_dir,
        handler=props["Handler"], layer_dirs=[p.lambda_runtime_layers[arn] for arn in props.get("Layers", [])],
        environment={k: str(v) for k, v in environment.items()},
        timeout=int(props.get("Timeout", 3)), memory_size=int(props.get("MemorySize", 128)),
        async_config=AsyncConfig(dead_letter_arn=props.get("DeadLetterConfig", {}).get("TargetArn")),
    ))
    return name, {"Arn": function["FunctionArn"]}


@handles("AWS::Lambda::EventInvokeConfig")
def _event_invoke_config(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    """Async retries and the on-failure destination, applied by the twin's AsyncInvoker."""
    spec = p.lambda_runtime.find(str(props["FunctionName"]))
    on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    if on_failure and ":sqs:" not in on_failure:
        raise TemplateError(f"{logical_id}: the twin delivers on-failure destinations to SQS queues only")
    spec.async_config = replace(spec.async_config, on_failure_arn=on_failure,
                                maximum_retry_attempts=int(props.get("MaximumRetryAttempts", 2)))
    return f"{spec.name}:{props.get('Qualifier', '$LATEST')}", {}


@handles("AWS::Lambda::EventSourceMapping")
def _event_source_mapping(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    """Recorded in the twin's Lambda API; the twin's poller (event_sources.py) delivers from it."""
    args: dict[str, Any] = {"EventSourceArn": props["EventSourceArn"], "FunctionName": props["FunctionName"],
                            "Enabled": bool(props.get("Enabled", True))}
    for key in ("BatchSize", "MaximumBatchingWindowInSeconds"):
        if key in props:
            args[key] = int(props[key])
    for key in ("FunctionResponseTypes", "ScalingConfig", "FilterCriteria"):
        if key in props:
            args[key] = props[key]
    if "MaximumConcurrency" in args.get("ScalingConfig", {}):
        args["ScalingConfig"] = {"MaximumConcurrency": int(args["ScalingConfig"]["MaximumConcurrency"])}
    mapping = p.client("lambda").create_event_source_mapping(**args)
    return mapping["UUID"], {"Id": mapping["UUID"], "EventSourceMappingArn": mapping.get("EventSourceMappingArn")}


@handles("AWS::Events::Rule")
def _rule(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    events = p.client("events")
    name = props.get("Name") or f"{p.stack_name}-{logical_id}"[:64]
    args: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED")}
    if "EventPattern" in props:
        args["EventPattern"] = json.dumps(props["EventPattern"])
    if "ScheduleExpression" in props:
        args["ScheduleExpression"] = props["ScheduleExpression"]
    if "EventBusName" in props:
        args["EventBusName"] = props["EventBusName"]
    arn = events.put_rule(**args)["RuleArn"]
    targets = []
    for target in props.get("Targets", []):
        item = {k: target[k] for k in ("Id", "Arn", "Input", "InputPath", "InputTransformer", "RoleArn",
                                        "RetryPolicy", "DeadLetterConfig") if k in target}
        targets.append(item)
    if targets:
        events.put_targets(Rule=name, Targets=targets, **({"EventBusName": props["EventBusName"]}
                                                          if "EventBusName" in props else {}))
    return name, {"Arn": arn}


@handles("AWS::StepFunctions::StateMachine")
def _state_machine(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("StateMachineName") or f"{p.stack_name}-{logical_id}"
    if "DefinitionString" in props:
        definition = props["DefinitionString"]
    elif "Definition" in props:
        definition = json.dumps(props["Definition"])
    else:
        path = p.artifacts.definitions.get(logical_id)
        if path is None:
            raise TemplateError(f"{logical_id} has no local definition file")
        definition = path.read_text(encoding="utf-8")
    definition = substitute_definition(definition, props.get("DefinitionSubstitutions", {}), logical_id)
    args: dict[str, Any] = {"name": name, "definition": definition, "roleArn": props["RoleArn"],
                            "type": props.get("StateMachineType", "STANDARD")}
    if "LoggingConfiguration" in props:
        args["loggingConfiguration"] = _lower_keys(props["LoggingConfiguration"])
    if "TracingConfiguration" in props:
        args["tracingConfiguration"] = _lower_keys(props["TracingConfiguration"])
    arn = p.client("stepfunctions").create_state_machine(**args)["stateMachineArn"]
    return arn, {"Arn": arn, "Name": name}


_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def substitute_definition(definition: str, substitutions: dict[str, Any], logical_id: str) -> str:
    """Apply DefinitionSubstitutions as CloudFormation does; a missing key is an error."""
    missing = sorted(set(_SUBSTITUTION.findall(definition)) - set(substitutions))
    if missing:
        raise TemplateError(f"{logical_id}: no DefinitionSubstitutions for {missing}")
    return _SUBSTITUTION.sub(lambda m: str(substitutions[m.group(1)]), definition)


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


# -- networking and Batch -------------------------------------------------------

@handles("AWS::EC2::SecurityGroup")
def _security_group(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("GroupName") or f"{p.stack_name}-{logical_id}"
    group_id = p.client("ec2").create_security_group(
        GroupName=name, Description=props.get("GroupDescription", logical_id), VpcId=props["VpcId"])["GroupId"]
    return group_id, {"GroupId": group_id, "VpcId": props["VpcId"]}


@handles("AWS::EC2::LaunchTemplate")
def _launch_template(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("LaunchTemplateName") or f"{p.stack_name}-{logical_id}"
    template = p.client("ec2").create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData=props.get("LaunchTemplateData", {}))["LaunchTemplate"]
    return template["LaunchTemplateId"], {"LatestVersionNumber": str(template["LatestVersionNumber"]),
                                          "DefaultVersionNumber": str(template["DefaultVersionNumber"])}


@handles("AWS::Batch::ComputeEnvironment")
def _compute_environment(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("ComputeEnvironmentName") or f"{p.stack_name}-{logical_id}"
    service_role = props.get("ServiceRole") or _batch_service_linked_role(p)
    args: dict[str, Any] = {"computeEnvironmentName": name, "type": props["Type"],
                            "state": props.get("State", "ENABLED"), "serviceRole": service_role}
    if "ComputeResources" in props:
        resources = _lower_keys(props["ComputeResources"])
        resources["minvCpus"] = 0  # the twin starts no instances; jobs run as local processes
        for key in ("maxvCpus", "desiredvCpus", "bidPercentage"):
            if key in resources:
                resources[key] = int(resources[key])
        resources.pop("desiredvCpus", None)
        args["computeResources"] = resources
    arn = p.client("batch").create_compute_environment(**args)["computeEnvironmentArn"]
    return arn, {"ComputeEnvironmentArn": arn}


def _batch_service_linked_role(p: Provisioner) -> str:
    """AWS uses Batch's service-linked role when ServiceRole is omitted; moto insists on one."""
    iam = p.client("iam")
    name = "AWSServiceRoleForBatch"
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "batch.amazonaws.com"}}]}
        return iam.create_role(RoleName=name, Path="/aws-service-role/batch.amazonaws.com/",
                               AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


@handles("AWS::Batch::JobQueue")
def _job_queue(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("JobQueueName") or f"{p.stack_name}-{logical_id}"
    order = [{"order": int(item["Order"]), "computeEnvironment": item["ComputeEnvironment"]}
             for item in props["ComputeEnvironmentOrder"]]
    arn = p.client("batch").create_job_queue(
        jobQueueName=name, state=props.get("State", "ENABLED"), priority=int(props.get("Priority", 1)),
        computeEnvironmentOrder=order)["jobQueueArn"]
    actions = _lower_keys(props.get("JobStateTimeLimitActions", []))
    environments = [item["computeEnvironment"].split("/")[-1] for item in sorted(order, key=lambda i: i["order"])]
    p.batch_runtime.queues[name] = QueueSpec(logical_id, name, environments, actions)
    return arn, {"JobQueueArn": arn}


@handles("AWS::Batch::JobDefinition")
def _job_definition(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("JobDefinitionName") or f"{p.stack_name}-{logical_id}"
    context = resource.get("Metadata", {}).get("DockerContext")
    if not context:
        raise TemplateError(f"{logical_id} needs Metadata.DockerContext: the twin runs the job's code from there")
    args: dict[str, Any] = {"jobDefinitionName": name, "type": props["Type"]}
    for cfn_key, api_key in (("ContainerProperties", "containerProperties"),
                             ("NodeProperties", "nodeProperties"), ("RetryStrategy", "retryStrategy"),
                             ("Timeout", "timeout"), ("Parameters", "parameters"),
                             ("PlatformCapabilities", "platformCapabilities")):
        if cfn_key in props:
            args[api_key] = props[cfn_key] if cfn_key == "Parameters" else _lower_keys(props[cfn_key])
    _normalise_job_definition_numbers(args)
    arn = p.client("batch").register_job_definition(**args)["jobDefinitionArn"]
    p.batch_runtime.definition_dirs[name] = (p.root / context).resolve()
    return arn, {"JobDefinitionArn": arn}


def _normalise_job_definition_numbers(args: dict[str, Any]) -> None:
    """CloudFormation accepts numbers as strings; the Batch API wants integers."""
    def fix(container: dict[str, Any]) -> None:
        for item in container.get("resourceRequirements", []):
            item["value"] = str(item["value"])
        for key in ("vcpus", "memory"):
            if key in container:
                container[key] = int(container[key])
        for item in container.get("environment", []):
            item["value"] = str(item["value"])
        container.pop("ephemeralStorage", None)  # Fargate-only in the API; EC2 jobs use volumes

    if "containerProperties" in args:
        fix(args["containerProperties"])
    if "nodeProperties" in args:
        node = args["nodeProperties"]
        node["numNodes"] = int(node["numNodes"])
        node["mainNode"] = int(node["mainNode"])
        for node_range in node.get("nodeRangeProperties", []):
            fix(node_range.get("container", {}))
    if "retryStrategy" in args and "attempts" in args["retryStrategy"]:
        args["retryStrategy"]["attempts"] = int(args["retryStrategy"]["attempts"])
    if "timeout" in args:
        args["timeout"]["attemptDurationSeconds"] = int(args["timeout"]["attemptDurationSeconds"])
