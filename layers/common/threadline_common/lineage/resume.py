"""Resuming a run from the lineage graph: which leading steps an earlier run already did.

For each reusable step in pipeline order the planner computes the cache key
(`cache.py`) the step would get in this run, looks for an earlier successful
attempt with that key whose outputs are still in S3 (intermediates expire), and
if there is one, points the next step at those outputs instead of this run's
own prefix. Keys chain, so reuse is always a leading part of the pipeline: the
first step that must run again makes every later one run again too.

Post-processing checks that the partial results it merges come from one run
and one plan, so it can merge an earlier run's analysis. When every step is
reused the run does no Batch work at all: the state machine records the
earlier report as the run's own (`start_at` is `done`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import pipeline
from . import queries
from .batch import essential_image
from .cache import SOURCE_PARAMETER, StepIdentity, image_digest, source_version, step_key
from .facts import split_uri
from .neptune import CypherRunner

# Every step of the manifest can be reused, in pipeline order; what one hands to the steps
# after it is its `Step.datasets`, under the prefix its `output_parameter` names.
REUSABLE_STEPS = pipeline.step_names()
DONE = "done"

ImageOf = Callable[[str], str | None]


@dataclass
class ResumePlan:
    """Where a resumed run starts, the datasets its later steps read, and the earlier attempts it reuses."""

    start_at: str = REUSABLE_STEPS[0]
    datasets: dict[str, str] = field(default_factory=dict)
    reused: dict[str, dict[str, str]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_state(self) -> dict[str, Any]:
        """The `plan` the state machine keeps (and sends with `run_finished`)."""
        return {"resume": True, "start_at": self.start_at, "datasets": self.datasets, "reused": self.reused,
                "keys": self.keys, "notes": self.notes}


def plan_resume(runner: CypherRunner, s3: Any, image_of: ImageOf, source: Mapping[str, Any],
                datasets: Mapping[str, str], steps: Mapping[str, Mapping[str, Any]]) -> ResumePlan:
    """Decide where a resumed run starts.

    `datasets` are the run's own input locations (the defaults a fresh run uses);
    `steps` give each reusable step's job definition and configuration parameters
    exactly as the state machine passes them to Batch.
    """
    plan = ResumePlan(datasets=dict(datasets))
    version = source_version(source)
    keys: dict[str, str | None] = {}
    for index, manifest in enumerate(pipeline.STEPS):
        step = manifest.name
        spec = steps.get(step)
        if spec is None:
            plan.notes.append(f"{step}: no job definition given; it runs")
            break
        job_definition = str(spec["job_definition"])
        parameters = {name: str(value) for name, value in dict(spec.get("parameters") or {}).items()}
        # The read parameters, as the planner fills them (the values only need to exist; versions come from keys).
        for name in manifest.reads:
            parameters.setdefault(name,
                                  str(source.get("uri")) if name == SOURCE_PARAMETER else plan.datasets.get(name, ""))
        image = image_of(job_definition)
        key = step_key(StepIdentity(step, job_definition, image, parameters), version, keys)
        keys[step] = key
        if image_digest(image) is None:
            plan.notes.append(f"{step}: its image {image or '(unknown)'} is not pinned by digest; it runs")
            break
        if key is None:
            plan.notes.append(f"{step}: an input has no version; it runs")
            break
        plan.keys[step] = key
        found = _reusable(runner, s3, manifest, key, plan)
        if found is None:
            break
        attempt, outputs = found
        plan.reused[step] = {"attempt_id": attempt["attempt_id"], "run_id": attempt["run_id"], "cache_key": key}
        plan.datasets.update(outputs)
        plan.start_at = pipeline.STEPS[index + 1].name if index + 1 < len(pipeline.STEPS) else DONE
    return plan


def _reusable(runner: CypherRunner, s3: Any, manifest: pipeline.Step, key: str,
              plan: ResumePlan) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The newest earlier successful attempt with this key whose outputs are all still there."""
    step = manifest.name
    candidates = runner.run(queries.REUSABLE_ATTEMPTS, {"cache_key": key})
    if not candidates:
        plan.notes.append(f"{step}: no earlier successful attempt with key {key[:12]}")
        return None
    output_parameter, objects = manifest.output_parameter, manifest.datasets
    for attempt in candidates:
        try:
            prefix = json.loads(attempt.get("parameters_json") or "{}").get(output_parameter)
        except json.JSONDecodeError:
            prefix = None
        if not prefix:
            continue
        outputs = {name: prefix + relative for name, relative in objects.items()}
        missing = _missing(s3, manifest, prefix, objects, int(attempt.get("node_count") or 1))
        if missing:
            plan.notes.append(f"{step}: {attempt['attempt_id']} of run {attempt['run_id']} matches but "
                              f"{missing} is gone")
            continue
        return attempt, outputs
    return None


def _missing(s3: Any, step: pipeline.Step, prefix: str, objects: Mapping[str, str], node_count: int) -> str | None:
    """The first output that is not in S3 (or cannot be seen), else None.

    A step that writes one object per node (the analysis) is checked by listing its
    prefix for every node's object; any other by a HEAD of each object it hands on.
    """
    per_node = [output for output in step.outputs if output.per_node]
    if per_node:
        wanted = [output.file_name(index) for index in range(node_count) for output in per_node]
        try:
            bucket, key = split_uri(prefix)
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1000).get("Contents", [])
        except (ClientError, BotoCoreError, ValueError):
            return prefix
        present = {item["Key"].rsplit("/", 1)[-1] for item in listed}
        return next((prefix + name for name in wanted if name not in present), None)
    for relative in objects.values():
        uri = prefix + relative
        try:
            bucket, key = split_uri(uri)
            s3.head_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError, ValueError):
            return uri
    return None


def image_reader(batch: Any) -> ImageOf:
    """The image of a job definition revision (container or multi-node), asked of Batch once each."""
    cache: dict[str, str | None] = {}

    def image_of(job_definition: str) -> str | None:
        if job_definition not in cache:
            found = batch.describe_job_definitions(jobDefinitions=[job_definition]).get("jobDefinitions", [])
            image = None
            if found:
                definition = found[0]
                image = (definition.get("containerProperties") or {}).get("image")
                for node_range in (definition.get("nodeProperties") or {}).get("nodeRangeProperties", []):
                    image = image or (node_range.get("container") or {}).get("image")
                image = image or essential_image(definition)  # a multi-container job's main container
            cache[job_definition] = image
        return cache[job_definition]

    return image_of
