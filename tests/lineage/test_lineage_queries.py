"""The questions users ask the graph: upstream, downstream, a run, failures, the picture; and the CLI."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from threadline_common.lineage import downstream, failures, run_report, upstream
from threadline_common.lineage.reader import parse_since
from typer.testing import CliRunner

from threadline.cli.lineage import app

RESULTS = "s3://threadline-results-123456789012/runs/"


@pytest.fixture
def recorded(neptune_env: Any, record_lineage: Any, sample_event: Any, lambda_context: Any) -> dict[str, Any]:
    """Two runs of one input: the sample (Spot lost, On-Demand fallback, success) and one whose analysis failed."""
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    record_lineage.handler(started, lambda_context)
    record_lineage.handler(finished, lambda_context)

    failed_id = "sample-positions-failed0000000000"
    failed = json.loads(json.dumps(finished).replace(started["run_id"], failed_id))  # the run's own paths
    analysis = copy.deepcopy(failed["jobs"]["analysis"])
    analysis.update(JobId="an-failed", Status="FAILED", StatusReason="Essential container in task exited")
    analysis["Attempts"][0]["Container"]["ExitCode"] = 3
    failed["jobs"] = {"preprocess_on_demand": failed["jobs"]["preprocess_on_demand"]}
    failed["jobs"]["preprocess_on_demand"]["JobId"] = "pre-2"
    failed["failures"] = {"analysis": {"Error": "States.TaskFailed", "Cause": json.dumps(analysis), "Job": analysis}}
    failed.update(status="FAILED", error={"Error": "AnalysisFailed", "Cause": json.dumps(analysis)})
    record_lineage.handler({**started, "run_id": failed_id}, lambda_context)
    record_lineage.handler(failed, lambda_context)
    return {"ok": started["run_id"], "failed": failed_id, "source": started["source"]}


def test_upstream_of_a_report_goes_back_to_the_input_with_images_and_parameters(runner, recorded) -> None:
    tree = upstream(runner, f"{RESULTS}{recorded['ok']}/report.json")  # inside the recorded report prefix

    [root] = tree.tree
    assert root.dataset.uri == f"{RESULTS}{recorded['ok']}/"
    [post] = root.steps
    assert post.attempt.step == "postprocess" and post.attempt.parameters["num_nodes"] == "2"
    analysis = next(d for d in post.datasets if d.dataset.uri.endswith("/analysis/"))
    [made] = analysis.steps
    assert "/threadline/analysis@sha256:" in made.attempt.image
    assert [a.step for a in tree.attempts] == ["preprocess", "analysis", "postprocess"]
    inputs = [d for d in tree.datasets if d.uri == recorded["source"]["uri"]]
    assert inputs and inputs[0].version == recorded["source"]["version_id"]
    # Only the attempt that succeeded produced anything: the Spot attempts are not in the upstream tree.
    assert all(a.status == "SUCCEEDED" for a in tree.attempts)
    # As --json prints it: the upstream keys, no runs.
    printed = tree.to_dict()
    assert list(printed) == ["uri", "roots", "tree", "levels", "datasets", "attempts"]
    assert printed["tree"][0]["produced_by"][0]["consumed"][0]["dataset"] == post.datasets[0].dataset.to_dict()


def test_downstream_of_the_input_reaches_every_run_and_step_that_used_it(runner, recorded) -> None:
    tree = downstream(runner, recorded["source"]["uri"])

    assert sorted(r.run_id for r in tree.runs) == sorted([recorded["ok"], recorded["failed"]])
    by_run: dict[str | None, list[tuple[str | None, str | None]]] = {}
    for attempt in tree.attempts:
        by_run.setdefault(attempt.run_id, []).append((attempt.step, attempt.status))
    assert ("analysis", "FAILED") in by_run[recorded["failed"]]  # failed attempts are downstream too
    assert ("postprocess", "SUCCEEDED") in by_run[recorded["ok"]]
    assert ("preprocess", "FAILED") in by_run[recorded["ok"]]  # the Spot-reclaimed attempts read it as well
    printed = tree.to_dict()
    assert list(printed) == ["uri", "roots", "tree", "levels", "datasets", "attempts", "runs"]
    assert set(printed["tree"][0]) == {"dataset", "consumed_by"}
    assert set(printed["tree"][0]["consumed_by"][0]) == {"attempt", "produced"}


def test_run_report_lists_attempts_in_order_with_fallbacks_and_reasons(runner, recorded) -> None:
    report = run_report(runner, recorded["ok"])

    steps = [(a.job_key, a.attempt, a.status) for a in report.attempts]
    assert steps[:4] == [("preprocess", 1, "FAILED"), ("preprocess", 2, "FAILED"), ("preprocess", 3, "FAILED"),
                         ("preprocess_on_demand", 1, "SUCCEEDED")]
    assert report.attempts[0].retried and report.attempts[3].fallback_of == report.attempts[2].attempt_id
    assert report.attempts[0].status_reason.startswith("Host EC2")
    printed = report.to_dict()
    assert list(printed) == ["run", "attempts", "links", "datasets", "containers"]
    assert printed["containers"] == []  # plain single-container attempts only
    assert list(printed["attempts"][0])[-3:] == ["parameters", "retried", "fallback_of"]
    assert "run_id" not in printed["attempts"][0] and "parameters_json" not in printed["attempts"][0]
    assert run_report(runner, "no-such-run") is None


def test_failures_group_failed_steps_by_reason_and_name_the_failed_runs(runner, recorded) -> None:
    found = failures(runner, "2026-11-01T00:00:00.000Z")

    groups = {(g.step, (g.reason or "")[:9], g.exit_code): g for g in found.by_reason}
    assert groups[("preprocess", "Host EC2 ", None)].attempts == 3
    assert groups[("analysis", "Essential", 3)].run_ids == (recorded["failed"],)
    assert groups[("analysis", "Essential", 3)].to_dict()["run_ids"] == [recorded["failed"]]
    [run] = found.runs
    assert (run.run_id, run.error, run.step, run.exit_code) == (recorded["failed"], "AnalysisFailed", "analysis", 3)
    assert failures(runner, "2027-01-01T00:00:00.000Z").to_dict() == {"since": "2027-01-01T00:00:00.000Z",
                                                                      "by_reason": [], "runs": []}


def test_since_accepts_durations_and_dates() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == "2026-11-14T12:00:00.000Z"
    assert parse_since("90m", now) == "2026-11-21T10:30:00.000Z"
    assert parse_since("2026-11-01", now) == "2026-11-01T00:00:00.000Z"
    with pytest.raises(ValueError, match="7d"):
        parse_since("last week", now)


def test_cli_answers_in_json_through_the_neptunedata_endpoint(neptune_env, recorded, tmp_path) -> None:
    cli = CliRunner()
    endpoint = ["--endpoint", neptune_env.url, "--region", "us-east-1"]

    run = cli.invoke(app, ["run", recorded["failed"], *endpoint, "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["run"]["error"] == "AnalysisFailed"

    down = cli.invoke(app, ["downstream", recorded["source"]["uri"], *endpoint, "--json"])
    assert len(json.loads(down.output)["runs"]) == 2

    up = cli.invoke(app, ["upstream", f"{RESULTS}{recorded['ok']}/", *endpoint])
    assert up.exit_code == 0 and "made by postprocess" in up.output and "analysis@sha256:693ca7c8" in up.output

    failed = cli.invoke(app, ["failures", "--since", "3650d", *endpoint, "--json"])
    assert [r["run_id"] for r in json.loads(failed.output)["runs"]] == [recorded["failed"]]

    page = tmp_path / "run.html"
    shown = cli.invoke(app, ["show", recorded["ok"], "-o", str(page), *endpoint])
    assert shown.exit_code == 0, shown.output
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "<svg" in html and "<script" not in html
    assert "preprocess_on_demand" in html and "fallback of" in html.replace("_", " ")

    missing = cli.invoke(app, ["run", "no-such-run", *endpoint])
    assert missing.exit_code == 1


def test_cli_reads_the_twins_graph_file_when_no_endpoint_is_given(graph, recorded, tmp_path) -> None:
    from threadline.twin.graph_store import GraphStore, graph_path

    cli = CliRunner()
    assert cli.invoke(app, ["run", recorded["ok"], "--workdir", str(tmp_path)]).exit_code == 2  # no graph there

    workdir = tmp_path / "twin"
    with GraphStore(graph_path(workdir)) as store:
        store.run("MERGE (r:Run {`~id`: 'Run:r1'}) SET r.run_id = 'r1', r.status = 'SUCCEEDED'")
    result = cli.invoke(app, ["run", "r1", "--workdir", str(workdir), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["run"]["status"] == "SUCCEEDED"
