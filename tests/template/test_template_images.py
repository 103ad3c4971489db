"""Job images: prod job definitions name their images by digest, never by a mutable tag."""

from __future__ import annotations

import re
from typing import Any

import pytest

from threadline.twin.template import Resolver

JOB_DEFINITIONS = {"PreprocessJobDefinition": "PreprocessImageDigest",
                   "AnalysisJobDefinition": "AnalysisImageDigest",
                   "PostprocessJobDefinition": "PostprocessImageDigest"}
DIGEST = "sha256:" + "ab" * 32


def _images(resource: dict[str, Any]) -> list[Any]:
    """The image of every container the job definition runs (each container of a multi-container task)."""
    props = resource["Properties"]
    if "ContainerProperties" in props:
        return [props["ContainerProperties"]["Image"]]
    images = []
    for node in props["NodeProperties"]["NodeRangeProperties"]:
        if "EcsProperties" in node:
            images.extend(c["Image"] for task in node["EcsProperties"]["TaskProperties"] for c in task["Containers"])
        else:
            images.append(node["Container"]["Image"])
    return images


def _image(resource: dict[str, Any]) -> Any:
    return _images(resource)[0]


def _resolver(template: dict[str, Any], **parameters: str) -> Resolver:
    values = {name: spec.get("Default") for name, spec in template["Parameters"].items()} | parameters
    return Resolver(parameters=values, pseudo={"AWS::AccountId": "123456789012", "AWS::Region": "eu-west-1"},
                    conditions=template["Conditions"],
                    refs={f"{job}Repository": f"threadline-prod/{job.lower()}"
                          for job in ("Preprocess", "Analysis", "Postprocess")})


def _rule_holds(template: dict[str, Any], resolver: Resolver) -> bool:
    rule = template["Rules"]["ProdPinsImageDigests"]
    if not resolver.resolve(rule["RuleCondition"]):
        return True
    return all(resolver.resolve(assertion["Assert"]) for assertion in rule["Assertions"])


def _resolved_images(template: dict[str, Any], resolver: Resolver) -> dict[str, str]:
    return {name: resolver.resolve(_image(template["Resources"][name])) for name in JOB_DEFINITIONS}


def test_prod_job_definitions_name_their_images_by_digest(template: dict[str, Any]) -> None:
    digests = {parameter: DIGEST for parameter in JOB_DEFINITIONS.values()}
    resolver = _resolver(template, Environment="prod", ImageTag="latest", **digests)
    assert _rule_holds(template, resolver)
    for name, image in _resolved_images(template, resolver).items():
        registry = r"123456789012\.dkr\.ecr\.eu-west-1\.amazonaws\.com"
        assert re.fullmatch(rf"{registry}/threadline-prod/[a-z]+@sha256:[0-9a-f]{{64}}", image), f"{name}: {image}"


def test_every_container_of_a_job_is_pinned_by_the_same_digest(template: dict[str, Any]) -> None:
    digests = {parameter: DIGEST for parameter in JOB_DEFINITIONS.values()}
    resolver = _resolver(template, Environment="prod", ImageTag="latest", **digests)
    for name in JOB_DEFINITIONS:
        images = {resolver.resolve(image) for image in _images(template["Resources"][name])}
        assert len(images) == 1 and DIGEST in images.pop(), name
    assert len(_images(template["Resources"]["AnalysisJobDefinition"])) == 2  # the analysis and its sidecar


@pytest.mark.parametrize("missing", sorted(JOB_DEFINITIONS.values()))
def test_prod_without_a_digest_is_refused(template: dict[str, Any], missing: str) -> None:
    digests = {parameter: DIGEST for parameter in JOB_DEFINITIONS.values()} | {missing: ""}
    assert not _rule_holds(template, _resolver(template, Environment="prod", **digests))


def test_dev_without_digests_falls_back_to_the_tag(template: dict[str, Any]) -> None:
    """The twin and hand deploys of dev pass no digest: the job definitions use ImageTag."""
    resolver = _resolver(template, Environment="dev", ImageTag="latest")
    assert _rule_holds(template, resolver)
    assert all(image.endswith(":latest") for image in _resolved_images(template, resolver).values())


@pytest.mark.parametrize("parameter", sorted(JOB_DEFINITIONS.values()))
def test_a_digest_parameter_takes_only_a_sha256_digest(template: dict[str, Any], parameter: str) -> None:
    pattern = re.compile(template["Parameters"][parameter]["AllowedPattern"])
    assert pattern.fullmatch(DIGEST) and pattern.fullmatch("")
    for wrong in ("latest", "sha256:" + "ab" * 31, "SHA256:" + "ab" * 32, f"repo@{DIGEST}"):
        assert not pattern.fullmatch(wrong)
