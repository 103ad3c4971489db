"""The deploy's sequence against moto's CloudFormation, ECR, S3 and CodeBuild.

First deploy, a redeploy with no change, one job folder changed, the shared code
changed, CodeBuild as the builder, and the dry run. Fake: only the processes
(container engine, SAM CLI) and CodeBuild's build container (`deploy_fakes.py`).
What moto cannot take is the whole template: `sam deploy` is a recorded command
whose stand-in updates the stack with the bootstrap resources plus the incoming bucket.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from deploy_fakes import FakeCodeBuildWorker, FakeEngine, FakeSam

from threadline.deploy.deployer import Deployer, Deployment
from threadline.deploy.engine import LocalEngine
from threadline.deploy.images import JOB_IMAGES
from threadline.deploy.journal import Journal
from threadline.deploy.sam import SamCli
from threadline.deploy.samconfig import SamEnvironment

# moto's CloudFormation creates no CodeBuild project or bucket policy (the CodeBuild test creates the
# project through the API; nothing reads the policy here).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse .* not supported by moto:UserWarning")
STACK = "threadline-dev"
ALL_IMAGES = sorted(image.name for image in JOB_IMAGES)


class Run:
    """One `threadline deploy --env dev` with fakes at the process boundary, and what it did."""

    def __init__(self, project: Path, session: Any, builder: str = "local", dry_run: bool = False) -> None:
        self.engine = FakeEngine()
        self.sam = FakeSam()
        self.lines: list[str] = []
        self.journal = Journal(dry_run=dry_run, out=self.lines.append)
        deployer = Deployer(
            root=project, environment=SamEnvironment.load(project / "samconfig.toml", "dev"), journal=self.journal,
            session=session, builder="local" if builder == "local" else "codebuild",
            sam=SamCli(project, self.journal, runner=self.sam, executable="sam"),
            engine=LocalEngine("docker", self.journal, runner=self.engine) if builder == "local" else None,
            sleep=lambda seconds: None)
        self.result: Deployment = deployer.run()


def _ecr_digests() -> dict[str, str]:
    """Every pushed image's digest by repository:tag, as ECR holds them."""
    ecr = boto3.client("ecr")
    found = {}
    for repository in ecr.describe_repositories()["repositories"]:
        for image in ecr.describe_images(repositoryName=repository["repositoryName"])["imageDetails"]:
            for tag in image.get("imageTags", []):
                found[f"{repository['repositoryName']}:{tag}"] = image["imageDigest"]
    return found


def _output(key: str) -> str:
    outputs = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
    return next(str(item["OutputValue"]) for item in outputs if item["OutputKey"] == key)


def _pinned(run: Run) -> dict[str, str]:
    overrides = run.sam.overrides()
    return {image.digest_parameter: overrides[image.digest_parameter] for image in JOB_IMAGES if image.digest_parameter}


def test_first_deploy_creates_the_stack_pushes_every_image_and_pins_their_digests(
        aws: boto3.Session, project: Path) -> None:
    run = Run(project, aws)

    cloudformation = boto3.client("cloudformation")
    assert cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    repositories = {r["repositoryName"] for r in boto3.client("ecr").describe_repositories()["repositories"]}
    assert repositories == {f"{STACK}/preprocess", f"{STACK}/analysis", f"{STACK}/postprocess"}

    assert sorted(run.result.built) == ALL_IMAGES
    assert [c[1] for c in run.engine.commands] == ["login"] + ["build", "push"] * len(JOB_IMAGES)
    assert run.engine.login_passwords and all(run.engine.login_passwords), "the password goes on stdin"
    builds = run.engine.verbs("build")
    assert all(c[c.index("--platform") + 1] == "linux/amd64" for c in builds)
    gpu = [c for c in builds if "GPU=1" in c]
    assert len(gpu) == 1 and gpu[0][gpu[0].index("--tag") + 1].endswith("-gpu")

    pushed = _ecr_digests()
    assert len(pushed) == len(JOB_IMAGES)
    gpu_tag = gpu[0][gpu[0].index("--tag") + 1].rsplit("/", 1)[1]
    assert _pinned(run)["AnalysisImageDigest"] == pushed[f"{STACK}/{gpu_tag}"]
    assert set(_pinned(run).values()) <= set(pushed.values())
    assert all(digest.startswith("sha256:") for digest in _pinned(run).values())
    # The environment's own overrides travel with the digests (a command-line list replaces samconfig's).
    assert run.sam.overrides()["VpcId"] == SamEnvironment.load(project / "samconfig.toml", "dev") \
        .parameter_overrides["VpcId"]
    assert [c[1] for c in run.sam.commands] == ["build", "deploy"]

    bucket = _output("IncomingBucketName")
    assert run.result.incoming_bucket == bucket
    assert run.result.smoke_test == f"aws s3 cp src/threadline/data/sample-positions.csv s3://{bucket}/incoming/sample-positions.csv"
    assert run.lines[-1].endswith(run.result.smoke_test)


def test_a_redeploy_without_change_builds_and_pushes_nothing(aws: boto3.Session, project: Path) -> None:
    first = Run(project, aws)
    again = Run(project, aws)

    assert again.result.built == []
    assert again.engine.commands == []
    assert _pinned(again) == _pinned(first)
    assert not [call for call in again.journal.calls if call.operation in ("CreateStack", "PutObject", "StartBuild")]


def test_a_changed_job_folder_rebuilds_that_image_only(aws: boto3.Session, project: Path) -> None:
    first = Run(project, aws)
    with (project / "jobs" / "postprocess" / "risk.py").open("a", encoding="utf-8") as handle:
        handle.write("\n# changed\n")
    (project / "jobs" / "preprocess" / "__pycache__").mkdir(exist_ok=True)
    (project / "jobs" / "preprocess" / "__pycache__" / "job.cpython-313.pyc").write_bytes(b"not part of the image")

    again = Run(project, aws)

    assert again.result.built == ["postprocess"]
    assert [c[1] for c in again.engine.commands] == ["login", "build", "push"]
    before, after = _pinned(first), _pinned(again)
    assert after["PostprocessImageDigest"] != before["PostprocessImageDigest"]
    assert {k: v for k, v in after.items() if k != "PostprocessImageDigest"} == \
        {k: v for k, v in before.items() if k != "PostprocessImageDigest"}


def test_a_change_to_the_shared_jobkit_rebuilds_every_image(aws: boto3.Session, project: Path) -> None:
    Run(project, aws)
    with (project / "jobs" / "jobkit" / "exitcodes.py").open("a", encoding="utf-8") as handle:
        handle.write("\n# changed\n")

    assert sorted(Run(project, aws).result.built) == ALL_IMAGES


def test_codebuild_builds_from_the_uploaded_context(aws: boto3.Session, project: Path) -> None:
    # moto's CloudFormation does not create CodeBuild projects: create the template's one through the API.
    boto3.client("codebuild").create_project(
        name=f"{STACK}-images", source={"type": "S3", "location": "placeholder/context.zip"},
        artifacts={"type": "NO_ARTIFACTS"}, serviceRole=f"arn:aws:iam::123456789012:role/{STACK}-images",
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
                     "computeType": "BUILD_GENERAL1_MEDIUM", "privilegedMode": True})
    worker = FakeCodeBuildWorker()
    aws.events.register("provide-client-params.codebuild.StartBuild", worker)

    run = Run(project, aws, builder="codebuild")

    assert run.engine.commands == []
    assert sorted(b["IMAGE_URI"].rsplit("/", 1)[1] + (":gpu" if b["GPU"] == "1" else "") for b in worker.builds) == \
        ["analysis", "analysis:gpu", "postprocess", "preprocess"]
    uploads = [call for call in run.journal.calls if call.operation == "PutObject"]
    assert len(uploads) == 1 and uploads[0].params["Key"].startswith("image-sources/")
    assert uploads[0].params["Bucket"] == _output("ImageSourceBucketName")
    assert set(_pinned(run).values()) <= set(_ecr_digests().values())

    again = Run(project, aws, builder="codebuild")
    assert again.result.built == [] and len(worker.builds) == len(JOB_IMAGES)


def test_the_dry_run_lists_every_step_and_call_and_makes_none(aws: boto3.Session, project: Path) -> None:
    run = Run(project, None, dry_run=True)

    assert boto3.client("cloudformation").describe_stacks()["Stacks"] == []
    assert boto3.client("ecr").describe_repositories()["repositories"] == []
    steps = [line for line in run.lines if line.startswith("[")]
    assert [s.split("] ", 1)[1].split()[0] for s in steps] == \
        ["Build", "Make", "Find", "Look", "Build", "Read", "Deploy", "Ready"]
    operations = [f"{call.service}:{call.operation}" for call in run.journal.calls]
    assert operations[:2] == ["cloudformation:DescribeStacks", "cloudformation:CreateStack"]
    assert operations.count("ecr:DescribeImages") == 2 * len(JOB_IMAGES)
    assert "ecr:GetAuthorizationToken" in operations
    for call in run.journal.calls:
        assert any(line.endswith(call.line()) for line in run.lines)
    assert [c[1] for c in run.journal.commands] == ["build", "login"] + ["build", "push"] * len(JOB_IMAGES) + ["deploy"]
    assert run.engine.commands == [] and run.sam.commands == []
