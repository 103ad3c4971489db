"""The analysis job's shared folder, its progress sidecar, and resuming from a shipped checkpoint."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time

import boto3
import numpy as np
import pytest
from test_analysis import RUN, fetch_partial, job_args, put_clean

from analysis import model, recorder
from analysis.checkpoint import Checkpoint, CheckpointError, Plan
from analysis.job import main
from analysis.model import BLOCK_SCENARIOS, ScenarioSchedule
from analysis.recorder import Recorder
from analysis.shared import CHECKPOINT_FILE, PROGRESS_FILE, SHARED_DIR_ENV, checkpoint_uri, progress_uri
from analysis.sidecar import INTERVAL_ENV, Shipper, main as sidecar_main
from jobkit.aws import S3
from jobkit.runner import run
from jobkit.s3uri import S3Uri
from threadline.cli.progress import job_line
from threadline.twin.run_progress import JobView, analysis_progress

from jobs_helpers import BUCKETS, JOBS, REGION, create_resources

SCENARIOS = 4 * BLOCK_SCENARIOS + 100  # five blocks, the last one short
PREFIX = S3Uri.parse_prefix(f"s3://{BUCKETS['intermediate']}/runs/{RUN}/analysis/")
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def plan(**changes: object) -> Plan:
    base = Plan(scenarios=SCENARIOS, horizon_days=10.0, seed=7, num_nodes=1, node_index=0,
                block_size=BLOCK_SCENARIOS, backend="numpy", input_uri="s3://b/clean.parquet",
                input_version_id=None, input_etag="abc")
    return dataclasses.replace(base, **changes)


def s3_get(uri: S3Uri) -> bytes:
    return boto3.client("s3", region_name=REGION).get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read()


def s3_put(uri: S3Uri, data: bytes) -> None:
    boto3.client("s3", region_name=REGION).put_object(Bucket=uri.bucket, Key=uri.key, Body=data)


@pytest.fixture
def count_blocks(monkeypatch: pytest.MonkeyPatch):
    """Counts the blocks simulated; `fail_after` makes the next block raise, as a reclaimed attempt ends."""
    state = {"count": 0, "fail_after": None}
    real = model.simulate_block

    def counting(*args, **kwargs):
        if state["fail_after"] is not None and state["count"] >= state["fail_after"]:
            raise RuntimeError("the instance was reclaimed")
        state["count"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "simulate_block", counting)
    return state


@pytest.fixture
def shared(tmp_path, monkeypatch):
    """A fresh shared folder per attempt: `shared(attempt)` points the job at it."""
    def attempt(number: int):
        folder = tmp_path / f"shared-{number}"
        folder.mkdir()
        monkeypatch.setenv(SHARED_DIR_ENV, str(folder))
        monkeypatch.setenv("AWS_BATCH_JOB_ATTEMPT", str(number))
        return folder
    monkeypatch.setenv("AWS_BATCH_JOB_ID", "job-1")
    monkeypatch.setattr(recorder, "CHECKPOINT_EVERY_S", 0.0)  # a checkpoint after every block
    return attempt


def uninterrupted(tmp_path, monkeypatch):
    """The partial of an attempt that ran start to end without a shared folder."""
    monkeypatch.delenv(SHARED_DIR_ENV, raising=False)
    assert run("analysis", main, job_args(SCENARIOS)) == 0
    return fetch_partial(tmp_path, 0)


def interrupted_attempt(shared, count_blocks, after: int):
    """Attempt 1 dies after `after` blocks; its sidecar had shipped the folder."""
    folder = shared(1)
    count_blocks.update(count=0, fail_after=after)
    assert run("analysis", main, job_args(SCENARIOS)) == 1
    count_blocks.update(count=0, fail_after=None)
    Shipper(S3(), folder, PREFIX, 0).ship()
    return folder


# --- the checkpoint file -----------------------------------------------------------------------

def test_checkpoint_round_trip_and_damage():
    pnl = np.random.default_rng(1).standard_normal(300)
    data = Checkpoint(plan(), RUN, 2, pnl).encode()
    back = Checkpoint.decode(data)
    assert (back.plan, back.run_id, back.blocks_done) == (plan(), RUN, 2)
    assert back.pnl.tobytes() == pnl.tobytes()
    flipped = bytearray(data)
    flipped[-200] ^= 0xFF  # inside the P&L: the zip's CRC-32 no longer matches
    for damaged in (data[: len(data) // 2], bytes(flipped), b"not a zip"):
        with pytest.raises(CheckpointError):
            Checkpoint.decode(damaged)


def test_recorder_checkpoints_by_time_and_after_the_last_block(tmp_path, monkeypatch):
    schedule = ScenarioSchedule(SCENARIOS, 10, 7)
    rec = Recorder(tmp_path, RUN, "job-1#0", 2, plan(), schedule, range(5))
    parts = [np.full(BLOCK_SCENARIOS, float(k)) for k in range(4)] + [np.full(100, 4.0)]
    monkeypatch.setattr(recorder, "CHECKPOINT_EVERY_S", 3600.0)
    rec.block_done(1, parts[:1])
    progress = json.loads((tmp_path / PROGRESS_FILE).read_text())
    assert (progress["blocks_done"], progress["blocks_total"], progress["attempt"]) == (1, 5, 2)
    assert (progress["scenarios_done"], progress["scenarios_total"]) == (BLOCK_SCENARIOS, SCENARIOS)
    assert progress["updated_at"].endswith("Z")
    assert not (tmp_path / CHECKPOINT_FILE).exists()  # not yet an hour of compute
    rec.block_done(5, parts)
    final = Checkpoint.decode((tmp_path / CHECKPOINT_FILE).read_bytes())
    assert final.blocks_done == 5 and len(final.pnl) == SCENARIOS
    monkeypatch.setattr(recorder, "CHECKPOINT_EVERY_S", 0.0)
    rec.block_done(2, parts[:2])
    assert Checkpoint.decode((tmp_path / CHECKPOINT_FILE).read_bytes()).blocks_done == 2


# --- the job's shared folder and resume ----------------------------------------------------------

def test_job_writes_progress_and_checkpoint(aws, tmp_path, shared, count_blocks):
    put_clean(tmp_path)
    folder = shared(1)
    assert run("analysis", main, job_args(SCENARIOS)) == 0
    _, pnl, _ = fetch_partial(tmp_path, 0)
    progress = json.loads((folder / PROGRESS_FILE).read_text())
    assert progress | {"updated_at": None} == {
        "run_id": RUN, "job_id": "job-1", "node_index": 0, "num_nodes": 1, "attempt": 1,
        "blocks_done": 5, "blocks_total": 5, "scenarios_done": SCENARIOS, "scenarios_total": SCENARIOS,
        "resumed_blocks": 0, "updated_at": None}
    checkpoint = Checkpoint.decode((folder / CHECKPOINT_FILE).read_bytes())
    assert checkpoint.blocks_done == 5 and checkpoint.pnl.tobytes() == pnl.tobytes()
    assert (checkpoint.plan.seed, checkpoint.plan.input_uri) == (7, job_args()[3])
    assert checkpoint.plan.input_etag  # the input's identity, from S3
    assert count_blocks["count"] == 5


def test_job_without_shared_folder_ships_and_reads_nothing_more(aws, tmp_path, monkeypatch, count_blocks):
    put_clean(tmp_path)
    monkeypatch.delenv(SHARED_DIR_ENV, raising=False)
    assert run("analysis", main, job_args(SCENARIOS)) == 0
    keys = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=PREFIX.bucket, Prefix=PREFIX.key)["Contents"]
    assert [item["Key"] for item in keys] == [PREFIX.key + "node-0000.parquet"]


def test_retry_resumes_from_the_shipped_checkpoint_bit_for_bit(aws, tmp_path, monkeypatch, shared, count_blocks):
    put_clean(tmp_path)
    scenario, pnl, info = uninterrupted(tmp_path, monkeypatch)
    interrupted_attempt(shared, count_blocks, after=3)
    shipped = Checkpoint.decode(s3_get(checkpoint_uri(PREFIX, 0)))
    assert shipped.blocks_done == 3

    folder = shared(2)
    assert run("analysis", main, job_args(SCENARIOS)) == 0
    assert count_blocks["count"] == 2  # blocks 3 and 4 only
    resumed_scenario, resumed_pnl, resumed_info = fetch_partial(tmp_path, 0)
    assert resumed_scenario.tobytes() == scenario.tobytes()
    assert resumed_pnl.tobytes() == pnl.tobytes()
    assert dataclasses.replace(resumed_info, elapsed_s=0) == dataclasses.replace(info, elapsed_s=0)
    progress = json.loads((folder / PROGRESS_FILE).read_text())
    assert (progress["attempt"], progress["blocks_done"], progress["resumed_blocks"]) == (2, 5, 3)


def test_a_checkpoint_for_another_seed_is_not_used(aws, tmp_path, monkeypatch, shared, count_blocks, caplog):
    put_clean(tmp_path)
    _, pnl, _ = uninterrupted(tmp_path, monkeypatch)
    interrupted_attempt(shared, count_blocks, after=3)
    other = Checkpoint.decode(s3_get(checkpoint_uri(PREFIX, 0)))
    s3_put(checkpoint_uri(PREFIX, 0), dataclasses.replace(other, plan=dataclasses.replace(other.plan, seed=8)).encode())

    shared(2)
    with caplog.at_level(logging.INFO, logger="analysis"):
        assert run("analysis", main, job_args(SCENARIOS)) == 0
    assert count_blocks["count"] == 5
    assert "seed 8 (this run: 7)" in caplog.text
    assert fetch_partial(tmp_path, 0)[1].tobytes() == pnl.tobytes()


@pytest.mark.parametrize("damage", [lambda data: data[:-40], lambda data: b"\x00" * len(data)])
def test_a_damaged_checkpoint_is_ignored(aws, tmp_path, monkeypatch, shared, count_blocks, caplog, damage):
    put_clean(tmp_path)
    _, pnl, _ = uninterrupted(tmp_path, monkeypatch)
    interrupted_attempt(shared, count_blocks, after=2)
    s3_put(checkpoint_uri(PREFIX, 0), damage(s3_get(checkpoint_uri(PREFIX, 0))))

    shared(2)
    with caplog.at_level(logging.WARNING, logger="analysis"):
        assert run("analysis", main, job_args(SCENARIOS)) == 0
    assert count_blocks["count"] == 5
    assert "is damaged and ignored" in caplog.text
    assert fetch_partial(tmp_path, 0)[1].tobytes() == pnl.tobytes()


# --- the sidecar ----------------------------------------------------------------------------------

def test_sidecar_ships_what_changed_and_the_twin_reads_it(aws, tmp_path, shared, count_blocks):
    put_clean(tmp_path)
    folder = shared(1)
    count_blocks["fail_after"] = 3
    assert run("analysis", main, job_args(SCENARIOS)) == 1
    shipper = Shipper(S3(), folder, PREFIX, 0)
    shipper.ship()
    assert json.loads(s3_get(progress_uri(PREFIX, 0)))["blocks_done"] == 3
    assert Checkpoint.decode(s3_get(checkpoint_uri(PREFIX, 0))).blocks_done == 3
    s3 = boto3.client("s3", region_name=REGION)
    assert analysis_progress(s3, str(PREFIX), "job-1", 1) == "analysis 3/5 blocks (60%)"
    assert analysis_progress(s3, str(PREFIX), "job-1", 2) == "analysis 3/5 blocks (60%), 1 of 2 nodes"
    view = JobView("Analysis", "job-1", "analysis", status="RUNNING", queue="gpu",
                   progress=analysis_progress(s3, str(PREFIX), "job-1", 1))
    assert job_line(view) == "analysis RUNNING on gpu, analysis 3/5 blocks (60%)"
    assert analysis_progress(s3, str(PREFIX), "job-2", 1) == ""  # another job's progress is not shown
    assert analysis_progress(s3, f"s3://{BUCKETS['intermediate']}/runs/other/analysis/", "job-1", 1) == ""

    s3_put(progress_uri(PREFIX, 0), b"overwritten")
    shipper.ship()  # unchanged in the folder: nothing is shipped again
    assert s3_get(progress_uri(PREFIX, 0)) == b"overwritten"
    assert analysis_progress(s3, str(PREFIX), "job-1", 1) == ""  # unreadable progress shows nothing


def test_sidecar_keeps_going_when_s3_fails(aws, tmp_path, caplog):
    (tmp_path / PROGRESS_FILE).write_text('{"blocks_done": 1}')
    missing = S3Uri.parse_prefix("s3://tl-not-yet/runs/r/analysis/")
    shipper = Shipper(S3(), tmp_path, missing, 0)
    with caplog.at_level(logging.WARNING, logger="analysis.sidecar"):
        shipper.ship()
    assert "NoSuchBucket" in caplog.text and "trying again next round" in caplog.text
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="tl-not-yet")
    shipper.ship()
    assert s3_get(progress_uri(missing, 0)) == b'{"blocks_done": 1}'


def test_sidecar_usage_errors(aws, monkeypatch, capsys):
    args = ["--run-id", RUN, "--output-prefix", str(PREFIX)]
    monkeypatch.delenv(SHARED_DIR_ENV, raising=False)
    assert run("analysis-sidecar", sidecar_main, args) == 2
    assert f"{SHARED_DIR_ENV} is not set" in capsys.readouterr().err
    monkeypatch.setenv(INTERVAL_ENV, "soon")
    assert run("analysis-sidecar", sidecar_main, args) == 2
    assert f"{INTERVAL_ENV}: 'soon' is not a number" in capsys.readouterr().err


def test_sidecar_process_ships_once_more_on_sigterm(moto_server, tmp_path):
    create_resources(moto_server, **CREDENTIALS)
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name=REGION, **CREDENTIALS)
    (tmp_path / PROGRESS_FILE).write_text('{"blocks_done": 1}')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "THREADLINE_"))}
    env.update(AWS_ENDPOINT_URL=moto_server, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION=REGION, AWS_BATCH_JOB_NODE_INDEX="2", **{SHARED_DIR_ENV: str(tmp_path)},
               **{INTERVAL_ENV: "600"})  # after the first round, only SIGTERM ships again
    process = subprocess.Popen([sys.executable, "-m", "analysis.sidecar", "--run-id", RUN,
                                "--output-prefix", str(PREFIX)], cwd=JOBS, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    key = progress_uri(PREFIX, 2).key
    try:
        deadline = time.monotonic() + 60
        while not s3.list_objects_v2(Bucket=PREFIX.bucket, Prefix=key).get("KeyCount"):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the first round shipped nothing within 60 s"
            time.sleep(0.1)
        (tmp_path / PROGRESS_FILE).write_text('{"blocks_done": 2}')
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert s3.get_object(Bucket=PREFIX.bucket, Key=key)["Body"].read() == b'{"blocks_done": 2}'
