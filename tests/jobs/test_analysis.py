"""The analysis job: backend choice, node split, determinism, the closed form, the S3 job."""

from __future__ import annotations

import math
import types
from statistics import NormalDist

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import backend as backend_module
from analysis.backend import numpy_backend, select_backend
from analysis.checkpoint import Checkpoint, Plan
from analysis.job import main, simulate_node
from analysis.model import (
    BLOCK_SCENARIOS,
    POSITION_CHUNK,
    Portfolio,
    PortfolioError,
    ScenarioSchedule,
    node_blocks,
    scenario_indices,
    simulate,
)
from jobkit.errors import UsageError
from jobkit.partials import read_partial
from jobkit.runner import run

from jobs_helpers import BUCKETS, REGION

NUMPY = numpy_backend()


def portfolio_table(n: int, seed: int = 5) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "position_id": [f"P{i}" for i in range(n)],
        "sector": rng.choice(["energy", "financials", "utilities"], n).tolist(),
        "quantity": rng.integers(-500, 1000, n).astype(float),
        "price": rng.uniform(5, 300, n),
        "annual_vol": rng.uniform(0.1, 0.6, n),
        "annual_drift": rng.uniform(-0.02, 0.1, n),
        "beta": rng.uniform(-0.3, 0.95, n),
    })


# --- backend selection (the GPU path itself cannot run without a GPU) -------------------------

class FakeRuntime:
    def __init__(self, devices: int | Exception):
        self.devices = devices

    def getDeviceCount(self) -> int:  # noqa: N802 - CuPy's name
        if isinstance(self.devices, Exception):
            raise self.devices
        return self.devices


def fake_cupy(devices: int | Exception) -> types.ModuleType:
    module = types.ModuleType("cupy")
    module.cuda = types.SimpleNamespace(runtime=FakeRuntime(devices))
    return module


def importer_for(module: types.ModuleType | None):
    def importer(name: str) -> types.ModuleType:
        assert name == "cupy"
        if module is None:
            raise ImportError("No module named 'cupy'")
        return module
    return importer


@pytest.mark.parametrize(("preference", "module", "expected"), [
    ("auto", None, "numpy"),
    ("auto", fake_cupy(0), "numpy"),
    ("auto", fake_cupy(RuntimeError("cudaErrorNoDevice")), "numpy"),
    ("auto", fake_cupy(1), "cupy"),
    ("numpy", fake_cupy(1), "numpy"),
    ("cupy", fake_cupy(2), "cupy"),
])
def test_backend_selection(preference, module, expected):
    chosen = select_backend(preference, importer_for(module))
    assert chosen.name == expected
    if expected == "cupy":
        assert chosen.xp is module


@pytest.mark.parametrize("module", [None, fake_cupy(0)])
def test_forcing_cupy_without_a_gpu_is_a_usage_error(module):
    with pytest.raises(UsageError, match="THREADLINE_ARRAY_BACKEND=cupy"):
        select_backend("cupy", importer_for(module))


def test_backend_from_environment(monkeypatch):
    monkeypatch.setenv(backend_module.ENV_VAR, "numpy")
    assert select_backend(importer=importer_for(fake_cupy(1))).name == "numpy"
    monkeypatch.setenv(backend_module.ENV_VAR, "tpu")
    with pytest.raises(UsageError):
        select_backend(importer=importer_for(None))


def test_cupy_is_not_installed_here():
    # The CPU image and the test environment must not carry CuPy.
    assert select_backend("auto").name == "numpy"


# --- model -------------------------------------------------------------------------------------

def test_node_blocks_partition_the_blocks():
    for blocks in (1, 5, 16, 17):
        for nodes in (1, 2, 3, 4, 8):
            shares = [node_blocks(blocks, k, nodes) for k in range(nodes)]
            assert [b for share in shares for b in share] == list(range(blocks))
            assert max(map(len, shares)) - min(map(len, shares)) <= 1
    with pytest.raises(ValueError):
        node_blocks(4, 2, 2)


@pytest.mark.parametrize("nodes", [2, 4])
def test_merged_result_is_bit_identical_for_any_node_count(nodes):
    portfolio = Portfolio.from_table(portfolio_table(POSITION_CHUNK + 37))  # two position chunks
    plan = ScenarioSchedule(scenarios=3 * BLOCK_SCENARIOS + 100, horizon_days=10, seed=11)
    _, single = simulate(portfolio, plan, node_blocks(plan.blocks, 0, 1), NUMPY)
    parts = [simulate(portfolio, plan, node_blocks(plan.blocks, k, nodes), NUMPY) for k in range(nodes)]
    scenario = np.concatenate([p[0] for p in parts])
    merged = np.concatenate([p[1] for p in parts])
    assert np.array_equal(scenario, np.arange(plan.scenarios))
    assert merged.tobytes() == single.tobytes()


# simulate_node does not check the plan: the job does, before it continues (test_analysis_sidecar.py).
CHECKPOINT_PLAN = Plan(scenarios=1, horizon_days=10.0, seed=3, num_nodes=1, node_index=0, block_size=BLOCK_SCENARIOS,
                       backend="numpy", input_uri="s3://b/clean.parquet", input_version_id=None, input_etag="e")


@pytest.mark.parametrize("nodes", [1, 3])
def test_continuing_after_any_block_is_bit_identical(nodes):
    portfolio = Portfolio.from_table(portfolio_table(40))
    plan = ScenarioSchedule(scenarios=4 * BLOCK_SCENARIOS + 9, horizon_days=10, seed=3)
    for node in range(nodes):
        blocks = node_blocks(plan.blocks, node, nodes)
        scenario, whole = simulate(portfolio, plan, blocks, NUMPY)
        assert np.array_equal(scenario_indices(plan, blocks), scenario)
        for done in range(1, len(blocks) + 1):
            first = simulate(portfolio, plan, blocks[:done], NUMPY)[1]
            start = Checkpoint(CHECKPOINT_PLAN, "r", done, first)
            assert simulate_node(portfolio, plan, blocks, NUMPY, start=start).tobytes() == whole.tobytes()


def test_seed_changes_the_result():
    portfolio = Portfolio.from_table(portfolio_table(10))
    a = simulate(portfolio, ScenarioSchedule(1000, 10, 1), range(1), NUMPY)[1]
    b = simulate(portfolio, ScenarioSchedule(1000, 10, 2), range(1), NUMPY)[1]
    assert not np.array_equal(a, b)


def test_single_position_var_matches_the_lognormal_closed_form():
    quantity, price, vol, drift, days = 3.0, 80.0, 0.3, 0.06, 10
    table = pa.table({"sector": ["energy"], "quantity": [quantity], "price": [price],
                      "annual_vol": [vol], "annual_drift": [drift], "beta": [0.0]})
    plan = ScenarioSchedule(scenarios=200_000, horizon_days=days, seed=2024)
    _, pnl = simulate(Portfolio.from_table(table), plan, range(plan.blocks), NUMPY)
    years = days / 252
    mean, sd = (drift - vol**2 / 2) * years, vol * math.sqrt(years)
    normal = NormalDist()
    exposure = quantity * price
    for level in (0.95, 0.99):
        z = normal.inv_cdf(1 - level)
        exact = -exposure * (math.exp(mean + sd * z) - 1)
        k = math.ceil(round(len(pnl) * (1 - level), 9))
        estimate = -np.sort(pnl)[k - 1]
        # Standard error of an empirical quantile: sqrt(p (1 - p) / n) / density at the quantile.
        x = -exact
        density = normal.pdf(z) / (sd * (exposure + x))
        stderr = math.sqrt(level * (1 - level) / len(pnl)) / density
        assert abs(estimate - exact) < 4 * stderr, (level, estimate, exact, stderr)
    # And the mean P&L matches E[exp(r)] - 1 within its own sampling error.
    exact_mean = exposure * (math.exp(mean + sd**2 / 2) - 1)
    assert abs(pnl.mean() - exact_mean) < 4 * pnl.std() / math.sqrt(len(pnl))


def test_sector_shocks_correlate_positions_of_one_sector():
    def pnl_std(sectors: list[str]) -> float:
        table = pa.table({"sector": sectors, "quantity": [1.0, 1.0], "price": [1.0, 1.0],
                          "annual_vol": [0.2, 0.2], "annual_drift": [0.0, 0.0], "beta": [0.9, 0.9]})
        plan = ScenarioSchedule(40_000, 252, 3)
        return float(simulate(Portfolio.from_table(table), plan, range(plan.blocks), NUMPY)[1].std())

    # Log returns correlate with beta^2 = 0.81 within a sector and not across sectors.
    same, apart = pnl_std(["energy", "energy"]), pnl_std(["energy", "utilities"])
    assert same / apart == pytest.approx(math.sqrt((2 + 2 * 0.81) / 2), rel=0.03)


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.slice(0, 0), "no positions"),
    (lambda t: t.drop_columns(["beta"]), "lack column"),
    (lambda t: t.set_column(6, "beta", pa.array([1.5] * t.num_rows)), "beta within"),
    (lambda t: t.set_column(3, "price", pa.array([float("nan")] * t.num_rows)), "non-finite"),
])
def test_unusable_positions_are_refused(change, message):
    with pytest.raises(PortfolioError, match=message):
        Portfolio.from_table(change(portfolio_table(4)))


# --- the job -----------------------------------------------------------------------------------

RUN = "r-analysis"


def job_args(scenarios: int = 9000) -> list[str]:
    return ["--run-id", RUN, "--input", f"s3://{BUCKETS['intermediate']}/runs/{RUN}/preprocess/clean.parquet",
            "--output-prefix", f"s3://{BUCKETS['intermediate']}/runs/{RUN}/analysis/",
            "--scenarios", str(scenarios), "--horizon-days", "10", "--seed", "7"]


def put_clean(tmp_path, n: int = 50) -> None:
    path = tmp_path / "clean.parquet"
    pq.write_table(portfolio_table(n), path)
    boto3.client("s3", region_name=REGION).upload_file(
        str(path), BUCKETS["intermediate"], f"runs/{RUN}/preprocess/clean.parquet")


def fetch_partial(tmp_path, node: int):
    path = tmp_path / f"node-{node}.parquet"
    boto3.client("s3", region_name=REGION).download_file(
        BUCKETS["intermediate"], f"runs/{RUN}/analysis/node-{node:04d}.parquet", str(path))
    return read_partial(path)


def test_job_writes_each_nodes_partial(aws, tmp_path, monkeypatch):
    put_clean(tmp_path)
    monkeypatch.setenv("AWS_BATCH_JOB_NUM_NODES", "2")
    for node in (0, 1):
        monkeypatch.setenv("AWS_BATCH_JOB_NODE_INDEX", str(node))
        assert run("analysis", main, job_args()) == 0
    (s0, p0, i0), (s1, p1, i1) = fetch_partial(tmp_path, 0), fetch_partial(tmp_path, 1)
    assert (i0.node_index, i0.num_nodes, i0.positions, i0.backend) == (0, 2, 50, "numpy")
    assert (i0.first_block, i0.end_block, i1.first_block, i1.end_block) == (0, 1, 1, 3)
    assert np.array_equal(np.concatenate([s0, s1]), np.arange(9000))
    assert len(p0) + len(p1) == 9000


def test_job_defaults_to_one_node(aws, tmp_path):
    put_clean(tmp_path, 5)
    assert run("analysis", main, job_args(100)) == 0
    _scenario, pnl, info = fetch_partial(tmp_path, 0)
    assert info.num_nodes == 1 and len(pnl) == 100


@pytest.mark.parametrize(("index", "count", "text"), [("2", "2", "does not fit"), ("x", "2", "not an integer")])
def test_job_refuses_bad_node_variables(aws, capsys, monkeypatch, index, count, text):
    monkeypatch.setenv("AWS_BATCH_JOB_NODE_INDEX", index)
    monkeypatch.setenv("AWS_BATCH_JOB_NUM_NODES", count)
    assert run("analysis", main, job_args()) == 2
    assert text in capsys.readouterr().err


def test_job_reports_unreadable_input(aws, capsys):
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=BUCKETS["intermediate"], Key=f"runs/{RUN}/preprocess/clean.parquet", Body=b"not parquet")
    assert run("analysis", main, job_args()) == 1
    assert "threadline-error: cannot read the clean positions" in capsys.readouterr().err


def test_nodes_without_blocks_still_write_a_partial(aws, tmp_path, monkeypatch):
    put_clean(tmp_path, 5)
    monkeypatch.setenv("AWS_BATCH_JOB_NUM_NODES", "3")
    for node in (0, 1, 2):
        monkeypatch.setenv("AWS_BATCH_JOB_NODE_INDEX", str(node))
        assert run("analysis", main, job_args(100)) == 0
    sizes = [len(fetch_partial(tmp_path, node)[1]) for node in (0, 1, 2)]
    assert sorted(sizes) == [0, 0, 100]
