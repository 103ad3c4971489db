"""A batch's writes go to the graph as one chained openCypher request: one round trip, one transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ladybug
import pytest
from threadline_common.lineage import NeptuneCypher, parse_lineage_event, queries, record_events, run_summary
from threadline_common.lineage.chain import chained, requests
from threadline_common.lineage.graph import Write, combine
from threadline_common.lineage.neptune import LineageGraphError
from threadline_common.lineage.record import plan_for

from threadline.twin.graph_store import SCHEMA, GraphQueryError, GraphStore
from threadline.twin.neptune_standin import NeptuneStandin

PIPELINE = "threadline"
RUN = {"run_node": "Run:r1", "run_id": "r1", "pipeline": PIPELINE, "execution_arn": None, "started_at": None}
DATASET = {"dataset_node": "Dataset:s3://b/k", "dataset_id": "s3://b/k", "uri": "s3://b/k", "kind": "object",
           "version": None, "etag": "e1", "size": 10, "row_count": 3, "schema": None, "schema_hash": None}


def _batch(sample_event: Any) -> list[tuple[Any, tuple[()]]]:
    return [(parse_lineage_event(sample_event(name)), ()) for name in ("lineage_run_started.json",
                                                                       "lineage_run_finished.json")]


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {row["label"]: row["n"] for row in rows}


COUNT_NODES = "MATCH (n) RETURN label(n) AS label, count(*) AS n"


def test_a_batch_is_one_request_holding_every_write_in_dependency_order(
        neptune_env: NeptuneStandin, runner: NeptuneCypher, sample_event: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[str] = []
    execute = neptune_env.execute

    def recording(query: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        received.append(query)
        return execute(query, parameters)

    monkeypatch.setattr(neptune_env, "execute", recording)
    batch = _batch(sample_event)
    plan = combine(plan_for(event, PIPELINE, facts) for event, facts in batch)
    before = neptune_env.queries_served

    result = record_events(runner, batch, PIPELINE)

    assert result.queries == 1 and neptune_env.queries_served - before == 1
    [query] = received
    assert query == chained(plan.writes)[0]  # what the stand-in got is what Neptune gets
    assert query.count("WITH count(*) AS _") == len(plan.writes) - 1 > 5
    summary = run_summary(runner, batch[0][0].run_id)
    assert summary.run.status == "SUCCEEDED" and len(summary.attempts) == 6


def test_a_part_that_matches_nothing_does_not_stop_the_parts_after_it(graph: GraphStore, tmp_path: Path) -> None:
    """Checked on the stand-in and on ladybug running the composed text itself, as any openCypher engine would."""
    writes = [Write(queries.MERGE_RUN_STARTED, [RUN]),
              Write(queries.LINK_RUN_CONSUMED, [{"run_node": "Run:r1", "dataset_node": "Dataset:nowhere"}]),
              Write(queries.MERGE_DATASETS, [DATASET])]
    query, parameters = chained(writes)

    graph.run(query, parameters)

    native = ladybug.Connection(ladybug.Database(str(tmp_path / "native.lbdb")))
    for statement in SCHEMA:
        native.execute(statement)
    native.execute(query, parameters)
    native_counts = {label: n for label, n in native.execute(COUNT_NODES).get_all()}
    assert _counts(graph.run(COUNT_NODES)) == native_counts == {"Run": 1, "Dataset": 1}


def test_a_part_with_no_rows_does_not_stop_the_parts_after_it(graph: GraphStore) -> None:
    query, parameters = chained([Write(queries.MERGE_RUN_STARTED, [RUN]), Write(queries.SET_ATTEMPT_COSTS, []),
                                 Write(queries.MERGE_DATASETS, [DATASET])])

    graph.run(query, parameters)

    assert _counts(graph.run(COUNT_NODES)) == {"Run": 1, "Dataset": 1}


def test_a_part_that_fails_leaves_nothing_of_the_request_written(graph: GraphStore) -> None:
    failing = "UNWIND $rows AS row\nMERGE (a:StepAttempt {`~id`: row.id})\nSET a.seq = row.seq\n"
    query, parameters = chained([Write(queries.MERGE_RUN_STARTED, [RUN]), Write(queries.MERGE_DATASETS, [DATASET]),
                                 Write(failing, [{"id": "StepAttempt:a#1", "seq": "two"}])])

    with pytest.raises(GraphQueryError):
        graph.run(query, parameters)

    assert graph.run(COUNT_NODES) == []


def test_a_malformed_part_is_refused_as_neptune_refuses_it(neptune_env: NeptuneStandin, runner: NeptuneCypher) -> None:
    broken = "UNWIND $rows AS row\nMERGE (r:Run {`~id`: row.run_node})\nSET r.status =\n"
    query, parameters = chained([Write(queries.MERGE_RUN_STARTED, [RUN]), Write(broken, [RUN])])

    with pytest.raises(LineageGraphError) as raised:
        runner.run(query, parameters)

    assert raised.value.code == "MalformedQueryException" and not raised.value.unavailable
    assert runner.run(COUNT_NODES) == []


def test_a_chain_missing_a_part_parameter_fails_rather_than_skipping_the_part(graph: GraphStore) -> None:
    query, parameters = chained([Write(queries.MERGE_RUN_STARTED, [RUN]), Write(queries.MERGE_DATASETS, [DATASET])])
    del parameters["w1"]

    with pytest.raises(GraphQueryError, match="w1"):
        graph.run(query, parameters)

    assert graph.run(COUNT_NODES) == []


def test_requests_keep_the_rows_in_order_within_the_row_budget() -> None:
    writes = [Write("UNWIND $rows AS row A", [{"i": i} for i in range(3)]),
              Write("UNWIND $rows AS row B", [{"i": i} for i in range(7)]),
              Write("UNWIND $rows AS row C", [{"i": 0}])]

    sent = list(requests(writes, budget=4))

    assert [sum(len(w.rows) for w in request) for request in sent] == [3, 4, 4]
    assert [(w.query[-1], w.rows) for request in sent for w in request] == [
        ("A", writes[0].rows), ("B", writes[1].rows[:4]), ("B", writes[1].rows[4:]), ("C", writes[2].rows)]
    assert [len(request) for request in sent] == [1, 1, 2]  # a write that fits is never cut


def test_a_request_of_one_write_is_sent_as_that_write() -> None:
    write = Write(queries.MERGE_DATASETS, [DATASET])

    assert chained([write]) == (queries.MERGE_DATASETS, {"rows": [DATASET]})


def test_links_at_new_nodes_are_made_once_however_often_a_request_names_them(graph: GraphStore) -> None:
    """The stand-in CREATEs a link it knows cannot exist yet; repeated rows and parts still make one."""
    attempts = [{"attempt_node": f"StepAttempt:j#{n}", "attempt_id": f"j#{n}", "run_node": "Run:r1", "step": "analysis",
                 "seq": n, "attempt": n, "node_count": 1, "status": "FAILED", "exit_code": n} for n in (1, 2)]
    retry = {"src": "StepAttempt:j#2", "dst": "StepAttempt:j#1"}
    writes = [Write(queries.MERGE_RUN_STARTED, [RUN]), Write(queries.MERGE_JOB_ATTEMPTS, attempts),
              Write(queries.LINK_RETRY_OF, [retry, retry]), Write(queries.LINK_RETRY_OF, [retry])]

    graph.run(*chained(writes))
    graph.run(*chained(writes))

    count = "MATCH ()-[e:{}]->() RETURN count(*) AS n"
    assert [graph.run(count.format(kind))[0]["n"] for kind in ("RETRY_OF", "PART_OF")] == [1, 2]
