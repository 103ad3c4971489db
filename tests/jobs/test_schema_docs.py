"""The schema file drives the docs table and the sample generator's sectors."""

from __future__ import annotations

import pytest

from preprocess.schema import SchemaError, load_schema, markdown_table, parse_schema
from threadline import samples

from jobs_helpers import JOBS

START, END = "<!-- schema-table:start -->\n", "<!-- schema-table:end -->"


def test_readme_table_is_generated_from_the_schema_file():
    readme = (JOBS / "README.md").read_text(encoding="utf-8")
    table = readme.split(START, 1)[1].split(END, 1)[0]
    assert table == markdown_table(load_schema())


def test_schema_content():
    schema = load_schema()
    assert schema.names == samples.COLUMNS
    assert schema.unique_key == ("position_id",)
    assert schema.column("sector").allowed == samples.SECTORS
    assert schema.column("price").lower_bound == (0.0, False)
    assert schema.column("annual_vol").upper_bound == (5.0, True)
    assert schema.column("quantity").lower_bound is None


@pytest.mark.parametrize("raw", [
    {"columns": []},
    {"columns": [{"name": "a", "type": "date"}]},
    {"columns": [{"name": "a", "type": "string", "minimum": 1}]},
    {"columns": [{"name": "a", "type": "number", "minimum": 1, "exclusive_minimum": 0}]},
    {"columns": [{"name": "a", "type": "string"}, {"name": "a", "type": "string"}]},
    {"columns": [{"name": "a", "type": "string"}], "unique_key": ["b"]},
    {"columns": [{"name": "a", "type": "string", "colour": "red"}]},
    {"columns": [{"name": "a", "type": "string", "allowed": ["x", " "]}]},
    {"columns": [{"name": "a", "type": "string", "allowed": ["x", "xyz"], "max_length": 2}]},
])
def test_bad_schemas_are_refused(raw):
    with pytest.raises(SchemaError):
        parse_schema(raw)
