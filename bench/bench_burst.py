"""A burst of uploads through the twin: every upload a run, every run ended, and each run's traces in agreement.

    python bench/bench_burst.py                   # 100 uploads, 10 % of them made to fail
    python bench/bench_burst.py --uploads 5       # quick

1. Starts a twin in a temporary folder and times ONE upload alone (upload to
   terminal execution): the baseline of this machine and this twin.
2. Puts N copies of the bundled sample under distinct keys
   (`incoming/burst-NNN.csv`) from a thread pool, through the twin's S3 API, as
   users would. A share of them (`--fail-share`) carries a fault scoped to its
   run (`analysis:exit=3` by default) so that the FAILED path runs too.
3. Waits until every upload has an execution and every execution has ended,
   within `--timeout`. An upload with no execution is LOST; an execution still
   running at the limit is STUCK.
4. After the async invocations and the lineage queue have drained, checks each
   run: its input names the uploaded object version; the DynamoDB run record's
   status, the lineage Run node's status and the run's Slack messages
   (`run_started` then `run_succeeded` / `run_failed`) against the execution's
   status; and the execution's status against the plan. Where something does
   not match, it gathers why: the failing state and error of unplanned ends,
   errored Lambda invocations, failed Batch jobs, what the dead letters say.
5. Reports the drain time (first upload to last execution ended), the per-run
   durations (execution start to stop), the drain time over N times the single
   run, the peak memory of this process and of it with all its child processes
   (Lambda workers, Batch job processes; sampled from /proc every 0.5 s), and
   the messages in each dead-letter queue.

Output: bench/out/burst.json (and a table on stdout). Exits 1 when an upload
failed or a run was lost, stuck or did not match; the twin's folder is then kept.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

import threadline
from threadline.lineage.view import twin_graph
from threadline.twin.faults import Fault
from threadline.twin.runs import TERMINAL, skipped_uploads, upload
from threadline.twin.server import Twin, TwinConfig

OUT = Path(__file__).resolve().parent / "out"
SAMPLE = Path(threadline.__file__).resolve().parent / "data" / "sample-positions.csv"
DEAD_LETTER_QUEUES = ("StartRunDeadLetterQueue", "NotifySlackDeadLetterQueue", "FinaliseRunDeadLetterQueue",
                      "LineageDeadLetterQueue")
EXAMPLES = 5  # mismatches listed per kind
PAGE = os.sysconf("SC_PAGE_SIZE")
BURST_KEY = re.compile(r"burst-(\d+|single)")


# -- memory ---------------------------------------------------------------------

class MemorySampler:
    """Samples the RSS of this process and of all its descendants from /proc; keeps the peaks."""

    def __init__(self, every: float = 0.5) -> None:
        self.every = every
        self.pid = os.getpid()
        self.peak_total = 0
        self.peak_self = 0
        self.peak_processes = 0
        self.base_system_used = _system_used()
        self.peak_system_used = self.base_system_used
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> MemorySampler:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def sample(self) -> None:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue  # the process ended meanwhile
            fields = stat.rsplit(b")", 1)[1].split()  # after "(comm)": state, ppid, ...
            children.setdefault(int(fields[1]), []).append(int(entry.name))
        own = _rss(self.pid)
        total, count, stack = 0, 0, [self.pid]
        while stack:
            pid = stack.pop()
            total += own if pid == self.pid else _rss(pid)
            count += 1
            stack.extend(children.get(pid, ()))
        self.peak_self = max(self.peak_self, own)
        self.peak_total = max(self.peak_total, total)
        self.peak_processes = max(self.peak_processes, count)
        self.peak_system_used = max(self.peak_system_used, _system_used())
        self.samples += 1


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _system_used() -> int:
    """MemTotal - MemAvailable: the whole machine's, so other work on it counts too."""
    values = {}
    with open("/proc/meminfo", "rb") as handle:
        for line in handle:
            name, _, rest = line.partition(b":")
            values[name] = int(rest.split()[0]) * 1024
    return values[b"MemTotal"] - values[b"MemAvailable"]


def mib(size: int | float) -> float:
    return round(size / 2**20, 1)


# -- driving uploads ------------------------------------------------------------

class ExecutionIndex:
    """The state machine's executions, found by name: a run id is the key's stem, a dash and a hash.

    Listing is all a poll costs, so that a busy twin answers it; `verify` then
    describes each execution once and checks that its input names the object
    version that was uploaded.
    """

    def __init__(self, twin: Twin) -> None:
        self.sfn = twin.client("stepfunctions")
        self.arn = twin.state_machine_arn
        self.listed: dict[str, dict[str, Any]] = {}  # arn -> list_executions entry

    def refresh(self) -> None:
        for page in self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.arn):
            for execution in page["executions"]:
                self.listed[execution["executionArn"]] = execution

    def for_key(self, key: str) -> list[str]:
        prefix = key.rsplit("/", 1)[-1].rsplit(".", 1)[0] + "-"
        return [arn for arn, listed in self.listed.items() if listed["name"].startswith(prefix)]

    def describe(self, arn: str) -> dict[str, Any]:
        return self.sfn.describe_execution(executionArn=arn)


def drive(twin: Twin, index: ExecutionIndex, keys: list[str], body: bytes, threads: int, timeout: float,
          lost_grace: float, label: str = "") -> dict[str, Any]:
    """Upload every key at once, then wait for their executions to end; what was seen, per upload."""
    skip_mark = len(twin.lambda_runtime.invocations) if twin.lambda_runtime else 0
    bucket = twin.physical_id("IncomingBucket")
    started = time.time()
    clock = time.perf_counter()

    def put(key: str) -> dict[str, Any]:
        began = time.perf_counter()
        try:
            return {**upload(twin, body, key), "put_s": time.perf_counter() - began}
        except Exception as exc:  # a refused or timed-out PutObject: the user saw an error
            return {"bucket": bucket, "key": key, "version_id": None, "put_s": time.perf_counter() - began,
                    "error": f"{type(exc).__name__}: {exc}"}

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(keys)))) as pool:
        uploads = list(pool.map(put, keys))
    uploaded_s = time.perf_counter() - clock
    put_errors = [{"key": item["key"], "error": item["error"]} for item in uploads if "error" in item]
    if label:
        print(f"{label}: {len(uploads)} objects put in {uploaded_s:.1f}s ({len(put_errors)} PutObject errors)",
              flush=True)

    deadline = clock + timeout
    all_started_s = None
    last_change = last_report = time.perf_counter()
    found: dict[str, list[str]] = {item["key"]: [] for item in uploads}
    poll_errors = 0
    while True:
        try:
            index.refresh()
        except Exception as exc:  # the twin's endpoint too busy to answer: try again
            poll_errors += 1
            if poll_errors <= 3:
                print(f"  listing executions failed: {type(exc).__name__}: {exc}", flush=True)
        now = time.perf_counter()
        for item in uploads:
            arns = index.for_key(item["key"])
            if len(arns) != len(found[item["key"]]):
                last_change = now
            found[item["key"]] = arns
        if all_started_s is None and all(found.values()):
            all_started_s = now - clock
        running = [arn for arns in found.values() for arn in arns if index.listed[arn]["status"] not in TERMINAL]
        missing = [key for key, arns in found.items() if not arns]
        if label and now - last_report >= 30:
            last_report = now
            print(f"  {now - clock:6.0f}s: {len(uploads) - len(missing)} started, {len(running)} running, "
                  f"{len(uploads) - len(missing) - len(running)} ended", flush=True)
        if not running and not missing:
            break
        if now >= deadline:
            break
        if not running and missing and now - last_change >= lost_grace:
            break  # every run ended and nothing new started for a while: the rest will not come
        time.sleep(1.0)
    drain_s = time.perf_counter() - clock

    skipped, _ = skipped_uploads(twin, skip_mark)
    skip_reasons = {entry.uri: entry.reason for entry in skipped}
    per_upload = []
    for item in uploads:
        per_upload.append({"key": item["key"], "uri": f"s3://{item['bucket']}/{item['key']}",
                           "bucket": item["bucket"], "version_id": item["version_id"],
                           "put_s": item["put_s"], "put_error": item.get("error"),
                           "executions": [_execution(index.listed[arn]) for arn in found[item["key"]]]})
    lost = [{"key": u["key"], "put_error": u["put_error"], "skip_reason": skip_reasons.get(u["uri"])}
            for u in per_upload if not u["executions"]]
    stuck = [{"key": u["key"], "run_id": e["run_id"], "status": e["status"]}
             for u in per_upload for e in u["executions"] if e["status"] not in TERMINAL]
    # From the executions' own timestamps: a poll of a busy twin can take long and blur the end.
    executions = [e for u in per_upload for e in u["executions"]]
    if executions and not stuck:
        drain_s = max(e["stopped_at"] for e in executions) - started
    if executions and not lost:
        all_started_s = max(e["started_at"] for e in executions) - started
    return {"started_at": started, "upload_s": uploaded_s, "all_started_s": all_started_s, "drain_s": drain_s,
            "observed_drain_s": time.perf_counter() - clock,
            "uploads": per_upload, "lost": lost, "stuck": stuck, "put_errors": put_errors,
            "poll_errors": poll_errors}


def _execution(listed: dict[str, Any]) -> dict[str, Any]:
    start, stop = listed["startDate"], listed.get("stopDate")
    return {"arn": listed["executionArn"], "run_id": listed["name"], "status": listed["status"],
            "started_at": start.timestamp(), "stopped_at": stop.timestamp() if stop else None,
            "seconds": (stop - start).total_seconds() if stop else None}


# -- checking -------------------------------------------------------------------

def settle(twin: Twin, timeout: float) -> bool:
    """The async invocations and the lineage queue drained (twice: one can feed the other)."""
    assert twin.event_sources is not None
    deadline = time.monotonic() + timeout
    ok = True
    for _ in range(2):
        ok = twin.wait_for_async(max(1.0, deadline - time.monotonic())) and ok
        ok = twin.event_sources.wait_idle(max(1.0, deadline - time.monotonic())) and ok
    return ok


def traces(twin: Twin) -> tuple[dict[str, dict[str, Any]], dict[str, str | None], dict[str, list[str]]]:
    """Run records, lineage Run statuses and Slack message kinds, each by run id."""
    deserializer = TypeDeserializer()
    records: dict[str, dict[str, Any]] = {}
    paginator = twin.client("dynamodb").get_paginator("scan")
    for page in paginator.paginate(TableName=twin.physical_id("RunTable")):
        for item in page["Items"]:
            plain = {key: deserializer.deserialize(value) for key, value in item.items()}
            records[str(plain["run_id"])] = plain
    rows = twin_graph(twin).run("MATCH (r:Run) RETURN r.run_id AS run_id, r.status AS status")
    lineage = {row["run_id"]: row["status"] for row in rows}
    slack: dict[str, list[str]] = {}
    for path in sorted(twin.outbox.glob("*.json")):
        message = json.loads(path.read_text(encoding="utf-8"))
        if message.get("run_id"):
            slack.setdefault(message["run_id"], []).append(str(message.get("kind")))
    return records, lineage, slack


def check(twin: Twin, runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Mismatches by kind: record, lineage, slack, outcome (the status against the plan)."""
    records, lineage, slack = traces(twin)
    found: dict[str, list[dict[str, Any]]] = {"record": [], "lineage": [], "slack": [], "outcome": []}
    for run in runs:
        run_id, status = run["run_id"], run["status"]
        if status not in TERMINAL:
            continue  # counted as stuck
        record = records.get(run_id)
        if record is None or record.get("status") != status or record.get("pending"):
            found["record"].append({"run_id": run_id, "execution": status,
                                    "record": None if record is None else record.get("status"),
                                    "pending": None if record is None else record.get("pending")})
        if lineage.get(run_id) != status:
            found["lineage"].append({"run_id": run_id, "execution": status, "lineage": lineage.get(run_id)})
        expected = ["run_started", "run_succeeded" if status == "SUCCEEDED" else "run_failed"]
        if slack.get(run_id, []) != expected:
            found["slack"].append({"run_id": run_id, "execution": status, "expected": expected,
                                   "slack": slack.get(run_id, [])})
        if status != run["planned"]:
            found["outcome"].append({"run_id": run_id, "planned": run["planned"], "execution": status,
                                     "failed_state": run.get("failed_state"), "error": run.get("error"),
                                     "cause": run.get("cause")})
    return found


def verify_and_explain(index: ExecutionIndex, result: dict[str, Any],
                       runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Describe each run once: its input must name the uploaded object version; an unplanned end says why.

    Adds `error`, `cause` and, where the status is not the planned one, `failed_state` to each run;
    returns the runs whose input names another object.
    """
    uploads = {item["key"]: item for item in result["uploads"]}
    wrong = []
    for run in runs:
        described = index.describe(run["arn"])
        source = json.loads(described.get("input") or "{}").get("source", {})
        item = uploads[run["key"]]
        expected = (item["bucket"], item["key"], item["version_id"])
        seen = (source.get("bucket"), source.get("key"), source.get("version_id") or "")
        if seen[:2] != expected[:2] or (expected[2] is not None and seen[2] != expected[2]):
            wrong.append({"run_id": run["run_id"], "uploaded": list(expected), "input": list(seen)})
        run["error"] = described.get("error")
        run["cause"] = (described.get("cause") or "")[:300] or None
        if run["status"] != run["planned"]:
            run["failed_state"] = failed_state(index.sfn, run["arn"])
    return wrong


def failed_state(sfn: Any, arn: str) -> str | None:
    """The state in which the execution's first failure event happened (and the event's type)."""
    state = None
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        for event in page["events"]:
            if event["type"].endswith("StateEntered"):
                state = event["stateEnteredEventDetails"]["name"]
            elif event["type"].endswith(("Failed", "TimedOut")) and event["type"] != "ExecutionFailed":
                return f"{state}: {event['type']}"
    return None


def lambda_errors(twin: Twin, since: float) -> dict[str, int]:
    """Errored Lambda invocations begun at or after `since`, counted by function and error."""
    counts: dict[str, int] = {}
    runtime = twin.lambda_runtime
    for invocation in list(runtime.invocations) if runtime else []:
        if invocation.started_at < since or not invocation.errored:
            continue
        payload = invocation.payload if isinstance(invocation.payload, dict) else {}
        text = f"{payload.get('errorType', 'Error')}: {str(payload.get('errorMessage', ''))[:100]}"
        name = f"{invocation.function}: {text}"
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda pair: -pair[1]))


def batch_failures(twin: Twin, run_ids: set[str]) -> dict[str, int]:
    """The burst's failed Batch jobs, counted by job definition and status reason."""
    counts: dict[str, int] = {}
    runtime = twin.batch_runtime
    for job in list(runtime.jobs.values()) if runtime else []:
        if job.status != "FAILED" or not any(run_id in job.job_name for run_id in run_ids):
            continue
        name = f"{job.definition}: {(job.status_reason or '')[:100]}"
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda pair: -pair[1]))


def dead_letter_reasons(twin: Twin) -> dict[str, dict[str, Any]]:
    """What waits in each dead-letter queue: the error Lambda gave, with its count and the uploads named."""
    sqs = twin.client("sqs")
    found: dict[str, dict[str, Any]] = {}
    for queue in DEAD_LETTER_QUEUES:
        url, seen, reasons = twin.physical_id(queue), set(), {}
        for _ in range(50):
            received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=120,
                                           MessageAttributeNames=["All"]).get("Messages", [])
            if not received:
                break
            for message in received:
                if message["MessageId"] in seen:
                    continue
                seen.add(message["MessageId"])
                error = message.get("MessageAttributes", {}).get("ErrorMessage", {}).get("StringValue", "")
                named = BURST_KEY.search(message["Body"])
                reason = reasons.setdefault(error[:100] or "no error attribute", {"count": 0, "uploads": []})
                reason["count"] += 1
                reason["uploads"].append(named.group(0) if named else "?")
        if reasons:
            for reason in reasons.values():
                reason["uploads"].sort()
            found[queue] = dict(sorted(reasons.items(), key=lambda pair: -pair[1]["count"]))
    return found


def runs_of(result: dict[str, Any], failing: set[str]) -> list[dict[str, Any]]:
    runs = []
    for item in result["uploads"]:
        for execution in item["executions"]:
            planned = "FAILED" if item["key"] in failing else "SUCCEEDED"
            runs.append({**execution, "key": item["key"], "planned": planned})
    return runs


def unplanned(runs: list[dict[str, Any]]) -> dict[str, int]:
    """Runs that did not end as planned, counted by planned -> actual status, the failing state and error."""
    counts: dict[str, int] = {}
    for run in runs:
        if run["status"] in TERMINAL and run["status"] != run["planned"]:
            name = f"{run['planned']} -> {run['status']} at {run.get('failed_state')} ({run.get('error')})"
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda pair: -pair[1]))


def stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median_s": None, "p95_s": None, "max_s": None}
    ordered = sorted(values)
    return {"n": len(ordered), "median_s": round(statistics.median(ordered), 2),
            "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
            "max_s": round(ordered[-1], 2)}


def dead_letters(twin: Twin) -> dict[str, int]:
    sqs = twin.client("sqs")
    counts = {}
    for queue in DEAD_LETTER_QUEUES:
        attributes = sqs.get_queue_attributes(QueueUrl=twin.physical_id(queue),
                                              AttributeNames=["ApproximateNumberOfMessages",
                                                              "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        counts[queue] = int(attributes["ApproximateNumberOfMessages"]) + \
            int(attributes["ApproximateNumberOfMessagesNotVisible"])
    return counts


# -- main -----------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--fail-share", type=float, default=0.1, help="share of uploads made to fail")
    parser.add_argument("--fault", default="analysis:exit=3", help="the fault (twin spec) of the failing uploads")
    parser.add_argument("--threads", type=int, default=32, help="threads putting the objects")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds for the burst to drain")
    parser.add_argument("--lost-grace", type=float, default=120.0,
                        help="with every run ended, seconds without a new execution before the rest count as lost")
    parser.add_argument("--settle-timeout", type=float, default=300.0,
                        help="seconds for async invocations and the lineage queue to drain after the burst")
    parser.add_argument("--keep", type=Path, help="use this folder as the twin's workdir and keep it")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress lines show at once when the output is a file

    body = SAMPLE.read_bytes()
    width = max(3, len(str(args.uploads - 1)))
    keys = [f"incoming/burst-{i:0{width}d}.csv" for i in range(args.uploads)]
    fail_count = min(args.uploads, max(1 if args.fail_share > 0 else 0, round(args.uploads * args.fail_share)))
    step = args.uploads / fail_count if fail_count else 0
    failing = {keys[int(i * step)] for i in range(fail_count)}  # spread over the burst
    folder = args.keep or Path(tempfile.mkdtemp(prefix="threadline-burst-bench-"))
    if args.keep and folder.exists():
        shutil.rmtree(folder)

    memory = MemorySampler().start()
    results: dict[str, Any] = {
        "uploads": args.uploads, "fail_share": args.fail_share, "fault": args.fault, "failing": len(failing),
        "threads": args.threads, "cpus": os.cpu_count(),
        "machine_note": "shared 2-core sandbox; the twin runs every Lambda and Batch job as a local process",
    }
    twin = Twin(TwinConfig(workdir=folder))
    clock = time.perf_counter()
    try:
        twin.start()
        results["twin_start_s"] = round(time.perf_counter() - clock, 2)
        print(f"twin up in {results['twin_start_s']:.1f}s; one upload alone first")
        index = ExecutionIndex(twin)

        # 1. The baseline: one upload alone, on the same twin.
        single = drive(twin, index, ["incoming/burst-single.csv"], body, 1, args.timeout, args.lost_grace)
        single_runs = runs_of(single, set())
        if single["lost"] or single["stuck"] or not single_runs:
            raise SystemExit(f"the single run did not end: lost {single['lost']}, stuck {single['stuck']}")
        settle(twin, args.settle_timeout)
        single_s = single["drain_s"]
        results["single"] = {"upload_to_end_s": round(single_s, 2), "run_s": round(single_runs[0]["seconds"], 2),
                             "status": single_runs[0]["status"],
                             "mismatches": {k: v for k, v in check(twin, single_runs).items() if v}}
        print(f"single run: {single_runs[0]['status']} in {single_s:.1f}s (execution {single_runs[0]['seconds']:.1f}s)")

        # 2. The burst.
        for key in failing:
            stem = key.removeprefix("incoming/").removesuffix(".csv")
            twin.faults.add(Fault.parse(args.fault, run_id=f"{stem}-"))
        letters_before = dead_letters(twin)
        print(f"burst: {args.uploads} uploads ({len(failing)} made to fail) from {args.threads} threads")
        burst = drive(twin, index, keys, body, args.threads, args.timeout, args.lost_grace, label="burst")
        settle_clock = time.perf_counter()
        settled = settle(twin, args.settle_timeout)
        settle_s = time.perf_counter() - settle_clock
        runs = runs_of(burst, failing)

        # 3. Each run's traces against its execution.
        wrong_source = verify_and_explain(index, burst, runs)
        mismatches = check(twin, runs)
        first_count = {kind: len(found) for kind, found in mismatches.items()}
        recheck_s = 0.0
        if any(mismatches[kind] for kind in ("record", "lineage", "slack")):
            recheck_clock = time.perf_counter()  # late traces: look again after a pause, report both
            while time.perf_counter() - recheck_clock < 30:
                time.sleep(2)
                settle(twin, 30)
                mismatches = check(twin, runs)
                if not any(mismatches[kind] for kind in ("record", "lineage", "slack")):
                    break
            recheck_s = time.perf_counter() - recheck_clock
        letters_after = dead_letters(twin)
        diagnosis = {"lambda_errors": lambda_errors(twin, burst["started_at"]),
                     "batch_failures": batch_failures(twin, {run["run_id"] for run in runs}),
                     "dead_letter_reasons": dead_letter_reasons(twin)}
    except BaseException:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        twin.stop()
        memory.stop()

    terminal = [run for run in runs if run["status"] in TERMINAL]
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
    extra = sum(max(0, len(item["executions"]) - 1) for item in burst["uploads"])
    drain_s = burst["drain_s"]
    results["burst"] = {
        "runs": len(runs), "statuses": statuses, "lost": len(burst["lost"]), "stuck": len(burst["stuck"]),
        "extra_executions": extra,
        "upload_s": round(burst["upload_s"], 2),
        "put_object_s": stats([item["put_s"] for item in burst["uploads"]]),
        "put_errors": len(burst["put_errors"]), "put_error_examples": burst["put_errors"][:EXAMPLES],
        "poll_errors": burst["poll_errors"],
        "all_started_s": None if burst["all_started_s"] is None else round(burst["all_started_s"], 2),
        "drain_s": round(drain_s, 2), "observed_drain_s": round(burst["observed_drain_s"], 2),
        "settled": settled, "settle_s": round(settle_s, 2), "recheck_s": round(recheck_s, 2),
        "run_seconds": stats([run["seconds"] for run in terminal if run["seconds"] is not None]),
        "run_seconds_succeeded": stats([r["seconds"] for r in terminal if r["status"] == "SUCCEEDED"]),
        "run_seconds_failed": stats([r["seconds"] for r in terminal if r["status"] != "SUCCEEDED"]),
        "drain_over_serial": round(drain_s / (args.uploads * single_s), 4) if single_s else None,
        "speedup_over_serial": round(args.uploads * single_s / drain_s, 2) if drain_s else None,
        "lost_uploads": burst["lost"][:EXAMPLES * 4], "stuck_runs": burst["stuck"][:EXAMPLES * 4],
        "mismatches_at_first_check": first_count,
        "mismatches": {kind: len(found) for kind, found in mismatches.items()},
        "mismatch_examples": {kind: found[:EXAMPLES] for kind, found in mismatches.items() if found},
        "wrong_source": wrong_source[:EXAMPLES],
        "unplanned_ends": unplanned(runs),
    }
    results["diagnosis"] = diagnosis
    results["dead_letters"] = {"before_burst": letters_before, "after_burst": letters_after,
                               "new": {q: letters_after[q] - letters_before[q] for q in letters_after}}
    results["memory"] = {
        "peak_total_mib": mib(memory.peak_total), "peak_self_mib": mib(memory.peak_self),
        "peak_processes": memory.peak_processes,
        "machine_used_rise_mib": mib(memory.peak_system_used - memory.base_system_used),
        "samples": memory.samples, "sample_every_s": memory.every,
        "self_maxrss_mib": mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
        "largest_child_maxrss_mib": mib(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024),
    }

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "burst.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    report(results)
    bad = results["burst"]
    failed = bad["lost"] or bad["stuck"] or bad["extra_executions"] or bad["put_errors"] or wrong_source \
        or any(bad["mismatches"].values()) or results["single"]["mismatches"]
    print(f"written to {OUT / 'burst.json'}")
    print("FAIL: a failed upload, or lost, stuck, extra or mismatched runs (see above)" if failed
          else "OK: every run accounted for")
    if args.keep or failed:
        print(f"the twin's folder (logs, outbox, graph) is kept: {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed else 0


def report(results: dict[str, Any]) -> None:
    burst, memory = results["burst"], results["memory"]
    single = results["single"]
    status_text = ", ".join(f"{n} {s}" for s, n in sorted(burst["statuses"].items()))
    rows = [
        ("uploads / runs", f"{results['uploads']} / {burst['runs']} ({status_text})"),
        ("lost / stuck / extra executions", f"{burst['lost']} / {burst['stuck']} / {burst['extra_executions']}"),
        ("mismatches record / lineage / slack",
         f"{burst['mismatches']['record']} / {burst['mismatches']['lineage']} / {burst['mismatches']['slack']}"
         + ("" if burst["mismatches_at_first_check"] == burst["mismatches"]
            else f" (first check: {burst['mismatches_at_first_check']})")),
        ("status not as planned", str(burst["mismatches"]["outcome"])),
        ("single run alone (upload to end)", f"{single['upload_to_end_s']:.1f} s ({single['status']})"),
        ("uploads put (PutObject median / max)",
         f"{burst['upload_s']:.2f} s ({burst['put_object_s']['median_s']} / {burst['put_object_s']['max_s']} s)"
         + (f", {burst['put_errors']} PutObject errors" if burst["put_errors"] else "")),
        ("all executions started", "never" if burst["all_started_s"] is None else f"{burst['all_started_s']:.1f} s"),
        ("drain (first upload to last end)", f"{burst['drain_s']:.1f} s (seen by polling: "
                                             f"{burst['observed_drain_s']:.1f} s)"),
        ("drain / (N x single run)", f"{burst['drain_over_serial']} (x{burst['speedup_over_serial']} over serial)"),
        ("run duration median / p95 / max", f"{burst['run_seconds']['median_s']} / {burst['run_seconds']['p95_s']}"
                                            f" / {burst['run_seconds']['max_s']} s"),
        ("settle after drain", f"{burst['settle_s']:.1f} s" + ("" if burst["settled"] else " (timed out)")),
        ("peak RSS, process + children", f"{memory['peak_total_mib']} MiB ({memory['peak_processes']} processes)"),
        ("machine memory in use, peak rise", f"{memory['machine_used_rise_mib']} MiB (all work on the machine)"),
        ("peak RSS, this process", f"{memory['peak_self_mib']} MiB (maxrss {memory['self_maxrss_mib']} MiB)"),
        ("dead letters (new in burst)", ", ".join(f"{q.removesuffix('DeadLetterQueue')} {n}"
                                                  for q, n in results["dead_letters"]["new"].items())),
    ]
    print()
    for name, value in rows:
        print(f"{name:38} {value}")
    for kind, examples in burst["mismatch_examples"].items():
        print(f"{kind} mismatches, first {len(examples)}:")
        for example in examples:
            print(f"  {json.dumps(example, default=str)}")
    for label, entries in (("PutObject error", burst["put_error_examples"]), ("lost", burst["lost_uploads"]),
                           ("stuck", burst["stuck_runs"])):
        for entry in entries:
            print(f"{label}: {json.dumps(entry)}")
    for title, counts in (("runs not ending as planned", burst["unplanned_ends"]),
                          ("errored Lambda invocations in the burst", results["diagnosis"]["lambda_errors"]),
                          ("failed Batch jobs of the burst", results["diagnosis"]["batch_failures"])):
        if counts:
            print(f"{title}:")
            for name, count in counts.items():
                print(f"  {count:4d}  {name}")
    for queue, reasons in results["diagnosis"]["dead_letter_reasons"].items():
        print(f"in {queue}:")
        for error, reason in reasons.items():
            named = reason["uploads"]
            more = f" and {len(named) - 6} more" if len(named) > 6 else ""
            print(f"  {reason['count']:4d}  {error} ({', '.join(named[:6])}{more})")
    for entry in burst["wrong_source"]:
        print(f"execution input names another object: {json.dumps(entry)}")
    if single["mismatches"]:
        print(f"single run mismatches: {json.dumps(single['mismatches'], default=str)}")


if __name__ == "__main__":
    sys.exit(main())
