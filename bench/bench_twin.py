"""How heavy the offline twin is: start time, per-run overhead and (with --suite) the test suite's time.

Every figure is also given as a ratio to a baseline measured in the same run:
moto's own StartExecution of a one-Pass-state machine (upload-free, job-free),
from the call to SUCCEEDED, so that a busy machine moves both alike.

- start: a fresh interpreter starting the twin (`Twin.start()` returned), as
  `threadline up` does before it can take an upload, median of --starts, with
  the start cache (the template's translation, the definitions checked: see
  `template_cache.py`) filled as by any earlier start; also one start with it empty.
- overhead: one upload of the sample CSV to its run's terminal status (the
  execution's stopDate), minus the jobs' own compute (the run record's
  `durations_s`, whose steps run one after another), median of --runs, with job
  processes forked warm (the default) and started cold, in one twin each; also
  upload to `collect` done (notices, lineage and outputs settled).
- suite: `pytest -n 2` of the whole suite (--suite; minutes), with bytecode kept as
  `make test` keeps it.

Starts and the suite run with Python's bytecode kept (in a temporary
PYTHONPYCACHEPREFIX), as Python keeps it by default; where the environment sets
PYTHONDONTWRITEBYTECODE, every process compiles threadline's modules again, and
the start is also given that way.

Output: the table, and bench/out/twin.json (the medians, the load average at
the start, and every sample).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "threadline" / "data" / "sample-positions.csv"
ONE_PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
START_PROBE = """
import sys, tempfile, time
began = float(sys.argv[1])
from threadline.twin.server import Twin, TwinConfig
with tempfile.TemporaryDirectory() as workdir:
    twin = Twin(TwinConfig(workdir=__import__("pathlib").Path(workdir))).start()
    print(time.time() - began, flush=True)
    twin.stop()
"""


def baseline_start_execution(samples: int) -> list[float]:
    """Seconds from moto's StartExecution to SUCCEEDED for a one-Pass-state machine."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from threadline.twin.server import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per API call
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        # As the twin does: moto runs the definition (its ASL interpreter) instead of faking a result.
        urllib.request.urlopen(urllib.request.Request(
            f"{endpoint}/moto-api/config", data=json.dumps({"stepfunctions": {"execute_state_machine": True}})
            .encode(), method="POST"), timeout=10).read()
        sfn = boto3.client("stepfunctions", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        machine = sfn.create_state_machine(name="bench", definition=json.dumps(ONE_PASS), roleArn=role)
        seconds = []
        for index in range(samples):
            began = time.perf_counter()
            arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=f"bench-{index}")["executionArn"]
            deadline = time.monotonic() + 30
            while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                if time.monotonic() > deadline:
                    raise SystemExit("moto's execution of one Pass state did not end in 30 s")
                time.sleep(0.005)
            seconds.append(time.perf_counter() - began)
        return seconds
    finally:
        server.stop()


def bytecode_kept(prefix: str) -> dict[str, str]:
    """This environment, with Python's bytecode kept under `prefix` (whatever PYTHONDONTWRITEBYTECODE says)."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": prefix}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def twin_starts(samples: int, env: dict[str, str] | None = None) -> list[float]:
    """Seconds from a fresh interpreter's launch to a started twin."""
    seconds = []
    for _ in range(samples):
        out = subprocess.run([sys.executable, "-c", START_PROBE, str(time.time())], check=True,
                             capture_output=True, text=True, cwd=ROOT, env=env).stdout
        seconds.append(float(out.strip().splitlines()[-1]))
    return seconds


def uncached_twin_start(env: dict[str, str]) -> float:
    """One start with an empty start cache, as the first after template.yaml or the definition changed."""
    from threadline.twin.template_cache import CACHE_DIR_ENV

    with tempfile.TemporaryDirectory() as cache:
        return twin_starts(1, {**env, CACHE_DIR_ENV: cache})[0]


def run_overheads(samples: int, warm: bool) -> list[dict[str, float]]:
    """Per run of the sample, in one twin: upload to terminal status, the jobs' own compute, and collected.

    The terminal moment is the execution's own stopDate (the twin's clock is this
    process's), so that the bench's poll interval is not counted; `collected_s`
    also counts `collect` (the notices, lineage queue and outputs settling).
    """
    from threadline.twin.runs import collect, find_execution, upload, wait
    from threadline.twin.server import Twin, TwinConfig

    runs = []
    with tempfile.TemporaryDirectory() as workdir:
        twin = Twin(TwinConfig(workdir=Path(workdir), warm_job_processes=warm)).start()
        try:
            for index in range(samples + 1):  # the first run warms the functions and is left out
                uploaded = upload(twin, SAMPLE, f"incoming/bench-{index}.csv")
                arn = find_execution(twin, uploaded["bucket"], uploaded["key"], uploaded["version_id"],
                                     since=uploaded["uploaded_at"])
                result = collect(twin, wait(twin, arn, timeout=120))
                collected = time.time() - uploaded["uploaded_at"]
                if result.status != "SUCCEEDED" or result.stopped is None:
                    raise SystemExit(f"run {result.run_id} ended {result.status}: {result.error} {result.cause}")
                total = result.stopped.timestamp() - uploaded["uploaded_at"]
                compute = sum(float(v) for v in ((result.record or {}).get("durations_s") or {}).values())
                if index:
                    runs.append({"total_s": total, "compute_s": compute, "overhead_s": total - compute,
                                 "collected_s": collected})
        finally:
            twin.stop()
    return runs


def suite_seconds(env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                   check=True, env=env)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5, help="runs of the sample per mode (0: start only)")
    parser.add_argument("--baseline-samples", type=int, default=20)
    parser.add_argument("--cold", action=argparse.BooleanOptionalAction, default=True,
                        help="also time runs with job processes started cold (default: yes)")
    parser.add_argument("--suite", action="store_true", help="also time the whole test suite (minutes)")
    args = parser.parse_args()

    baselines = baseline_start_execution(args.baseline_samples)
    baseline = statistics.median(baselines)
    figures: dict[str, Any] = {"baseline_start_execution_s": baseline, "cpus": os.cpu_count(),
                               "load_average": os.getloadavg()[0]}
    bytecode = tempfile.TemporaryDirectory(prefix="threadline-bench-pycache-")
    kept = bytecode_kept(bytecode.name)
    twin_starts(1, kept)  # fills the start cache and the bytecode, as any earlier start has
    starts = twin_starts(args.starts, kept)
    figures["twin_start_s"] = statistics.median(starts)
    figures["twin_start_uncached_s"] = uncached_twin_start(kept)
    figures["samples"] = {"baseline_s": baselines, "twin_start_s": starts}
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        compiling = twin_starts(max(1, args.starts // 2))
        figures["twin_start_no_bytecode_s"] = statistics.median(compiling)
        figures["samples"]["twin_start_no_bytecode_s"] = compiling
    modes = (("warm", True), ("cold", False)) if args.cold else (("warm", True),)
    modes = modes if args.runs > 0 else ()
    for mode, warm in modes:
        runs = run_overheads(args.runs, warm)
        figures[f"run_{mode}"] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        figures["samples"][f"run_{mode}"] = runs
    if args.suite:
        figures["suite_s"] = suite_seconds(kept)
    bytecode.cleanup()

    figures["load_average_end"] = os.getloadavg()[0]
    print(f"load average (1 min) {figures['load_average']:.1f} at the start, "
          f"{figures['load_average_end']:.1f} at the end")
    print(f"baseline: moto StartExecution of one Pass state, {baseline * 1000:.1f} ms (median)")
    print(f"{'figure':<34}{'seconds':>10}{'x baseline':>12}")
    rows = [("twin start (fresh interpreter)", figures["twin_start_s"]),
            ("  the same, start cache empty", figures["twin_start_uncached_s"])]
    if "twin_start_no_bytecode_s" in figures:
        rows.append(("  the same, bytecode not kept", figures["twin_start_no_bytecode_s"]))
    for mode, _ in modes:
        run = figures[f"run_{mode}"]
        rows += [(f"run upload->end, {mode} jobs", run["total_s"]),
                 (f"  jobs' own compute, {mode}", run["compute_s"]),
                 (f"  overhead, {mode}", run["overhead_s"]),
                 (f"  upload->collected, {mode}", run["collected_s"])]
    if "suite_s" in figures:
        rows.append(("test suite, pytest -n 2", figures["suite_s"]))
    for name, seconds in rows:
        print(f"{name:<34}{seconds:>10.2f}{seconds / baseline:>12.0f}")
    out = ROOT / "bench" / "out" / "twin.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
