"""Node ids: what every lineage node is keyed by (Neptune's `~id`, the embedded graph's primary key).

Neptune's only uniqueness guarantee is a vertex's `~id`, unique across the whole
graph whatever the label, so each id carries its label: a run and a dataset with
the same key stay two nodes. The natural key (`run_id`, `attempt_id`,
`dataset_id`) is kept as a property beside it, for reading.
"""

from __future__ import annotations


def run_node(run_id: str) -> str:
    return f"Run:{run_id}"


def attempt_node(attempt_id: str) -> str:
    return f"StepAttempt:{attempt_id}"


def dataset_node(dataset_id: str) -> str:
    return f"Dataset:{dataset_id}"


def container_node(container_id: str) -> str:
    return f"Container:{container_id}"
