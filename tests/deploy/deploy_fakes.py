"""What the deploy tests put in place of the processes AWS cannot reach here.

Only the engine boundary is fake: the container engine's and the SAM CLI's
processes, and the build container CodeBuild would run. Each fake does what its
real counterpart leaves behind in AWS (an image pushed to ECR, a stack updated),
through moto's APIs, so the deploy code reads the results as it would in AWS.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

REGION = "us-east-1"


def push_image(image: str) -> str:
    """Put an image manifest for `repository-uri:tag` into (moto's) ECR, as `docker push` would."""
    uri, tag = image.rsplit(":", 1)
    repository = uri.split("/", 1)[1]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"digest": "sha256:" + hashlib.sha256(image.encode()).hexdigest(),
                                      "mediaType": "application/vnd.oci.image.config.v1+json", "size": 1},
                           "layers": [{"digest": "sha256:" + hashlib.sha256(f"layer of {image}".encode()).hexdigest(),
                                       "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 1}]})
    ecr = boto3.client("ecr", region_name=REGION)
    return str(ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)["image"]
               ["imageId"]["imageDigest"])


class FakeEngine:
    """The docker process: records each command; `push` leaves the image in ECR."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.login_passwords: list[str | None] = []

    def __call__(self, argv: Sequence[str], stdin: str | None) -> int:
        self.commands.append(list(argv))
        if argv[1] == "login":
            self.login_passwords.append(stdin)
        if argv[1] == "push":
            push_image(argv[2])
        return 0

    def verbs(self, verb: str) -> list[list[str]]:
        return [command for command in self.commands if command[1] == verb]


class FakeSam:
    """The SAM CLI: records each command; `deploy` updates the stack with a stand-in for the whole template.

    moto's CloudFormation cannot deploy template.yaml (see docs/twin.md), so the stand-in is the
    bootstrap template plus the incoming bucket and its output: enough for the deploy to read back
    what it prints, and to show that an update keeps the bootstrap resources.
    """

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> int:
        self.commands.append(list(argv))
        if argv[1] == "deploy":
            self._update_stack(cwd, argv)
        return 0

    @staticmethod
    def _update_stack(root: Path, argv: Sequence[str]) -> None:
        from threadline.deploy.bootstrap import bootstrap_template
        from threadline.deploy.samconfig import SamEnvironment

        environment = SamEnvironment.load(root / "samconfig.toml", argv[argv.index("--config-env") + 1])
        template: dict[str, Any] = bootstrap_template(root / "template.yaml")
        template["Resources"]["IncomingBucket"] = {"Type": "AWS::S3::Bucket"}
        template["Outputs"]["IncomingBucketName"] = {"Value": {"Ref": "IncomingBucket"}}
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        try:
            cloudformation.update_stack(StackName=environment.stack_name, TemplateBody=json.dumps(template),
                                        Capabilities=["CAPABILITY_IAM"],
                                        Parameters=[{"ParameterKey": "Environment", "UsePreviousValue": True}])
        except ClientError as error:  # as samconfig's fail_on_empty_changeset = false lets it pass
            if "No updates are to be performed" not in str(error):
                raise

    def overrides(self) -> dict[str, str]:
        """The parameter overrides of the last `sam deploy`."""
        deploy = [command for command in self.commands if command[1] == "deploy"][-1]
        return dict(item.split("=", 1) for item in deploy[deploy.index("--parameter-overrides") + 1].split())


class FakeCodeBuildWorker:
    """What a build of ImageBuildProject does in AWS: unpack the uploaded context, build, push.

    moto's StartBuild keeps neither the source override nor the variables, so this hook reads
    them from the request; it checks that the Dockerfile is in the uploaded zip, then pushes.
    """

    def __init__(self) -> None:
        self.builds: list[dict[str, str]] = []

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        variables = {item["name"]: item["value"] for item in params["environmentVariablesOverride"]}
        bucket, key = params["sourceLocationOverride"].split("/", 1)
        body = boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read()
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            assert variables["DOCKERFILE"] in archive.namelist()
        self.builds.append(variables)
        push_image(f"{variables['IMAGE_URI']}:{variables['IMAGE_TAG']}")
