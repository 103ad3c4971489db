"""The twin's embedded lineage graph (ladybug) and the quirks the shared query texts work around."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from threadline_common.lineage import queries

from threadline.twin.batched_writes import node_merge, run_write, write_parts
from threadline.twin.graph_store import GraphQueryError, GraphStore


def test_schema_is_created_once_and_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "graph.lbug"
    with GraphStore(path) as store:
        store.run("MERGE (r:Run {`~id`: $id}) SET r.run_id = 'r1', r.status = 'RUNNING'", {"id": "Run:r1"})

    with GraphStore(path) as store:  # the CREATE ... IF NOT EXISTS statements run again harmlessly
        assert store.run("MATCH (r:Run) RETURN r.run_id AS run_id, r.status AS status") == [
            {"run_id": "r1", "status": "RUNNING"}]


def test_read_only_store_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "graph.lbug"
    with GraphStore(path) as store:
        store.run("MERGE (r:Run {`~id`: 'Run:tl'}) SET r.run_id = 'tl'")

    with GraphStore(path, read_only=True) as reader:
        assert reader.run("MATCH (r:Run) RETURN r.run_id AS name") == [{"name": "tl"}]
        with pytest.raises(GraphQueryError):
            reader.run("MERGE (r:Run {`~id`: 'Run:other'})")


def test_read_only_store_needs_an_existing_graph(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        GraphStore(tmp_path / "missing.lbug", read_only=True)


@pytest.mark.parametrize(
    ("query", "kind"),
    [("MATCH (n RETURN n", "parser"), ("MATCH (n:Nope) RETURN n", "binder"), ("RETURN toInteger(1)", "catalog")],
)
def test_query_errors_carry_their_kind(graph: GraphStore, query: str, kind: str) -> None:
    with pytest.raises(GraphQueryError) as raised:
        graph.run(query)

    assert raised.value.kind == kind


def test_integer_field_that_is_null_in_every_row_is_stored_as_null(graph: GraphStore) -> None:
    """ladybug types such a field STRING and refuses it for INT64; the stand-in sends a literal NULL, as
    Neptune would store it, so a write may keep what it does not know (`coalesce`)."""
    write = ("UNWIND $rows AS row\nMERGE (a:StepAttempt {`~id`: row.id})\n"
             "SET a.exit_code = coalesce(row.exit_code, a.exit_code)")

    graph.run(write, {"rows": [{"id": "a#1", "exit_code": None}, {"id": "a#2", "exit_code": 1}]})
    graph.run(write, {"rows": [{"id": "a#2", "exit_code": None}, {"id": "a#3", "exit_code": None}]})

    codes = graph.run("MATCH (a:StepAttempt) RETURN a.`~id` AS id, a.exit_code AS code ORDER BY id")
    assert codes == [{"id": "a#1", "code": None}, {"id": "a#2", "code": 1}, {"id": "a#3", "code": None}]
    with pytest.raises(GraphQueryError, match="STRING but expected INT64"):
        graph.run("MATCH (a:StepAttempt {`~id`: 'a#1'}) SET a.exit_code = $code", {"code": "one"})


def test_variable_length_paths_are_capped_at_30(graph: GraphStore) -> None:
    graph.run("MATCH (a:StepAttempt)-[:RETRY_OF*1..30]->(b:StepAttempt) RETURN b")
    with pytest.raises(GraphQueryError, match="exceeds maximum: 30"):
        graph.run("MATCH (a:StepAttempt)-[:RETRY_OF*1..31]->(b:StepAttempt) RETURN b")


NODE_WRITES = sorted(name for name, text in vars(queries).items()
                     if name.isupper() and isinstance(text, str) and re.search(r"MERGE \(\w+:\w+ \{", text))


@pytest.mark.parametrize("name", NODE_WRITES)
def test_every_node_write_runs_as_primary_key_lookups_not_a_table_scan(name: str) -> None:
    """The shape `batched_writes.node_merge` turns into a lookup, CREATE and MATCH; any other runs as it is."""
    merge = node_merge(getattr(queries, name))

    assert merge is not None and merge.key.endswith("_node")
    node_merge_text = re.compile(r"MERGE \(\w+:\w+")  # a relationship's MERGE between found nodes is no scan
    assert not node_merge_text.search(merge.create()) and not node_merge_text.search(merge.update() or "")


def test_a_batched_write_that_fails_leaves_nothing_half_written(graph: GraphStore) -> None:
    write = "UNWIND $rows AS row MERGE (a:StepAttempt {`~id`: row.id}) SET a.seq = row.seq"

    with pytest.raises(GraphQueryError):
        graph.run(write, {"rows": [{"id": "StepAttempt:a#1", "seq": 1}, {"id": "StepAttempt:a#1", "seq": "two"}]})
    assert graph.run("MATCH (a:StepAttempt) RETURN count(*) AS n") == [{"n": 0}]


def test_each_statement_is_planned_for_its_size_class_and_sent_only_the_fields_it_reads() -> None:
    """ladybug keeps the plan a text first got; a 2,000-row plan must not serve a 3-row batch."""
    sent: list[tuple[str, list[dict[str, object]]]] = []

    def execute(query: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        sent.append((query, list(parameters.get("rows") or parameters.get("keys") or [])))
        return []  # no key exists yet: every node is created

    for count in (3, 20):
        rows = [{"run_node": f"Run:r{n}", "run_id": f"r{n}", "pipeline": "p", "execution_arn": None,
                 "started_at": "2026-11-21T19:40:02.118Z", "unused": n} for n in range(count)]
        run_write(write_parts(queries.MERGE_RUN_STARTED, {"rows": rows}) or [], execute)

    assert [query.splitlines()[-1] for query, _ in sent] == [
        "// planned for up to 4 rows", "// planned for up to 4 rows",
        "// planned for up to 64 rows", "// planned for up to 64 rows"]
    created = [rows for query, rows in sent if "CREATE" in query]
    assert all(set(row) == {"run_node", "run_id", "pipeline", "started_at"} for rows in created for row in rows)
