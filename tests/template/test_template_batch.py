"""Batch: compute environments, queues, job definitions (command contract), job roles, images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# The command-line contract of docs/design.md ("Batch job command-line contract").
COMMANDS = {
    "PreprocessJobDefinition": [
        "python", "-m", "preprocess",
        "--run-id", "Ref::run_id",
        "--input", "Ref::input_uri",
        "--output-prefix", "Ref::output_prefix",
        "--quarantine-prefix", "Ref::quarantine_prefix",
        "--max-reject-share", "Ref::max_reject_share",
    ],
    "AnalysisJobDefinition": [
        "python", "-m", "analysis",
        "--run-id", "Ref::run_id",
        "--input", "Ref::clean_uri",
        "--output-prefix", "Ref::partials_prefix",
        "--scenarios", "Ref::scenarios",
        "--horizon-days", "Ref::horizon_days",
        "--seed", "Ref::seed",
    ],
    "PostprocessJobDefinition": [
        "python", "-m", "postprocess",
        "--run-id", "Ref::run_id",
        "--partials-prefix", "Ref::partials_prefix",
        "--num-nodes", "Ref::num_nodes",
        "--validation-uri", "Ref::validation_uri",
        "--report-prefix", "Ref::report_prefix",
    ],
}
JOBS = {
    "PreprocessJobDefinition": ("preprocess", "PreprocessRepository", "PreprocessJobRole"),
    "AnalysisJobDefinition": ("analysis", "AnalysisRepository", "AnalysisJobRole"),
    "PostprocessJobDefinition": ("postprocess", "PostprocessRepository", "PostprocessJobRole"),
}
GPU_QUEUES = ["GpuJobQueue", "GpuFallbackJobQueue"]


def _node(job_definition: dict[str, Any]) -> dict[str, Any]:
    """What every node runs: the one node range of a multi-node job, else the job's own properties."""
    props = job_definition["Properties"]
    if props["Type"] == "multinode":
        ranges = props["NodeProperties"]["NodeRangeProperties"]
        assert len(ranges) == 1, "one node range covers every node"
        return ranges[0]
    return props


def _task(job_definition: dict[str, Any]) -> dict[str, Any] | None:
    """The multi-container task (`EcsProperties`) of a job definition, if it has one."""
    ecs = _node(job_definition).get("EcsProperties")
    if ecs is None:
        return None
    assert len(ecs["TaskProperties"]) == 1, "Batch runs one task per node"
    return ecs["TaskProperties"][0]


def _container(job_definition: dict[str, Any]) -> dict[str, Any]:
    """The job's main container: its only one, or the essential one of its task."""
    task = _task(job_definition)
    if task is not None:
        (main,) = [c for c in task["Containers"] if c.get("Essential", True)]
        return main
    node = _node(job_definition)
    return node.get("Container") or node["ContainerProperties"]


def _role_statements(resources: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [s for policy in resources[role]["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def _grants(statements: list[dict[str, Any]], action: str) -> list[Any]:
    """Resources of the Allow statements that name `action`."""
    found: list[Any] = []
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Effect"] == "Allow" and action in actions:
            resource = statement["Resource"]
            found.extend(resource if isinstance(resource, list) else [resource])
    return found


def test_job_definitions_are_exactly_three(resources: dict[str, Any]) -> None:
    found = sorted(n for n, r in resources.items() if r["Type"] == "AWS::Batch::JobDefinition")
    assert found == sorted(JOBS)


@pytest.mark.parametrize("name", sorted(JOBS))
def test_job_definition_retries_only_spot_reclamation(resources: dict[str, Any], name: str) -> None:
    strategy = resources[name]["Properties"]["RetryStrategy"]
    assert strategy["Attempts"] == 3
    assert strategy["EvaluateOnExit"] == [
        {"OnStatusReason": "Host EC2*", "Action": "RETRY"},
        {"OnReason": "*", "Action": "EXIT"},
    ]


@pytest.mark.parametrize("name", sorted(JOBS))
def test_job_definition_has_a_timeout(template: dict[str, Any], name: str) -> None:
    """Every attempt has a time limit: a parameter that cannot be set below a minute."""
    limit = template["Resources"][name]["Properties"]["Timeout"]["AttemptDurationSeconds"]
    parameter = template["Parameters"][limit["Ref"]]
    assert parameter["Type"] == "Number"
    assert int(parameter["MinValue"]) >= 60 and int(parameter["Default"]) >= 60


@pytest.mark.parametrize("queue", ["SpotJobQueue", "OnDemandJobQueue", "GpuJobQueue", "GpuFallbackJobQueue"])
def test_every_queue_cancels_jobs_stuck_runnable(template: dict[str, Any], queue: str) -> None:
    """A job stuck RUNNABLE (no capacity, or a job no compute environment can run) never holds a run forever."""
    actions = template["Resources"][queue]["Properties"]["JobStateTimeLimitActions"]
    reasons = {action["Reason"] for action in actions}
    assert {"CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
            "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"} <= reasons
    for action in actions:
        assert (action["State"], action["Action"]) == ("RUNNABLE", "CANCEL")
        assert action["MaxTimeSeconds"] == {"Ref": "RunnableTimeoutSeconds"}
    assert int(template["Parameters"]["RunnableTimeoutSeconds"]["MinValue"]) >= 600  # Batch's own minimum


@pytest.mark.parametrize("name", sorted(JOBS))
def test_job_definition_names_its_docker_context(resources: dict[str, Any], name: str) -> None:
    job = JOBS[name][0]
    metadata = resources[name].get("Metadata", {})
    assert metadata.get("DockerContext") == "jobs"
    assert metadata.get("Dockerfile") == f"{job}/Dockerfile"
    context = REPO_ROOT / metadata["DockerContext"]
    assert context.is_dir(), f"DockerContext {metadata['DockerContext']!r} is not a folder of the repository"
    assert (context / metadata["Dockerfile"]).is_file(), f"{metadata['Dockerfile']} is missing under jobs/"


@pytest.mark.parametrize("name", sorted(JOBS))
def test_job_definition_name_suffix(resources: dict[str, Any], name: str) -> None:
    job = JOBS[name][0]
    assert resources[name]["Properties"]["JobDefinitionName"] == {"Fn::Sub": f"${{AWS::StackName}}-{job}"}


@pytest.mark.parametrize("name", sorted(JOBS))
def test_job_command_is_the_contract(resources: dict[str, Any], name: str) -> None:
    assert _container(resources[name])["Command"] == COMMANDS[name]


@pytest.mark.parametrize("name", sorted(JOBS))
def test_job_container_wiring(resources: dict[str, Any], name: str) -> None:
    job, repository, role = JOBS[name]
    container = _container(resources[name])
    registry = "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com"
    digest = repository.removesuffix("Repository") + "ImageDigest"
    assert container["Image"] == {"Fn::If": [
        f"Has{digest}",
        {"Fn::Sub": f"{registry}/${{{repository}}}@${{{digest}}}"},
        {"Fn::Sub": f"{registry}/${{{repository}}}:${{ImageTag}}"},
    ]}
    task = _task(resources[name])
    roles = task if task is not None else container  # a task's containers share its roles and volumes
    assert roles.get("TaskRoleArn", roles.get("JobRoleArn")) == {"Fn::GetAtt": [role, "Arn"]}
    assert roles["ExecutionRoleArn"] == {"Fn::GetAtt": ["BatchExecutionRole", "Arn"]}
    logs = container["LogConfiguration"]
    assert logs["LogDriver"] == "awslogs"
    assert logs["Options"]["awslogs-group"] == {"Ref": "BatchLogGroup"}
    assert logs["Options"]["awslogs-stream-prefix"] == job
    mounts = {m["SourceVolume"] for m in container.get("MountPoints", [])}
    assert mounts and mounts <= {v["Name"] for v in roles.get("Volumes", [])}


def test_postprocess_gets_the_run_table(resources: dict[str, Any]) -> None:
    environment = _container(resources["PostprocessJobDefinition"])["Environment"]
    assert {"Name": "RUN_TABLE", "Value": {"Ref": "RunTable"}} in environment


def test_analysis_is_multinode_on_gpus(resources: dict[str, Any]) -> None:
    props = resources["AnalysisJobDefinition"]["Properties"]
    assert props["Type"] == "multinode"
    nodes = props["NodeProperties"]
    assert nodes["NumNodes"] == {"Ref": "AnalysisNodes"}
    assert nodes["MainNode"] == 0
    assert nodes["NodeRangeProperties"][0]["TargetNodes"] == "0:"
    requirements = _container(resources["AnalysisJobDefinition"])["ResourceRequirements"]
    assert {"Type": "GPU", "Value": {"Ref": "AnalysisGpusPerNode"}} in requirements


def test_each_analysis_node_runs_the_analysis_with_a_progress_sidecar(resources: dict[str, Any]) -> None:
    """Each node is a task of two containers that share a folder; the sidecar never fails the job."""
    task = _task(resources["AnalysisJobDefinition"])
    assert task is not None
    assert {v["Name"] for v in task["Volumes"]} == {"scratch", "shared"}
    main, sidecar = task["Containers"]
    shared = {"Name": "THREADLINE_SHARED_DIR", "Value": "/threadline/shared"}
    assert (main["Name"], main["Essential"]) == ("analysis", True)
    assert shared in main["Environment"]
    assert {(m["SourceVolume"], m["ContainerPath"]) for m in main["MountPoints"]} == {
        ("scratch", "/tmp"), ("shared", "/threadline/shared")}
    assert (sidecar["Name"], sidecar["Essential"]) == ("progress", False)
    assert sidecar["DependsOn"] == [{"ContainerName": "analysis", "Condition": "START"}]
    assert sidecar["Image"] == main["Image"]  # one image, pinned by one digest
    assert sidecar["Command"] == ["python", "-m", "analysis.sidecar", "--run-id", "Ref::run_id",
                                  "--output-prefix", "Ref::partials_prefix"]
    assert {r["Type"]: r["Value"] for r in sidecar["ResourceRequirements"]} == {"VCPU": "1", "MEMORY": "512"}
    assert shared in sidecar["Environment"]
    assert [(m["SourceVolume"], m["ContainerPath"]) for m in sidecar["MountPoints"]] == [
        ("shared", "/threadline/shared")]
    assert sidecar["LogConfiguration"]["Options"]["awslogs-stream-prefix"] == "analysis-progress"


def test_job_roles_are_least_privilege(resources: dict[str, Any]) -> None:
    def under(bucket: str, suffix: str) -> dict[str, str]:
        return {"Fn::Sub": f"${{{bucket}.Arn}}/{suffix}"}

    # Each job reads the step before it and writes its own step's prefix only (of any run: a
    # resumed run reads an earlier run's outputs, and IAM does not see the run id).
    pre = _role_statements(resources, "PreprocessJobRole")
    assert _grants(pre, "s3:GetObject") == [under("IncomingBucket", "${IncomingPrefix}*")]
    assert sorted(map(str, _grants(pre, "s3:PutObject"))) == sorted(
        map(str, [under("IntermediateBucket", "runs/*/preprocess/*"), under("QuarantineBucket", "*"),
                  under("IntermediateBucket", "runs/*/usage/preprocess/*")])
    )
    assert not _grants(pre, "dynamodb:UpdateItem")

    analysis = _role_statements(resources, "AnalysisJobRole")
    # A retried node continues from its own step's checkpoint, shipped by the progress sidecar.
    assert sorted(map(str, _grants(analysis, "s3:GetObject"))) == sorted(map(str, [
        under("IntermediateBucket", "runs/*/preprocess/clean.parquet"),
        under("IntermediateBucket", "runs/*/analysis/checkpoints/*"),
    ]))
    assert _grants(analysis, "s3:PutObject") == [under("IntermediateBucket", "runs/*/analysis/*"),
                                                 under("IntermediateBucket", "runs/*/usage/analysis/*")]
    assert not _grants(analysis, "s3:ListBucket")

    post = _role_statements(resources, "PostprocessJobRole")
    assert sorted(map(str, _grants(post, "s3:GetObject"))) == sorted(map(str, [
        under("IntermediateBucket", "runs/*/analysis/*"),
        under("IntermediateBucket", "runs/*/preprocess/validation.json"),
    ]))
    (listing,) = [s for s in post if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "runs/*/analysis/*"}}
    assert _grants(post, "s3:PutObject") == [under("ResultsBucket", "runs/*"),
                                             under("IntermediateBucket", "runs/*/usage/postprocess/*")]
    assert _grants(post, "dynamodb:UpdateItem") == [{"Fn::GetAtt": ["RunTable", "Arn"]}]


def test_no_job_can_overwrite_another_steps_outputs(resources: dict[str, Any]) -> None:
    """What a job may write never covers what another step wrote and a later one trusts."""
    def writes(role: str) -> list[str]:
        return [target["Fn::Sub"] for target in _grants(_role_statements(resources, role), "s3:PutObject")]

    intermediate = "${IntermediateBucket.Arn}/"
    usage = intermediate + "runs/*/usage/"  # each step's usage records, in a folder of its own
    for role, step in (("PreprocessJobRole", "preprocess"), ("AnalysisJobRole", "analysis"),
                       ("PostprocessJobRole", "postprocess")):
        assert [w for w in writes(role) if w.startswith(usage)] == [f"{usage}{step}/*"]
    preprocess_writes = [w for w in writes("PreprocessJobRole")
                         if w.startswith(intermediate) and not w.startswith(usage)]
    assert preprocess_writes == [intermediate + "runs/*/preprocess/*"]
    assert [w for w in writes("AnalysisJobRole") if not w.startswith(usage)] == [intermediate + "runs/*/analysis/*"]
    assert not any(w.startswith(intermediate) and not w.startswith(usage) for w in writes("PostprocessJobRole"))


def test_spot_queue_falls_back_to_on_demand(resources: dict[str, Any]) -> None:
    order = resources["SpotJobQueue"]["Properties"]["ComputeEnvironmentOrder"]
    ordered = [entry["ComputeEnvironment"] for entry in sorted(order, key=lambda e: e["Order"])]
    assert ordered == [{"Ref": "SpotComputeEnvironment"}, {"Ref": "OnDemandComputeEnvironment"}]
    on_demand = resources["OnDemandJobQueue"]["Properties"]["ComputeEnvironmentOrder"]
    assert [e["ComputeEnvironment"] for e in on_demand] == [{"Ref": "OnDemandComputeEnvironment"}]


def test_compute_environments(resources: dict[str, Any]) -> None:
    def compute(name: str) -> dict[str, Any]:
        return resources[name]["Properties"]["ComputeResources"]

    spot = compute("SpotComputeEnvironment")
    assert spot["Type"] == "SPOT"
    assert spot["AllocationStrategy"] == "SPOT_CAPACITY_OPTIMIZED"
    assert len(spot["InstanceTypes"]) >= 3
    assert compute("OnDemandComputeEnvironment")["Type"] == "EC2"
    gpu, fallback = compute("GpuComputeEnvironment"), compute("GpuFallbackComputeEnvironment")
    assert gpu["Type"] == fallback["Type"] == "EC2", "multi-node jobs cannot run on Spot"
    # GPU families the AL2023 NVIDIA image supports (it does not run p3 or g3).
    gpu_families = ("g4dn", "g5", "g6", "g6e", "p4d", "p5")
    for types in (gpu["InstanceTypes"], fallback["InstanceTypes"]):
        assert types and all(t.split(".")[0] in gpu_families for t in types)
    assert not set(gpu["InstanceTypes"]) & set(fallback["InstanceTypes"]), "the fallback needs other GPU types"
    for name in ("SpotComputeEnvironment", "OnDemandComputeEnvironment", "GpuComputeEnvironment",
                 "GpuFallbackComputeEnvironment"):
        res = compute(name)
        assert res["Subnets"] == {"Ref": "PrivateSubnetIds"}
        assert res["SecurityGroupIds"] == [{"Ref": "BatchSecurityGroup"}]
        assert res["InstanceRole"] == {"Fn::GetAtt": ["BatchInstanceProfile", "Arn"]}
        # Batch stopped creating compute environments on its Amazon Linux 2 images (June 2026).
        expected_image = "ECS_AL2023_NVIDIA" if name.startswith("Gpu") else "ECS_AL2023"
        assert res["Ec2Configuration"] == [{"ImageType": expected_image}], name


def test_batch_security_group_is_egress_only(resources: dict[str, Any]) -> None:
    props = resources["BatchSecurityGroup"]["Properties"]
    assert not props.get("SecurityGroupIngress")
    assert props["SecurityGroupEgress"]
    assert not [r for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]


@pytest.mark.parametrize("repository", ["PreprocessRepository", "AnalysisRepository", "PostprocessRepository"])
def test_repository_scans_and_encrypts(resources: dict[str, Any], repository: str) -> None:
    props = resources[repository]["Properties"]
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert props["EncryptionConfiguration"]["EncryptionType"] in ("AES256", "KMS")


@pytest.mark.parametrize("queue", ["SpotJobQueue", "OnDemandJobQueue", "GpuJobQueue", "GpuFallbackJobQueue"])
def test_queue_name_carries_the_logical_id(resources: dict[str, Any], queue: str) -> None:
    """Lineage derives the capacity kind from the queue name found in job descriptions."""
    assert resources[queue]["Properties"]["JobQueueName"] == {"Fn::Sub": f"${{AWS::StackName}}-{queue}"}
