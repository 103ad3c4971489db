"""Cache keys of pipeline steps: what a step computed from, so that a rerun can reuse it.

A step's key hashes its job definition (ARN with revision), its image digest,
its configuration parameters and the versions of the datasets it reads. The version
of the incoming file is its URI and ETag (its content: uploading the same bytes
again gives a new S3 version id but the same key); the version of a dataset a
step derived is the key of the step that produced it. Keys therefore chain:
changing the file, an image or a parameter changes the key of that step and of
every step after it, and of nothing before it.

The image counts only when the job definition pins it by digest
(`repo@sha256:...`, as `threadline deploy` registers it): a tag such as
`latest` can point at other code tomorrow, so a step whose image is a tag gets
no key, and is neither reused nor offered for reuse.

Parameters that only name where a run writes (output prefixes, the quarantine
prefix) or which run it is (`run_id`) are left out: the same inputs, code and
configuration give the same key in every run.

The planner (before a resumed run) and the lineage writer (after a run) compute
keys with these same functions, so a key found in the graph means the same
inputs, code and configuration.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import pipeline
from .batch import dataset_parameters

KEY_HEX_CHARS = 32
RUN_SCOPED_PARAMETERS = frozenset({"run_id", "quarantine_prefix"})
SOURCE_PARAMETER = pipeline.SOURCE_PARAMETER
# An OCI content digest as ECR reports it, at the end of an image reference.
PINNED_IMAGE = re.compile(r"@(sha256:[0-9a-f]{64})$")


@dataclass(frozen=True)
class StepIdentity:
    """What one step runs: the job definition revision, its image reference and all its parameters."""

    step: str
    job_definition: str | None
    image: str | None
    parameters: Mapping[str, str]


def image_digest(image: str | None) -> str | None:
    """The digest an image reference pins (`repo@sha256:<hex>`), else None: a tag can move."""
    match = PINNED_IMAGE.search(image or "")
    return match.group(1) if match else None


def source_version(source: Mapping[str, Any]) -> str | None:
    """The incoming file's identity for keys: `<uri>@<etag>` (content), else `<uri>#<version id>`."""
    uri = source.get("uri") or (f"s3://{source['bucket']}/{source['key']}" if source.get("bucket") else None)
    if not uri:
        return None
    etag = str(source.get("etag") or "").strip('"')
    if etag:
        return f"{uri}@{etag}"
    version = source.get("version_id")
    if version and version != "null":
        return f"{uri}#{version}"
    return None


def configuration(step: str, parameters: Mapping[str, str]) -> dict[str, str]:
    """The parameters that change what a step computes (datasets and run-scoped names left out)."""
    reads, writes = dataset_parameters(step)
    skipped = set(reads) | set(writes) | RUN_SCOPED_PARAMETERS
    return {name: str(value) for name, value in parameters.items() if name not in skipped}


def input_versions(step: str, parameters: Mapping[str, str], source: str | None,
                   keys: Mapping[str, str | None]) -> dict[str, str] | None:
    """The version of every dataset the step reads, or None when one of them is unknown."""
    reads, _ = dataset_parameters(step)
    versions: dict[str, str] = {}
    for name in reads:
        if name not in parameters:
            continue
        if name == SOURCE_PARAMETER:
            version = source
        else:
            # The step that wrote the dataset (pipeline.producer_of); the rest come from the run's source.
            producer = pipeline.producer_of(name)
            producer_key = keys.get(producer.name) if producer else None
            version = f"key:{producer_key}" if producer_key else None
        if version is None:
            return None
        versions[name] = version
    return versions


def step_key(identity: StepIdentity, source: str | None, keys: Mapping[str, str | None]) -> str | None:
    """The cache key of one step, or None when its image is not pinned or an input's version is unknown."""
    digest = image_digest(identity.image)
    versions = input_versions(identity.step, identity.parameters, source, keys)
    if digest is None or versions is None:
        return None
    material = {
        "step": identity.step,
        "job_definition": identity.job_definition,
        "image": digest,
        "parameters": configuration(identity.step, identity.parameters),
        "inputs": versions,
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_HEX_CHARS]


def chain_keys(identities: Mapping[str, StepIdentity], source: Mapping[str, Any],
               known: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Keys of the steps in pipeline order, each fed by the keys before it.

    `known` gives the key of a step that is not among `identities` (a step a
    resumed run reused instead of running).
    """
    version = source_version(source)
    keys: dict[str, str | None] = dict(known or {})
    for step in sorted(identities, key=_position):
        keys[step] = step_key(identities[step], version, keys)
    return keys


def _position(step: str) -> tuple[int, str]:
    position = pipeline.position(step)
    return (len(pipeline.STEPS) if position is None else position, step)
