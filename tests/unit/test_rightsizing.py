"""Right-sizing hints (threadline_common.rightsizing) and their run-record write (run_rightsizing_record)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from threadline_common import rightsizing
from threadline_common.cost import Request
from threadline_common.lineage.events import RunFinished
from threadline_common.rightsizing import Usage, ceil_to, parse_usage, run_sizing, suggest
from threadline_common.run_rightsizing_record import read_usage, write_rightsizing

SMALL = [{"Type": "VCPU", "Value": "2"}, {"Type": "MEMORY", "Value": "7680"}]
GPU_NODE = [{"Type": "VCPU", "Value": "4"}, {"Type": "MEMORY", "Value": "14336"}, {"Type": "GPU", "Value": "1"}]
STARTED, STOPPED = 1796045956000, 1796045966000
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"


def _attempt(exit_code: int | None = 0, reason: str | None = None, ran: bool = True) -> dict[str, Any]:
    container: dict[str, Any] = {"ExitCode": exit_code} if exit_code is not None else {}
    if reason:
        container["Reason"] = reason
    timing = {"StartedAt": STARTED, "StoppedAt": STOPPED} if ran else {}
    return {"Container": container, "StatusReason": "Essential container in task exited", **timing}


def _job(job_id: str, attempts: list[dict[str, Any]], requirements: list[dict[str, str]] = SMALL,
         status: str = "SUCCEEDED") -> dict[str, Any]:
    return {"JobId": job_id, "JobName": f"x-{job_id}", "Status": status, "Attempts": attempts,
            "Container": {"ResourceRequirements": requirements}}


def _usage(job_id: str, attempt: int = 1, peak: float = 1000.0, cpu: float = 10.0, wall: float = 10.0,
           node: int | None = None) -> Usage:
    return Usage(job_id=job_id, node_index=node, attempt=attempt, peak_mib=peak, cpu_seconds=cpu, wall_seconds=wall)


# ---------------------------------------------------------------- the hint itself


def test_ceil_to_rounds_up_to_the_step():
    assert [ceil_to(v, 256) for v in (1, 256, 257, 1000.5)] == [256, 256, 512, 1024]


def test_a_small_peak_suggests_the_peak_with_headroom_in_256_mib_steps():
    hint = suggest(Request(2, 7680), peak_mib=1500, cpu_vcpus=1.5, oom=False)
    assert hint.memory_mib == 2048  # 1500 x 1.25 = 1875 -> 2048
    assert hint.vcpus is None  # 75 % busy: keep
    assert "20% of 7680 MiB" in hint.notes[0]


def test_memory_never_goes_below_the_floor_and_vcpus_never_below_one():
    hint = suggest(Request(4, 7680), peak_mib=40, cpu_vcpus=0.05, oom=False)
    assert (hint.memory_mib, hint.vcpus) == (rightsizing.MIN_MEMORY_MIB, rightsizing.MIN_VCPUS)
    # A request already at the floor gets no "lower" hint that would not lower it.
    assert suggest(Request(1, 512), peak_mib=40, cpu_vcpus=0.05, oom=False).memory_mib is None


def test_a_peak_near_the_request_raises_it():
    hint = suggest(Request(2, 4096), peak_mib=3900, cpu_vcpus=1.0, oom=False)
    assert hint.memory_mib == 5120  # 3900 x 1.25 = 4875 -> 5120
    assert hint.memory_mib > 4096


def test_between_the_thresholds_the_request_fits():
    hint = suggest(Request(2, 4096), peak_mib=3000, cpu_vcpus=1.2, oom=False)
    assert (hint.memory_mib, hint.vcpus) == (None, None)
    assert "fits" in hint.notes[0]


def test_an_oom_raises_by_half_whatever_was_measured():
    hint = suggest(Request(2, 4096), peak_mib=None, cpu_vcpus=None, oom=True)
    assert hint.memory_mib == 6144
    assert "ran out" in hint.notes[0]
    # Even when a surviving attempt peaked low, the OOM wins.
    assert suggest(Request(2, 4096), peak_mib=500, cpu_vcpus=1.0, oom=True).memory_mib == 6144


def test_idle_vcpus_are_lowered_and_cpu_bound_ones_only_noted():
    assert suggest(Request(8, 7680), peak_mib=5000, cpu_vcpus=2.5, oom=False).vcpus == 4  # ceil(3.125)
    bound = suggest(Request(2, 7680), peak_mib=5000, cpu_vcpus=1.95, oom=False)
    assert bound.vcpus is None and any("CPU-bound" in note for note in bound.notes)


def test_gpus_are_kept_and_said_to_be_unmeasured():
    hint = suggest(Request(4, 14336, 1), peak_mib=2000, cpu_vcpus=1.0, oom=False)
    assert any("GPU" in note and "not measured" in note for note in hint.notes)


# ---------------------------------------------------------------- a run's attempts and usage records


def test_one_measured_attempt_gives_its_figures_ratios_and_hint():
    sizing = run_sizing({"preprocess": _job("pre-1", [_attempt()])}, {}, [_usage("pre-1", peak=700, cpu=5, wall=10)])
    entry = sizing["preprocess"].to_record()
    assert entry["request"] == {"vcpus": 2.0, "memory_mib": 7680, "gpus": 0}
    assert (entry["attempts"], entry["measured"]) == (1, 1)
    assert entry["peak_memory_mib"] == 700 and entry["cpu_vcpus"] == 0.5
    assert entry["memory_use"] == pytest.approx(700 / 7680, abs=1e-3) and entry["cpu_use"] == 0.25
    assert (entry["suggested_memory_mib"], entry["suggested_vcpus"]) == (1024, 1)
    assert entry["oom"] is False


def test_a_step_without_usage_records_gets_no_hint():
    sizing = run_sizing({"postprocess": _job("post-1", [_attempt()])}, {}, [])
    entry = sizing["postprocess"].to_record()
    assert entry["measured"] == 0 and entry["peak_memory_mib"] is None and entry["cpu_vcpus"] is None
    assert (entry["suggested_memory_mib"], entry["suggested_vcpus"]) == (None, None)
    assert entry["notes"] == ["memory: no usage measured"]


def test_a_multi_node_attempt_takes_its_busiest_node():
    job = _job("ana-1", [_attempt()], GPU_NODE)
    del job["Container"]
    node_range = {"TargetNodes": "0:", "Container": {"ResourceRequirements": GPU_NODE}}
    job["NodeProperties"] = {"NumNodes": 2, "MainNode": 0, "NodeRangeProperties": [node_range]}
    usage = [_usage("ana-1", node=0, peak=3000, cpu=10, wall=10), _usage("ana-1", node=1, peak=9000, cpu=30, wall=10)]
    entry = run_sizing({"analysis": job}, {}, usage)["analysis"].to_record()
    assert entry["peak_memory_mib"] == 9000 and entry["cpu_vcpus"] == 3.0
    assert entry["measured"] == 1  # one attempt, measured on both its nodes
    assert entry["request"] == {"vcpus": 4.0, "memory_mib": 14336, "gpus": 1}


def test_an_oom_attempt_before_a_success_raises_the_memory():
    job = _job("pre-2", [_attempt(137, OOM_REASON), _attempt()], [{"Type": "VCPU", "Value": "2"},
                                                                 {"Type": "MEMORY", "Value": "2048"}])
    entry = run_sizing({"preprocess": job}, {}, [_usage("pre-2", attempt=2, peak=1200)])["preprocess"].to_record()
    assert entry["oom"] is True and entry["attempts"] == 2 and entry["measured"] == 1
    assert entry["suggested_memory_mib"] == 3072


def test_a_failed_job_in_failures_counts_and_exit_137_alone_is_no_oom():
    failure = {"Error": "States.TaskFailed",
               "Cause": json.dumps(_job("post-9", [_attempt(137, "Task timed out")], status="FAILED"))}
    entry = run_sizing({}, {"postprocess": failure}, [_usage("post-9", peak=7500)])["postprocess"].to_record()
    assert entry["oom"] is False
    assert entry["peak_memory_mib"] == 7500 and entry["suggested_memory_mib"] == 9472  # 7500 x 1.25 -> 9472


def test_a_job_that_never_ran_is_left_out_and_usage_of_other_jobs_is_ignored():
    never = _job("pre-3", [], status="FAILED")
    sizing = run_sizing({}, {"preprocess": never}, [_usage("someone-else")])
    assert sizing == {}


def test_a_multi_container_task_is_measured_against_its_main_container():
    job = {"JobId": "ana-2", "Status": "SUCCEEDED", "Attempts": [_attempt()],
           "EcsProperties": {"TaskProperties": [{"Containers": [
               {"Name": "progress", "ResourceRequirements": [{"Type": "VCPU", "Value": "1"},
                                                              {"Type": "MEMORY", "Value": "256"}]},
               {"Name": "analysis", "ResourceRequirements": GPU_NODE}]}]}}
    entry = run_sizing({"analysis": job}, {}, [_usage("ana-2", peak=2000)])["analysis"].to_record()
    assert entry["request"] == {"vcpus": 4.0, "memory_mib": 14336, "gpus": 1}


def test_parse_usage_reads_records_and_refuses_anything_else():
    record = {"job_id": "j", "node_index": 1, "attempt": 2, "peak_rss_mib": 12.5, "cpu_seconds": 1, "wall_seconds": 2}
    assert parse_usage(record) == Usage("j", 1, 2, 12.5, 1.0, 2.0)
    assert parse_usage(record).cpu_vcpus == 0.5
    assert parse_usage({**record, "wall_seconds": 0}).cpu_vcpus is None
    assert parse_usage({**record, "attempt": "x"}) is None
    assert parse_usage({"job_id": "j"}) is None
    assert parse_usage(["not", "a", "record"]) is None


# ---------------------------------------------------------------- the run record


@pytest.fixture
def aws_world(monkeypatch: pytest.MonkeyPatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="inter")
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(TableName="runs", KeySchema=[{"AttributeName": "run_id", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "run_id", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
        yield s3, dynamodb


def _event(run_id: str) -> RunFinished:
    return RunFinished(run_id=run_id, status="SUCCEEDED", execution_arn=None, source={}, at="2026-11-30T12:00:00Z",
                       jobs={"preprocess": _job("pre-1", [_attempt()])})


def test_the_run_record_gets_its_rightsizing_and_a_missing_record_is_not_created(aws_world):
    s3, dynamodb = aws_world
    record = {"job_id": "pre-1", "node_index": None, "attempt": 1, "peak_rss_mib": 700.25, "cpu_seconds": 5,
              "wall_seconds": 10}
    s3.put_object(Bucket="inter", Key="runs/r1/usage/preprocess/pre-1-attempt-1.json", Body=json.dumps(record))
    s3.put_object(Bucket="inter", Key="runs/r1/usage/preprocess/junk.json", Body=b"{not json")
    s3.put_object(Bucket="inter", Key="runs/r2/usage/preprocess/pre-1-attempt-1.json", Body=b"{}")
    dynamodb.put_item(TableName="runs", Item={"run_id": {"S": "r1"}, "status": {"S": "SUCCEEDED"}})

    usage, problems = read_usage(s3, "inter", "r1")
    assert [u.peak_mib for u in usage] == [700.25]
    assert len(problems) == 1 and "junk.json" in problems[0]

    written = write_rightsizing(dynamodb, s3, "runs", "inter", _event("r1"))
    item = dynamodb.get_item(TableName="runs", Key={"run_id": {"S": "r1"}})["Item"]["rightsizing"]["M"]
    step = item["steps"]["M"]["preprocess"]["M"]
    assert step["peak_memory_mib"] == {"N": "700.25"} and step["suggested_memory_mib"] == {"N": "1024"}
    assert item["finished_at"] == {"S": "2026-11-30T12:00:00Z"}
    assert written["steps"]["preprocess"]["suggested_vcpus"] == 1

    with pytest.raises(ClientError) as refused:
        write_rightsizing(dynamodb, s3, "runs", "inter", _event("no-such-run"))
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert "Item" not in dynamodb.get_item(TableName="runs", Key={"run_id": {"S": "no-such-run"}})


def test_the_lineage_function_logs_and_goes_on_when_the_usage_cannot_be_read(aws_world, monkeypatch):
    """Best effort: a missing bucket leaves the run record as it was and raises nothing."""
    _, dynamodb = aws_world
    spec = importlib.util.spec_from_file_location("threadline_function_sizing_probe",
                                                  Path(__file__).resolve().parents[2] / "functions" /
                                                  "record_lineage" / "app.py")
    assert spec is not None and spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    dynamodb.put_item(TableName="runs", Item={"run_id": {"S": "r1"}, "status": {"S": "SUCCEEDED"}})
    monkeypatch.setenv("INTERMEDIATE_BUCKET", "no-such-bucket")
    warnings: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(app.logger, "warning", lambda message, extra: warnings.append((message, extra)))

    app._record_rightsizing(dynamodb, "runs", [_event("r1")])

    assert "rightsizing" not in dynamodb.get_item(TableName="runs", Key={"run_id": {"S": "r1"}})["Item"]
    [(message, extra)] = warnings
    assert message.startswith("Right-sizing hints not written") and "NoSuchBucket" in extra["error"]
