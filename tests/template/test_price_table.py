"""The pinned price table (layers/common/threadline_common/data/prices) against the template's compute environments."""

from __future__ import annotations

from typing import Any

import pytest
from threadline_common import cost, pipeline

# Which compute environment each capacity kind runs on: the first of its queue's order.
ENVIRONMENTS = {
    pipeline.SPOT: "SpotComputeEnvironment",
    pipeline.ON_DEMAND: "OnDemandComputeEnvironment",
    pipeline.GPU: "GpuComputeEnvironment",
    pipeline.GPU_FALLBACK: "GpuFallbackComputeEnvironment",
}


@pytest.mark.parametrize("capacity", sorted(ENVIRONMENTS))
def test_table_families_are_the_compute_environments_instance_types(capacity: str, resources: dict[str, Any]):
    allowed = resources[ENVIRONMENTS[capacity]]["Properties"]["ComputeResources"]["InstanceTypes"]
    table = cost.load_table("us-east-1")

    assert list(table.families[capacity]) == allowed
    priced_families = {instance.name.split(".")[0] for instance in table.allowed(capacity)}
    assert priced_families == set(allowed), "every allowed family has at least one priced size"


def test_table_names_its_sources_and_dates():
    raw = cost.json.loads((cost.PRICES_DIR / "us-east-1.json").read_text())

    assert raw["region"] == "us-east-1" and raw["currency"] == "USD"
    assert "aws.amazon.com" in raw["on_demand"]["source"] and raw["on_demand"]["as_of"]
    # No Spot figure without a date and a source to go with it.
    if any(spec["spot"] is not None for spec in raw["instances"].values()):
        assert raw["spot"]["source"] and raw["spot"]["as_of"]
    else:
        assert raw["spot"]["note"]


def test_every_job_definition_request_fits_an_allowed_instance(resources: dict[str, Any]):
    """Each job's request, on each capacity its jobs run on, has an instance in the table to be priced by."""
    for step, job in pipeline.jobs():
        properties = resources[step.job_definition]["Properties"]
        container = properties.get("ContainerProperties") or properties["NodeProperties"]["NodeRangeProperties"][0][
            "Container"]
        values = {item["Type"]: item["Value"] for item in container["ResourceRequirements"]}
        gpus = values.get("GPU", 0)
        request = cost.Request(vcpus=float(values["VCPU"]), memory_mib=int(values["MEMORY"]),
                               gpus=1 if isinstance(gpus, dict) else int(gpus))  # GPU: the parameter's default, 1
        assert cost.cheapest_fit(cost.load_table("us-east-1"), job.capacity, request) is not None, job.key
