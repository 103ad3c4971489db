"""Post-processing: risk figures, partial checks, the report and the run record."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import boto3
import numpy as np
import pytest

from jobkit.partials import PartialInfo, partial_name, write_partial
from jobkit.runner import run
from postprocess.job import main
from postprocess.risk import expected_shortfall, risk_figures, tail_count, value_at_risk
from postprocess.runrecord import to_dynamo

from jobs_helpers import BUCKETS, REGION, RUN_TABLE

RUN = "r-post"
PARTIALS = f"runs/{RUN}/analysis/"


def test_tail_count_and_figures_on_a_known_sample():
    assert tail_count(1000, 0.95) == 50 and tail_count(1000, 0.99) == 10 and tail_count(1000, 0.975) == 25
    assert tail_count(10, 0.99) == 1
    pnl = np.arange(-500.0, 500.0)  # -500 .. 499, sorted
    ordered = np.sort(pnl)
    assert value_at_risk(ordered, 0.95) == 451.0  # 50th worst is -451
    assert value_at_risk(ordered, 0.99) == 491.0
    assert expected_shortfall(ordered, 0.975) == pytest.approx(488.0)  # mean of -500..-476
    figures = risk_figures(np.random.default_rng(1).permutation(pnl))
    assert (figures.var_95, figures.var_99, figures.es_975) == (451.0, 491.0, pytest.approx(488.0))
    assert figures.es_975 >= figures.var_95


def test_dynamo_values_use_decimal():
    assert to_dynamo({"a": 1.25, "b": [2, 0.1], "c": "x"}) == {"a": Decimal("1.25"), "b": [2, Decimal("0.1")], "c": "x"}
    with pytest.raises(ValueError):
        to_dynamo(float("nan"))


def info(node: int, nodes: int, scenarios: int, **changes) -> PartialInfo:
    base = dict(run_id=RUN, node_index=node, num_nodes=nodes, scenarios=scenarios, seed=1, horizon_days=10.0,
                block_size=4096, first_block=node, end_block=node + 1, backend="numpy", positions=3,
                gross_exposure=1000.0, net_exposure=800.0, elapsed_s=0.5 + node)
    base.update(changes)
    return PartialInfo(**base)


def put_partials(tmp_path, nodes: int, scenarios: int = 2000, skip: tuple[int, ...] = (), extra: int | None = None,
                 **changes) -> np.ndarray:
    pnl = np.random.default_rng(9).normal(0, 100, scenarios)
    bounds = np.linspace(0, scenarios, nodes + 1).astype(int)
    s3 = boto3.client("s3", region_name=REGION)
    for node in [*range(nodes), *([extra] if extra is not None else [])]:
        if node in skip:
            continue
        lo, hi = (bounds[node], bounds[node + 1]) if node < nodes else (0, 0)
        path = tmp_path / partial_name(node)
        write_partial(path, np.arange(lo, hi), pnl[lo:hi], info(node, nodes, scenarios, **changes))
        s3.upload_file(str(path), BUCKETS["intermediate"], PARTIALS + partial_name(node))
    return pnl


def put_validation(status: str = "passed") -> None:
    body = {"status": status, "rows": {"read": 105, "accepted": 100, "rejected": 5}, "duration_s": 1.5}
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=BUCKETS["intermediate"], Key=f"runs/{RUN}/preprocess/validation.json", Body=json.dumps(body))


def args(nodes: int) -> list[str]:
    return ["--run-id", RUN, "--partials-prefix", f"s3://{BUCKETS['intermediate']}/{PARTIALS}",
            "--num-nodes", str(nodes),
            "--validation-uri", f"s3://{BUCKETS['intermediate']}/runs/{RUN}/preprocess/validation.json",
            "--report-prefix", f"s3://{BUCKETS['results']}/runs/{RUN}/"]


@pytest.fixture
def run_table(aws, monkeypatch):
    monkeypatch.setenv("RUN_TABLE", RUN_TABLE)
    client = boto3.client("dynamodb", region_name=REGION)
    client.put_item(TableName=RUN_TABLE, Item={"run_id": {"S": RUN}, "status": {"S": "RUNNING"},
                                               "execution_arn": {"S": "arn:aws:states:...:exec"}})
    return client


def test_report_and_run_record(run_table, tmp_path):
    pnl = put_partials(tmp_path, nodes=3)
    put_validation()
    assert run("postprocess", main, args(3)) == 0
    s3 = boto3.client("s3", region_name=REGION)
    report = json.loads(s3.get_object(Bucket=BUCKETS["results"], Key=f"runs/{RUN}/report.json")["Body"].read())
    expected = risk_figures(pnl)
    assert report["risk"]["var_99"] == expected.var_99 and report["risk"]["scenarios"] == 2000
    assert report["run"]["accepted_rows"] == 100 and report["run"]["num_nodes"] == 3
    html = s3.get_object(Bucket=BUCKETS["results"], Key=f"runs/{RUN}/report.html")["Body"].read().decode()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    for label in ("VaR 95%", "VaR 99%", "ES 97.5%"):
        assert label in html
    assert not re.search(r"(src|href)\s*=", html) and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    item = run_table.get_item(TableName=RUN_TABLE, Key={"run_id": {"S": RUN}})["Item"]
    assert item["status"] == {"S": "SUCCEEDED"}
    assert item["execution_arn"] == {"S": "arn:aws:states:...:exec"}  # kept
    assert item["accepted_rows"] == {"N": "100"} and item["rejected_rows"] == {"N": "5"}
    assert Decimal(item["risk"]["M"]["var_95"]["N"]) == Decimal(repr(expected.var_95))
    assert item["outputs"]["M"]["report_html"] == {"S": f"s3://{BUCKETS['results']}/runs/{RUN}/report.html"}
    assert set(item["durations_s"]["M"]) == {"preprocess", "analysis", "postprocess"}
    assert item["durations_s"]["M"]["analysis"] == {"N": "2.5"}


def replace_partial(tmp_path, node: int, scenario: np.ndarray, partial: PartialInfo) -> None:
    path = tmp_path / "replacement.parquet"
    write_partial(path, scenario, np.zeros(len(scenario)), partial)
    boto3.client("s3", region_name=REGION).upload_file(str(path), BUCKETS["intermediate"],
                                                       PARTIALS + partial_name(node))


@pytest.mark.parametrize(("setup", "text"), [
    (dict(skip=(1,)), "missing partial from node 1 (node-0001.parquet)"),
    (dict(extra=3), "unexpected partial from node 3 (node-0003.parquet)"),
    (dict(num_nodes=4), "partial from node 0 was written for 4 node(s), not 3"),
])
def test_partial_problems_name_the_node(run_table, tmp_path, capsys, setup, text):
    put_partials(tmp_path, nodes=3, **setup)
    put_validation()
    assert run("postprocess", main, args(3)) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"threadline-error: {text}")
    item = run_table.get_item(TableName=RUN_TABLE, Key={"run_id": {"S": RUN}})["Item"]
    assert item["status"] == {"S": "RUNNING"}


def test_partial_from_another_plan_is_an_error(run_table, tmp_path, capsys):
    put_partials(tmp_path, nodes=3)
    replace_partial(tmp_path, 2, np.arange(1333, 2000), info(2, 3, 2000, seed=99))
    put_validation()
    assert run("postprocess", main, args(3)) == 1
    assert "partial from node 2 disagrees with node 0 on seed" in capsys.readouterr().err


def test_partials_of_two_runs_do_not_mix(run_table, tmp_path, capsys):
    put_partials(tmp_path, nodes=3)
    replace_partial(tmp_path, 2, np.arange(1333, 2000), info(2, 3, 2000, run_id="another-run"))
    put_validation()
    assert run("postprocess", main, args(3)) == 1
    assert "partial from node 2 disagrees with node 0 on run_id" in capsys.readouterr().err


def test_an_earlier_runs_analysis_is_merged_for_a_resumed_run(run_table, tmp_path):
    """A resumed run reuses an earlier run's partials: one run id among them, not this run's."""
    put_partials(tmp_path, nodes=3, run_id="earlier-run")
    put_validation()
    assert run("postprocess", main, args(3)) == 0


def test_gap_in_scenarios_is_an_error(run_table, tmp_path, capsys):
    put_partials(tmp_path, nodes=2, scenarios=1000)
    replace_partial(tmp_path, 1, np.arange(500, 999), info(1, 2, 1000))
    put_validation()
    assert run("postprocess", main, args(2)) == 1
    assert "do not cover scenarios 0..999 exactly once" in capsys.readouterr().err


def test_failed_validation_or_missing_table_is_refused(aws, tmp_path, capsys, monkeypatch):
    put_partials(tmp_path, nodes=1)
    put_validation()
    assert run("postprocess", main, args(1)) == 2
    assert "RUN_TABLE is not set" in capsys.readouterr().err
    monkeypatch.setenv("RUN_TABLE", RUN_TABLE)
    put_validation("failed")
    assert run("postprocess", main, args(1)) == 1
    assert "did not pass validation" in capsys.readouterr().err
