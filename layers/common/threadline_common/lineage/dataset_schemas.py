"""The fields of the input schemas lineage names, for OpenLineage's SchemaDatasetFacet.

The graph keeps a dataset's schema as `<name>@<version>` and a hash of that
(`facts.schema_hash`), not its fields; the pre-processing job owns the schema file
(`jobs/preprocess/positions.schema.json`), which the Lambda functions cannot read.
The fields (name and type, in file order) are therefore listed here once more, and
`tests/lineage/test_openlineage_events.py` fails when they differ from the job's file.
"""

from __future__ import annotations

from .facts import schema_hash

# (name, version) -> ((field name, type), ...), in the schema file's column order.
KNOWN: dict[tuple[str, int], tuple[tuple[str, str], ...]] = {
    ("positions", 1): (
        ("position_id", "string"),
        ("asset", "string"),
        ("sector", "string"),
        ("quantity", "number"),
        ("price", "number"),
        ("annual_vol", "number"),
        ("annual_drift", "number"),
        ("beta", "number"),
    ),
}

# The hash the graph stores -> the fields (the hash is of `{"name", "version"}`, as the report names it).
BY_HASH: dict[str, tuple[tuple[str, str], ...]] = {
    schema_hash({"name": name, "version": version}): fields for (name, version), fields in KNOWN.items()
}


def fields_for(digest: str | None) -> tuple[tuple[str, str], ...] | None:
    """The fields of the schema with this hash, or None for one lineage does not know."""
    return BY_HASH.get(digest or "")
