"""The deploy's steps, in order: functions, stack bootstrap, repositories, images, stack, smoke test."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .bootstrap import bootstrap_body, bootstrap_template
from .cloudformation import Stack
from .codebuild import CodeBuildProject, ImageBuild
from .context import context_zip
from .ecr import EcrRegistry
from .engine import LocalEngine
from .errors import DeployError
from .images import BUILD_CONTEXT, JOB_IMAGES, JobImage
from .journal import Journal
from .s3 import SourceBucket
from .sam import SamCli
from .samconfig import SamEnvironment

Builder = Literal["local", "codebuild"]
SAMPLE = Path("src") / "threadline" / "data" / "sample-positions.csv"
SOURCE_PREFIX = "image-sources/"  # ImageBuildRole may read this prefix only


@dataclass
class Deployment:
    """What a deploy pushed and where to upload."""

    digests: dict[str, str] = field(default_factory=dict)  # image name -> sha256 digest
    built: list[str] = field(default_factory=list)          # image names built and pushed by this deploy
    incoming_bucket: str = ""
    smoke_test: str = ""


@dataclass
class Deployer:
    root: Path
    environment: SamEnvironment
    journal: Journal
    session: Any | None                    # boto3 session; None in a dry run
    builder: Builder
    sam: SamCli
    engine: LocalEngine | None = None      # the local builder (builder "local")
    sleep: Callable[[float], None] | None = None

    def __post_init__(self) -> None:
        kwargs = {} if self.sleep is None else {"sleep": self.sleep}
        self.stack = Stack(self.session, self.journal, self.environment.stack_name, **kwargs)
        self.ecr = EcrRegistry(self.session, self.journal)
        self.s3 = SourceBucket(self.session, self.journal)
        self.codebuild = CodeBuildProject(self.session, self.journal)
        if self.builder == "local" and self.engine is None:
            raise DeployError("the local builder needs a container engine")

    @property
    def context(self) -> Path:
        return self.root / BUILD_CONTEXT

    def _repository(self, image: JobImage) -> str:
        return image.repository(self.environment.stack_name)

    def run(self) -> Deployment:
        result = Deployment()
        self.journal.step("Build the functions")
        self.sam.build(self.environment.name)
        self._bootstrap()
        uris = self._repositories()
        pending = self._pushed_images(uris, result)
        if pending:
            self._build_and_push(pending, uris)
            self.journal.step("Read the pushed images' digests")
            for image in pending:
                digest = self.ecr.digest(self._repository(image), image.tag(self.context), just_pushed=True)
                if digest is None:
                    raise DeployError(f"{image.name}: the build ended but ECR has no {image.tag(self.context)}")
                result.digests[image.name] = digest
                result.built.append(image.name)
        self._deploy_stack(result)
        self._finish(result)
        return result

    def _bootstrap(self) -> None:
        self.journal.step(f"Make sure stack {self.environment.stack_name} holds the image repositories and builds")
        status = self.stack.status()
        if status == "ROLLBACK_COMPLETE":
            self.journal.note("its first creation rolled back and it holds nothing: delete it and start again")
            self.stack.delete()
            status = None
        if status is not None:
            self.journal.note(f"the stack exists ({status})")
            return
        resources = ", ".join(sorted(bootstrap_template(self.root / "template.yaml")["Resources"]))
        self.journal.note(f"no stack yet: create it with template.yaml's bootstrap resources ({resources})")
        environment = self.environment.parameter_overrides.get("Environment", "dev")
        self.stack.create(bootstrap_body(self.root / "template.yaml"), {"Environment": environment})

    def _repositories(self) -> dict[str, str]:
        self.journal.step("Find the job image repositories")
        names = sorted({self._repository(image) for image in JOB_IMAGES})
        region = self.environment.region or (self.session.region_name if self.session else None) or "<region>"
        return self.ecr.repository_uris(names, f"<account>.dkr.ecr.{region}.amazonaws.com")

    def _pushed_images(self, uris: dict[str, str], result: Deployment) -> list[JobImage]:
        """Images whose content-hash tag ECR already holds keep their digest; the others are returned."""
        self.journal.step("Look up each job image by its content hash")
        pending = []
        for image in JOB_IMAGES:
            tag = image.tag(self.context)
            digest = self.ecr.digest(self._repository(image), tag)
            if digest is None:
                self.journal.note(f"{image.name}: {tag} not pushed yet: build it")
                pending.append(image)
            else:
                self.journal.note(f"{image.name}: unchanged, {uris[self._repository(image)]}@{digest}")
                result.digests[image.name] = digest
        return pending

    def _build_and_push(self, pending: list[JobImage], uris: dict[str, str]) -> None:
        names = ", ".join(image.name for image in pending)
        if self.builder == "local":
            assert self.engine is not None
            self.journal.step(f"Build and push {names} with {self.engine.name}")
            self.engine.login(*self.ecr.login())
            for image in pending:
                uri = f"{uris[self._repository(image)]}:{image.tag(self.context)}"
                self.engine.build(self.context, image.dockerfile, uri, image.build_args)
                self.engine.push(uri)
            return
        self.journal.step(f"Build and push {names} with CodeBuild")
        bucket = self.stack.output("ImageSourceBucketName")
        body = context_zip(self.context)
        key = f"{SOURCE_PREFIX}{hashlib.sha256(body).hexdigest()[:24]}.zip"
        location = self.s3.upload(bucket, key, body)
        project = f"{self.environment.stack_name}-images"  # the template's ImageBuildProject name
        builds = [self.codebuild.start(project, location, ImageBuild(
            uris[self._repository(image)], image.tag(self.context), image.dockerfile, image.gpu)) for image in pending]
        self.codebuild.wait(builds, **({} if self.sleep is None else {"sleep": self.sleep}))

    def _deploy_stack(self, result: Deployment) -> None:
        self.journal.step("Deploy the whole stack, each job definition pinned to its image digest")
        overrides = dict(self.environment.parameter_overrides)
        for image in JOB_IMAGES:
            if image.digest_parameter is not None:
                overrides[image.digest_parameter] = result.digests.get(image.name, f"<digest-of-{image.name}>")
        self.sam.deploy(self.environment.name, overrides)

    def _finish(self, result: Deployment) -> None:
        self.journal.step("Ready")
        result.incoming_bucket = self.stack.output("IncomingBucketName")
        prefix = self.environment.parameter_overrides.get("IncomingPrefix", "incoming/")
        target = f"s3://{result.incoming_bucket}/{prefix}{SAMPLE.name}"
        result.smoke_test = f"aws s3 cp {shlex.quote(str(SAMPLE))} {shlex.quote(target)}"
        self.journal.note(f"upload CSVs to s3://{result.incoming_bucket}/{prefix}")
        self.journal.note(f"smoke test: {result.smoke_test}")
