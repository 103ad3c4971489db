"""CodeBuild: build and push job images in AWS, with the stack's ImageBuildProject."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import DeployError
from .journal import AwsService

POLL_SECONDS = 15.0
DONE = {"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED"}


@dataclass(frozen=True)
class ImageBuild:
    """What one build makes: `image_uri:tag` from `dockerfile` (relative to the context)."""

    image_uri: str
    tag: str
    dockerfile: str
    gpu: bool


class CodeBuildProject(AwsService):
    service = "codebuild"

    def start(self, project: str, source_location: str, build: ImageBuild) -> str:
        """Start one build of the uploaded context; returns the build id."""
        variables = {"IMAGE_URI": build.image_uri, "IMAGE_TAG": build.tag,
                     "DOCKERFILE": build.dockerfile, "GPU": "1" if build.gpu else "0"}
        answer = self._call(
            "StartBuild", {"build": {"id": f"{project}:<build {build.tag}>"}},
            projectName=project, sourceTypeOverride="S3", sourceLocationOverride=source_location,
            environmentVariablesOverride=[{"name": name, "value": value, "type": "PLAINTEXT"}
                                          for name, value in variables.items()])
        return str(answer["build"]["id"])

    def wait(self, build_ids: list[str], sleep: Callable[[float], None] = time.sleep) -> None:
        """Wait until every build ended; a build that did not succeed is a DeployError naming its log."""
        pending = list(build_ids)
        while pending:
            dry = {"builds": [{"id": build_id, "buildStatus": "SUCCEEDED"} for build_id in pending]}
            builds = self._call("BatchGetBuilds", dry, ids=pending)["builds"]
            failed = [b for b in builds if b["buildStatus"] in DONE and b["buildStatus"] != "SUCCEEDED"]
            if failed:
                raise DeployError("image build failed: " + "; ".join(
                    f"{b['id']} {b['buildStatus']} (log: {b.get('logs', {}).get('deepLink', 'CodeBuild console')})"
                    for b in failed))
            pending = [b["id"] for b in builds if b["buildStatus"] not in DONE]
            if pending:
                sleep(POLL_SECONDS)
