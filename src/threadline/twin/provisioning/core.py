"""The Provisioner: creation order, intrinsic resolution and the registry of per-type handlers.

Each service module registers its handlers with `handles`; a resource type that none
registered is reported as cloud-only, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..batch_runtime import LocalBatchRuntime
from ..lambda_runtime import LocalLambdaRuntime
from ..template import LocalArtifacts, Resolver, TemplateError, creation_order

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
    warm_ups: list[Callable[[], None]] = field(default_factory=list)  # run on a thread once the twin is ready

    def warm_up(self) -> None:
        """Work left out of the start that the first run would otherwise wait for (see definitions.py)."""
        for work in self.warm_ups:
            work()


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
    "AWS::CodeBuild::Project": "the twin runs the jobs' code from jobs/ and builds no images",
}


class Provisioner:
    """Provisions through `client(service)`: the twin's own clients, each made once per process."""

    def __init__(self, client: Callable[[str], Any], region: str, root: Path, stack_name: str,
                 lambda_runtime: LocalLambdaRuntime, batch_runtime: LocalBatchRuntime,
                 neptune_host: str, neptune_port: int) -> None:
        self.client = client
        self.root = root
        self.stack_name = stack_name
        self.region = region
        self.lambda_runtime = lambda_runtime
        self.batch_runtime = batch_runtime
        self.neptune_host = neptune_host
        self.neptune_port = neptune_port
        self.artifacts = LocalArtifacts()
        self.resolver: Resolver | None = None
        self.lambda_runtime_layers: dict[str, Path] = {}  # layer version ARN -> local folder
        self.notes: list[str] = []  # what the twin does differently, said out loud
        self.warm_ups: list[Callable[[], None]] = []

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
        result.warm_ups = self.warm_ups
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


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value
