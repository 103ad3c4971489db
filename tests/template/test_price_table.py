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


def test_every_job_definition_request_fits_an_allowed_instance(template: dict[str, Any], resources: dict[str, Any]):
    """Each job's request, on each capacity its jobs run on, has an instance in the table to be priced by.

    Read by the pricing code's own reader (a multi-container node asks for the sum of its containers),
    with each parameter at its default.
    """
    for step, job in pipeline.jobs():
        properties = _with_defaults(resources[step.job_definition]["Properties"], template["Parameters"])
        description = {"Container": properties.get("ContainerProperties"),
                       "NodeProperties": properties.get("NodeProperties")}
        request = cost.request_of(description)
        assert request is not None, job.key
        assert cost.cheapest_fit(cost.load_table("us-east-1"), job.capacity, request) is not None, job.key


def test_the_analysis_node_request_is_the_sum_of_its_containers(template: dict[str, Any], resources: dict[str, Any]):
    properties = _with_defaults(resources["AnalysisJobDefinition"]["Properties"], template["Parameters"])
    description = {"NodeProperties": properties["NodeProperties"]}
    containers = cost.container_requests(description)

    assert containers, "the analysis node range has containers with resourceRequirements"
    assert cost.request_of(description) == cost.Request(
        vcpus=sum(r.vcpus for r in containers.values()), memory_mib=sum(r.memory_mib for r in containers.values()),
        gpus=sum(r.gpus for r in containers.values()))


def _with_defaults(node: Any, parameters: dict[str, Any]) -> Any:
    """`node` with each `{"Ref": <parameter>}` replaced by the parameter's default."""
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in parameters:
            return parameters[node["Ref"]].get("Default")
        return {key: _with_defaults(value, parameters) for key, value in node.items()}
    if isinstance(node, list):
        return [_with_defaults(value, parameters) for value in node]
    return node
