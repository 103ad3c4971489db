"""Security controls of the template (docs/security.md): Neptune scoping and audit, instance
metadata, network egress, and the IAM map of the documentation against the expanded template."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from threadline.twin.template import load_yaml, translate

REPO_ROOT = Path(__file__).resolve().parents[2]
SECURITY_DOC = REPO_ROOT / "docs" / "security.md"
COMPUTE_ENVIRONMENTS = ["OnDemandComputeEnvironment", "SpotComputeEnvironment", "GpuComputeEnvironment",
                        "GpuFallbackComputeEnvironment"]
JOB_DEFINITIONS = ["PreprocessJobDefinition", "AnalysisJobDefinition", "PostprocessJobDefinition"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement, those of a conditional policy (`Fn::If` [condition, policy, AWS::NoValue]) included."""
    policies = [p["Fn::If"][1] if "Fn::If" in p else p for p in resource["Properties"]["Policies"]]
    return [s for policy in policies for s in policy["Statement"]]


# ---------------------------------------------------------------- Neptune


def test_an_existing_cluster_needs_its_resource_id(template: dict[str, Any]) -> None:
    rule = template["Rules"]["ExistingNeptuneNeedsItsResourceId"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExistingNeptuneEndpoint"}, ""]}]}
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExistingNeptuneClusterResourceId"}, ""]}]}
    assert assertion["AssertDescription"]


@pytest.mark.parametrize("function", ["RecordLineageFunction", "PlanResumeFunction"])
def test_neptune_grants_name_one_cluster(resources: dict[str, Any], function: str) -> None:
    (statement,) = [s for s in _statements(resources[function]) if "neptune-db:connect" in _as_list(s["Action"])]
    arn, values = statement["Resource"]["Fn::Sub"]
    assert arn.endswith(":${ClusterResourceId}/*")
    assert values["ClusterResourceId"] == {"Fn::If": [
        "CreateNeptune",
        {"Fn::GetAtt": ["NeptuneCluster", "ClusterResourceId"]},
        {"Ref": "ExistingNeptuneClusterResourceId"},
    ]}


def test_neptune_audit_log_is_on_exported_and_kept(resources: dict[str, Any]) -> None:
    group = resources["NeptuneClusterParameterGroup"]
    assert group["Condition"] == "CreateNeptune"
    assert str(group["Properties"]["Parameters"]["neptune_enable_audit_log"]) == "1"
    assert group["Properties"]["Family"] == "neptune1.4"
    cluster = resources["NeptuneCluster"]["Properties"]
    assert cluster["DBClusterParameterGroupName"] == {"Ref": "NeptuneClusterParameterGroup"}
    assert cluster["EnableCloudwatchLogsExports"] == ["audit"]
    assert cluster["EngineVersion"] == {"Ref": "NeptuneEngineVersion"}
    logs = resources["NeptuneAuditLogGroup"]
    assert logs["Condition"] == "CreateNeptune"
    assert logs["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/neptune/cluster/${NeptuneCluster}/audit"}
    assert all(int(days) > 0 for days in logs["Properties"]["RetentionInDays"]["Fn::If"][1:])
    # The group exists before anything can write audit events into it.
    assert resources["NeptuneInstance"]["DependsOn"] == "NeptuneAuditLogGroup"


def test_engine_version_matches_the_parameter_group_family(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["NeptuneEngineVersion"]
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])
    assert parameter["Default"].startswith("1.4.")


# ---------------------------------------------------------------- network


def test_lambda_egress_to_neptune_names_neptunes_group(resources: dict[str, Any]) -> None:
    inline = resources["LambdaSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert [(rule["FromPort"], rule["ToPort"]) for rule in inline] == [(443, 443)]
    own = resources["LambdaToNeptuneEgress"]
    assert own["Condition"] == "CreateNeptune"
    assert own["Properties"]["GroupId"] == {"Fn::GetAtt": ["LambdaSecurityGroup", "GroupId"]}
    assert own["Properties"]["DestinationSecurityGroupId"] == {"Fn::GetAtt": ["NeptuneSecurityGroup", "GroupId"]}
    assert own["Properties"]["FromPort"] == own["Properties"]["ToPort"] == {"Ref": "NeptunePort"}
    assert "CidrIp" not in own["Properties"]
    existing = resources["LambdaToExistingNeptuneEgress"]
    assert existing["Condition"] == "UseExistingNeptune"
    assert existing["Properties"]["FromPort"] == existing["Properties"]["ToPort"] == {"Ref": "NeptunePort"}


def test_use_existing_neptune_is_the_opposite_of_create(template: dict[str, Any]) -> None:
    assert template["Conditions"]["UseExistingNeptune"] == {"Fn::Not": [{"Condition": "CreateNeptune"}]}


# ---------------------------------------------------------------- instance metadata


def _user_data(resources: dict[str, Any]) -> str:
    user_data = resources["BatchLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    if isinstance(user_data, dict):  # Fn::Base64 of the text, should the template use it again
        return user_data["Fn::Base64"]
    return base64.b64decode(user_data, validate=True).decode("ascii")


def test_launch_template_requires_imdsv2_with_one_hop(resources: dict[str, Any]) -> None:
    options = resources["BatchLaunchTemplate"]["Properties"]["LaunchTemplateData"]["MetadataOptions"]
    assert options == {"HttpEndpoint": "enabled", "HttpTokens": "required", "HttpPutResponseHopLimit": 1}


def test_user_data_blocks_metadata_for_awsvpc_and_host_network_jobs(resources: dict[str, Any]) -> None:
    text = _user_data(resources)
    assert text.startswith("MIME-Version: 1.0\nContent-Type: multipart/mixed;"), "Batch merges MIME user data only"
    assert 'echo "ECS_AWSVPC_BLOCK_IMDS=true" >> /etc/ecs/ecs.config' in text
    assert ("iptables --insert OUTPUT 1 --destination 169.254.169.254/32 --match owner ! --uid-owner 0 "
            "--jump REJECT") in text


def test_the_twin_base64_encodes_user_data_as_cloudformation_does() -> None:
    """`Fn::Base64` in the twin gives what EC2 takes (moto refuses text that is not base64)."""
    import base64

    from threadline.twin.template import Resolver

    resolver = Resolver(parameters={"Region": "us-east-1"}, pseudo={}, conditions={})
    encoded = resolver.resolve({"Fn::Base64": {"Fn::Sub": "#!/bin/bash\necho ${Region}\n"}})
    assert base64.b64decode(encoded) == b"#!/bin/bash\necho us-east-1\n"


def test_job_images_run_as_a_non_root_user() -> None:
    """The metadata firewall rule spares root only: the job images must not run as root."""
    for dockerfile in sorted((REPO_ROOT / "jobs").glob("*/Dockerfile")):
        users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(encoding="utf-8"), re.M)
        assert users and users[-1] not in ("root", "0"), f"{dockerfile.relative_to(REPO_ROOT)} runs as root"


@pytest.mark.parametrize("name", COMPUTE_ENVIRONMENTS)
def test_every_compute_environment_uses_the_launch_template(resources: dict[str, Any], name: str) -> None:
    template = resources[name]["Properties"]["ComputeResources"]["LaunchTemplate"]
    assert template == {"LaunchTemplateId": {"Ref": "BatchLaunchTemplate"},
                        "Version": {"Fn::GetAtt": ["BatchLaunchTemplate", "LatestVersionNumber"]}}


@pytest.mark.parametrize("name", JOB_DEFINITIONS)
def test_jobs_get_their_region_without_the_metadata_service(resources: dict[str, Any], name: str) -> None:
    props = resources[name]["Properties"]
    containers = [props["ContainerProperties"]] if "ContainerProperties" in props else []
    for node in props.get("NodeProperties", {}).get("NodeRangeProperties", []):
        tasks = (node["EcsProperties"]["TaskProperties"] if "EcsProperties" in node
                 else [{"Containers": [node["Container"]]}])
        containers.extend(container for task in tasks for container in task["Containers"])
    for container in containers:
        assert {"Name": "AWS_DEFAULT_REGION", "Value": {"Ref": "AWS::Region"}} in container["Environment"]


# ---------------------------------------------------------------- the IAM map of docs/security.md


@pytest.fixture(scope="module")
def expanded_roles() -> dict[str, dict[str, Any]]:
    cfn, _ = translate(load_yaml(REPO_ROOT / "template.yaml"), REPO_ROOT)
    return {name: res for name, res in cfn["Resources"].items() if res["Type"] == "AWS::IAM::Role"}


def _template_grants(role: dict[str, Any]) -> set[str]:
    props = role["Properties"]
    # A conditional policy (`Fn::If` [condition, policy, AWS::NoValue]) counts with its grants.
    policies = [policy["Fn::If"][1] if "Fn::If" in policy else policy for policy in props.get("Policies", [])]
    grants = {action for policy in policies
              for statement in policy["PolicyDocument"]["Statement"] for action in _as_list(statement["Action"])}
    for arn in props.get("ManagedPolicyArns", []):
        text = arn["Fn::Sub"] if isinstance(arn, dict) else arn
        grants.add("managed " + text.rsplit("/", 1)[-1])
    return grants


def _documented_grants() -> dict[str, set[str]]:
    text = SECURITY_DOC.read_text(encoding="utf-8")
    table = text.split("<!-- iam-map:start -->", 1)[1].split("<!-- iam-map:end -->", 1)[0]
    grants: dict[str, set[str]] = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        role = cells[0].strip("`")
        managed = re.fullmatch(r"managed `([^`]+)`", cells[1])
        actions = {"managed " + managed.group(1)} if managed else set(re.findall(r"`([^`]+)`", cells[1]))
        assert actions and cells[2] and cells[3], f"incomplete row: {line}"
        grants.setdefault(role, set()).update(actions)
    return grants


def test_the_iam_map_lists_every_role(expanded_roles: dict[str, dict[str, Any]]) -> None:
    documented = _documented_grants()
    assert sorted(documented) == sorted(expanded_roles), "docs/security.md, IAM map: the roles differ"


def test_the_iam_map_lists_each_roles_grants(expanded_roles: dict[str, dict[str, Any]]) -> None:
    documented = _documented_grants()
    wrong = {role: {"template only": sorted(_template_grants(res) - documented.get(role, set())),
                    "docs only": sorted(documented.get(role, set()) - _template_grants(res))}
             for role, res in expanded_roles.items()
             if _template_grants(res) != documented.get(role, set())}
    assert not wrong, f"docs/security.md, IAM map: update the rows of {wrong}"
