"""What a Batch job needs and what a compute environment holds, in vCPUs, memory and GPUs.

A compute environment's template `maxvCpus` is too much for one machine, so the
twin gives each `maxvCpus x scale` (`DEFAULT_SCALE`: 256 vCPUs become 16), with
the memory and GPUs its instance families have per vCPU. A job bigger than the
scaled environment but within the template's own maximum still runs, alone in
it; a job bigger than the template's maximum never runs (Batch's
`MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .batch_node_jobs import node_ranges

DEFAULT_SCALE = 1 / 16
# Memory per vCPU (MiB) and vCPUs per GPU of the instance families the template names, by
# their smallest GPU size (xlarge: 4 vCPUs, 1 GPU): the most GPUs a family gives per vCPU.
_GPU_FAMILIES: dict[str, tuple[int, int]] = {"g4dn": (4096, 4), "g5": (4096, 4), "g6": (4096, 4),
                                             "g6e": (8192, 4)}
_MEMORY_BY_CLASS = {"c": 2048, "m": 4096, "r": 8192}  # general purpose (m) for anything else ("optimal")
_DEFAULT_MIB_PER_VCPU = 4096


@dataclass(frozen=True)
class Resources:
    vcpus: float = 0.0
    memory_mib: int = 0
    gpus: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.vcpus + other.vcpus, self.memory_mib + other.memory_mib, self.gpus + other.gpus)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.vcpus - other.vcpus, self.memory_mib - other.memory_mib, self.gpus - other.gpus)

    def fits_in(self, room: Resources) -> bool:
        return self.vcpus <= room.vcpus and self.memory_mib <= room.memory_mib and self.gpus <= room.gpus

    @property
    def empty(self) -> bool:
        return self.vcpus <= 0 and self.memory_mib <= 0 and self.gpus <= 0


@dataclass
class EnvironmentCapacity:
    """One compute environment: what the twin lets run at once (`limit`), its template maximum, what is in use."""

    limit: Resources
    maximum: Resources
    used: Resources = field(default_factory=Resources)

    def has_room(self, needs: Resources) -> bool:
        return (self.used + needs).fits_in(self.limit) or (self.used.empty and needs.fits_in(self.maximum))


def environment_capacity(compute_resources: dict[str, Any], scale: float = DEFAULT_SCALE) -> EnvironmentCapacity:
    """The capacity of a managed compute environment from its `computeResources` (API spelling)."""
    maximum = _capacity(int(compute_resources.get("maxvCpus", 0)), compute_resources.get("instanceTypes", []))
    scaled = max(1, math.floor(maximum.vcpus * scale)) if maximum.vcpus else 0
    return EnvironmentCapacity(_capacity(scaled, compute_resources.get("instanceTypes", [])), maximum)


def _capacity(vcpus: int, instance_types: list[str]) -> Resources:
    families = [name.split(".")[0] for name in instance_types] or ["optimal"]
    gpu = [_GPU_FAMILIES[family] for family in families if family in _GPU_FAMILIES]
    if gpu and len(gpu) == len(families):  # a GPU environment: every type has GPUs
        mib_per_vcpu = max(mib for mib, _ in gpu)
        return Resources(vcpus, vcpus * mib_per_vcpu, vcpus // min(per_gpu for _, per_gpu in gpu))
    mib_per_vcpu = max(_MEMORY_BY_CLASS.get(family[:1], _DEFAULT_MIB_PER_VCPU) for family in families)
    return Resources(vcpus, vcpus * mib_per_vcpu, 0)


def job_needs(job: Any) -> Resources:
    """What one attempt of a moto Batch job needs: its container's or task's, or the sum of its nodes' (multi-node)."""
    definition = job.job_definition
    node_properties = getattr(definition, "node_properties", None)
    if getattr(definition, "type", "container") == "multinode" and node_properties:
        total = Resources()
        for node_range in node_ranges(node_properties):  # one range a node: a nested range overrides
            total = total + (task_needs(node_range["ecsProperties"]) if node_range.get("ecsProperties")
                             else container_needs(node_range.get("container", {})))
        return total
    ecs_properties = getattr(definition, "ecs_properties", None)
    if ecs_properties:
        return task_needs(ecs_properties)
    container = dict(getattr(definition, "container_properties", None) or {})
    overrides = getattr(job, "container_overrides", None) or {}
    if overrides.get("resourceRequirements"):
        by_type = {item["type"]: item for item in container.get("resourceRequirements", [])}
        by_type.update({item["type"]: item for item in overrides["resourceRequirements"]})
        container["resourceRequirements"] = list(by_type.values())
    return container_needs(container)


def task_needs(ecs_properties: dict[str, Any]) -> Resources:
    """A multi-container task (`ecsProperties`) needs the sum of its containers' requests."""
    total = Resources()
    for task in ecs_properties.get("taskProperties", []):
        for container in task.get("containers", []):
            total = total + container_needs(container)
    return total


def container_needs(container: dict[str, Any]) -> Resources:
    """A container's `resourceRequirements` (or the older `vcpus`/`memory`); 1 vCPU when it names none."""
    values = {item["type"]: item["value"] for item in container.get("resourceRequirements", [])}
    vcpus = float(values.get("VCPU", container.get("vcpus", 1)))
    return Resources(vcpus, int(values.get("MEMORY", container.get("memory", 0))), int(values.get("GPU", 0)))
