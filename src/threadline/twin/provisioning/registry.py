"""ECR repositories."""

from __future__ import annotations

from typing import Any

from .core import Provisioner, handles


@handles("AWS::ECR::Repository")
def _ecr(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = p.physical_name(logical_id, props, "RepositoryName", lower=True)
    repo = p.client("ecr").create_repository(repositoryName=name)["repository"]
    return name, {"Arn": repo["repositoryArn"], "RepositoryUri": repo["repositoryUri"]}
