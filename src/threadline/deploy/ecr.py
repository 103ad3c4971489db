"""ECR: the stack's repositories, the images already pushed (by tag), registry logins."""

from __future__ import annotations

import base64

from botocore.exceptions import ClientError

from .errors import DeployError
from .journal import AwsService


class EcrRegistry(AwsService):
    service = "ecr"

    def repository_uris(self, names: list[str], registry_hint: str) -> dict[str, str]:
        """Each repository's URI; a missing one is a DeployError (the stack creates them)."""
        dry = {"repositories": [{"repositoryName": name, "repositoryUri": f"{registry_hint}/{name}"}
                                for name in names]}
        try:
            answer = self._call("DescribeRepositories", dry, repositoryNames=names)
        except ClientError as error:
            if error.response["Error"]["Code"] == "RepositoryNotFoundException":
                raise DeployError(f"{error.response['Error']['Message']}: the stack creates the job image "
                                  "repositories; is it an older stack? Deploy it once with `sam deploy`.") from error
            raise
        return {repo["repositoryName"]: repo["repositoryUri"] for repo in answer["repositories"]}

    def digest(self, repository: str, tag: str, just_pushed: bool = False) -> str | None:
        """The digest of the image tagged `tag`, or None when no such image was pushed.

        A dry run answers as on a first deploy: not there before the push, there after it.
        """
        dry = {"imageDetails": [{"imageDigest": f"<digest-of-{repository}:{tag}>"}] if just_pushed else []}
        try:
            answer = self._call("DescribeImages", dry, repositoryName=repository, imageIds=[{"imageTag": tag}])
        except ClientError as error:
            if error.response["Error"]["Code"] == "ImageNotFoundException":
                return None
            raise
        details = answer["imageDetails"]
        return str(details[0]["imageDigest"]) if details else None

    def login(self) -> tuple[str, str, str]:
        """(registry host, user, password) for `docker login` to the account's registry."""
        dry = {"authorizationData": [{"authorizationToken": base64.b64encode(b"AWS:<token>").decode(),
                                      "proxyEndpoint": "https://<account>.dkr.ecr.<region>.amazonaws.com"}]}
        data = self._call("GetAuthorizationToken", dry)["authorizationData"][0]
        user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
        return data["proxyEndpoint"].removeprefix("https://"), user, password
