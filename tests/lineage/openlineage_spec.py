"""Checks OpenLineage events against the official JSON schema, offline.

The pinned spec (tests/schemas/openlineage/, see its README) and threadline's own
facet schemas (docs/openlineage/) are loaded into one `referencing` registry by
their `$id`s, so every `$ref` resolves locally. An event is checked against
`OpenLineage.json` (which checks every facet's `_producer` and `_schemaURL`), and
then each facet against the schema its `_schemaURL` names: a facet whose schema is
not pinned here fails, so none goes unchecked. Formats are checked (uuid,
date-time, uri).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]
SPEC_DIR = REPO / "tests" / "schemas" / "openlineage"
CUSTOM_DIR = REPO / "docs" / "openlineage"
SPEC_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


@cache
def schemas() -> dict[str, dict[str, Any]]:
    """Every pinned schema by its `$id`."""
    files = [SPEC_DIR / "OpenLineage.json", *sorted((SPEC_DIR / "facets").glob("*.json")),
             *sorted(CUSTOM_DIR.glob("*.json"))]
    loaded = [json.loads(path.read_text(encoding="utf-8")) for path in files]
    return {schema["$id"]: schema for schema in loaded}


@cache
def registry() -> Registry:
    return Registry().with_resources((uri, Resource.from_contents(schema)) for uri, schema in schemas().items())


def _validator(schema_id: str) -> Draft202012Validator:
    return Draft202012Validator(schemas()[schema_id], registry=registry(),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def facets(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, key, facet) for every facet of the event: run, job, datasets, input and output facets."""
    for key, facet in (event.get("run", {}).get("facets") or {}).items():
        yield "run", key, facet
    for key, facet in (event.get("job", {}).get("facets") or {}).items():
        yield "job", key, facet
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for index, dataset in enumerate(event.get(side) or []):
            for group in ("facets", extra):
                for key, facet in (dataset.get(group) or {}).items():
                    yield f"{side}[{index}].{group}", key, facet


def problems(event: dict[str, Any]) -> list[str]:
    """Everything wrong with the event by the spec and its facets' schemas ([] when it is valid)."""
    found = [f"event: {error.json_path}: {error.message}" for error in _validator(SPEC_ID).iter_errors(event)]
    for where, key, facet in facets(event):
        schema_id = str(facet.get("_schemaURL", "")).split("#", 1)[0]
        if schema_id not in schemas():
            found.append(f"{where}.{key}: no pinned schema for {facet.get('_schemaURL')!r}")
            continue
        if key not in schemas()[schema_id].get("properties", {}):
            found.append(f"{where}.{key}: {schema_id} defines no facet {key!r}")
            continue
        found.extend(f"{where}.{key}: {error.json_path}: {error.message}"
                     for error in _validator(schema_id).iter_errors({key: facet}))
    return found
