"""The shapes that keep lineage fast at scale: a walk costs queries per level, not per dataset, and a
batch's writes go in few statements that the embedded graph runs on its primary-key index."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from threadline_common.lineage import downstream, parse_lineage_event, queries, record_event, upstream

from threadline.twin.batched_writes import node_merge, untyped_nulls
from threadline.twin.graph_store import GraphStore

PIPELINE = "threadline"


class CountingRunner:
    """The graph, counting the queries sent to it."""

    def __init__(self, graph: GraphStore) -> None:
        self.graph = graph
        self.sent = 0

    def run(self, query: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self.sent += 1
        return self.graph.run(query, parameters)


def _version(event: dict[str, Any], n: int) -> dict[str, Any]:
    """The sample run again as run n: its own run id and jobs, reading version n of the same file."""
    text = json.dumps(event)
    for job_id in set(re.findall(r'"JobId": "([^"]+)"', text)):
        text = text.replace(job_id, f"{job_id}-{n}")
    text = text.replace(event["run_id"], f"{event['run_id']}-{n}")
    copy: dict[str, Any] = json.loads(text)
    copy["source"]["version_id"] = f"v{n}"
    return copy


def _record_versions(graph: GraphStore, sample_event: Callable[[str], Any], versions: int) -> str:
    finished = sample_event("lineage_run_finished.json")
    for n in range(versions):
        record_event(graph, parse_lineage_event(_version(finished, n)), PIPELINE)
    return str(finished["source"]["uri"])


def test_downstream_sends_the_same_queries_however_many_versions_it_meets(
        tmp_path: Any, sample_event: Callable[[str], Any]) -> None:
    sent: dict[int, int] = {}
    for versions in (1, 4):
        with GraphStore(tmp_path / f"{versions}" / "graph.lbug") as graph:
            uri = _record_versions(graph, sample_event, versions)
            runner = CountingRunner(graph)
            tree = downstream(runner, uri)
            sent[versions] = runner.sent
            assert len(tree.roots) == len(tree.runs) == versions and tree.levels >= 2
            assert {a.step for a in tree.attempts} == {"preprocess", "analysis", "postprocess"}

    assert sent[4] == sent[1] <= 3 + 2 * tree.levels  # resolve, a level query and its related one, the runs


def test_upstream_of_a_report_walks_back_to_the_input_in_two_queries_a_level(
        graph: GraphStore, sample_event: Callable[[str], Any]) -> None:
    source = _record_versions(graph, sample_event, 3)
    report = next(row["uri"] for row in graph.run(
        "MATCH (a:StepAttempt {step: 'postprocess'})-[:PRODUCED]->(d:Dataset) RETURN d.uri AS uri LIMIT 1"))
    runner = CountingRunner(graph)

    tree = upstream(runner, report)

    assert any(d.uri == source for d in tree.datasets)
    assert runner.sent <= 1 + 2 * tree.levels


def test_a_walk_finds_what_each_dataset_of_a_level_leads_to(graph: GraphStore,
                                                              sample_event: Callable[[str], Any]) -> None:
    """Four versions walked together: each version's tree holds its own run's attempts, no other's."""
    uri = _record_versions(graph, sample_event, 4)

    tree = downstream(graph, uri)

    for root in tree.tree:
        runs = {step.attempt.run_id for step in root.steps}
        assert runs == {f"{sample_event('lineage_run_finished.json')['run_id']}-{root.dataset.version[1:]}"}


def test_an_attempt_write_links_its_run_once_however_often_it_is_written(graph: GraphStore,
                                                                          sample_event: Callable[[str], Any]) -> None:
    event = parse_lineage_event(sample_event("lineage_run_finished.json"))
    record_event(graph, event, PIPELINE)
    record_event(graph, event, PIPELINE)

    links = graph.run("MATCH (a:StepAttempt)-[:PART_OF]->(r:Run) RETURN a.attempt_id AS a, count(*) AS n")
    attempts = graph.run("MATCH (a:StepAttempt) RETURN count(*) AS n")[0]["n"]
    assert len(links) == attempts > 0 and all(link["n"] == 1 for link in links)


def test_a_node_write_with_links_after_it_is_split_into_key_lookups() -> None:
    merge = node_merge(queries.MERGE_STEP_ATTEMPTS)

    assert merge is not None and merge.then
    create, update = merge.create(), merge.update() or ""
    link = "WITH a, row\nMATCH (r:Run {`~id`: row.run_node})\n"
    assert create.startswith("UNWIND $rows AS row\nCREATE (a:StepAttempt {`~id`: row.attempt_node, `attempt_id`: ")
    assert create.endswith(link + "CREATE (a)-[:PART_OF]->(r)")  # a node just created has no links to MERGE with
    assert update.startswith("UNWIND $rows AS row\nMATCH (a:StepAttempt {`~id`: row.attempt_node})\nSET ")
    assert update.endswith(link + "MERGE (a)-[:PART_OF]->(r)")


def test_attempt_rows_of_an_unknown_run_write_the_attempt_and_no_link(graph: GraphStore) -> None:
    """As on Neptune: the MATCH after `WITH a, row` finds no run, so that row links nothing."""
    row = {"attempt_node": "StepAttempt:j#1", "attempt_id": "j#1", "run_node": "Run:nowhere", "step": "analysis",
           "seq": 1, "attempt": 1, "node_count": 1, "status": "SUCCEEDED", "exit_code": None}
    graph.run(queries.MERGE_JOB_ATTEMPTS, {"rows": [row]})

    assert graph.run("MATCH (a:StepAttempt) RETURN a.attempt_id AS a, a.exit_code AS code") == [
        {"a": "j#1", "code": None}]
    assert graph.run("MATCH ()-[e:PART_OF]->() RETURN count(*) AS n") == [{"n": 0}]


def test_only_fields_null_in_every_row_become_literal_nulls() -> None:
    query = ("UNWIND $rows AS row\nMATCH (d:Dataset {`~id`: row.k})\n"
             "SET d.size = coalesce(row.size, d.size), d.etag = row.etag")

    rewritten = untyped_nulls(query, [{"k": "a", "size": None, "etag": "e"}, {"k": "b", "etag": None}])

    assert "coalesce(NULL, d.size)" in rewritten and "d.etag = row.etag" in rewritten and "row.k" in rewritten
