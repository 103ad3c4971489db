"""Lineage at scale: a graph of 10,000 runs, the write latency per event, and the users' queries.

    python bench/bench_lineage.py                 # 10,000 runs
    python bench/bench_lineage.py --runs 100000   # growth
    python bench/bench_lineage.py --runs 500      # quick

1. Generates the lineage events of N runs (successes, Spot and capacity
   fallbacks, analysis failures, validation failures; a few thousand input files
   with several versions each, spread over 30 days) and writes them into the
   twin's embedded graph with the production write code (`record_events`,
   the plans the lineage function sends), in batches.
2. Serves that graph through the local neptunedata endpoint and measures the
   write latency of single events and of 10-event batches (what one SQS
   delivery costs) through the production client (boto3 `neptunedata`).
3. Times the queries users run, through the same endpoint: upstream of a
   report, downstream of an input file (and, on its own, the lookup of the
   file's versions by URI it starts with), a run's report, failures of the
   last 7 days, and the resume lookup by cache key. Batched writes also
   report their round trips per batch.

Every latency is given three ways: end to end through the endpoint, the part of
it spent inside the embedded graph (`GraphStore.run`), which tells the stand-in's
own cost from the client's and the HTTP round trips', and the CPU time the whole
process (client, endpoint and graph, all in it) spent on it, which other work on
a shared machine does not inflate as much as it does the wall-clock figures.

Output: bench/out/lineage.json (and a table on stdout).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from threadline_common.lineage import (
    NeptuneCypher,
    downstream,
    failures,
    parse_lineage_event,
    queries,
    record_event,
    record_events,
    run_report,
    upstream,
)
from threadline_common.lineage.graph import ObjectFacts
from threadline_common.lineage.reader import parse_since, resolve

from threadline.twin.graph_store import GraphStore, graph_path
from threadline.twin.neptune_standin import NeptuneStandin

OUT = Path(__file__).resolve().parent / "out"

ACCOUNT = "123456789012"
QUEUE = f"arn:aws:batch:us-east-1:{ACCOUNT}:job-queue/threadline-"
JOBDEF = f"arn:aws:batch:us-east-1:{ACCOUNT}:job-definition/threadline-"
IMAGE = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/threadline/"
INCOMING, MID, RESULTS = "threadline-incoming", "threadline-intermediate", "threadline-results"
OUTCOMES = (("ok", 0.84), ("spot_fallback", 0.05), ("capacity_fallback", 0.03), ("analysis_exit", 0.04),
            ("validation", 0.03), ("postprocess_spot_once", 0.01))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def image(step: str) -> str:
    """The step's image as job definitions name it, pinned by digest (only a pinned image gets a cache key)."""
    return f"{IMAGE}{step}@sha256:{hashlib.sha256(step.encode()).hexdigest()}"


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class RunFactory:
    """The two lineage events of one synthetic run, shaped as the state machine sends them."""

    def __init__(self, seed: int, files: int, now: datetime) -> None:
        self.random = random.Random(seed)
        self.files = files
        self.now = now
        self.versions: dict[int, int] = {}
        self.jobs = 0

    def job_id(self) -> str:
        self.jobs += 1
        return f"{self.jobs:08x}-bench-{self.random.getrandbits(48):012x}"

    def run(self, index: int) -> tuple[dict[str, Any], dict[str, Any], list[ObjectFacts], str]:
        file_no = self.random.randrange(self.files)
        version = self.versions.get(file_no, 0) + 1
        self.versions[file_no] = version
        key = f"incoming/positions-{file_no:05d}.csv"
        etag = f"{self.random.getrandbits(128):032x}"
        run_id = f"positions-{file_no:05d}-{index:016x}"
        start = self.now - timedelta(seconds=self.random.uniform(0, 30 * 24 * 3600))
        source = {"bucket": INCOMING, "key": key, "version_id": f"v{version}-{etag[:8]}", "etag": etag,
                  "size": self.random.randrange(10_000, 5_000_000), "uri": f"s3://{INCOMING}/{key}"}
        execution = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:threadline-pipeline:{run_id}"
        outcome = self.random.choices([o for o, _ in OUTCOMES], [w for _, w in OUTCOMES])[0]
        started = {"event": "run_started", "run_id": run_id, "execution_arn": execution, "source": source,
                   "at": iso(start)}
        jobs: dict[str, Any] = {}
        fails: dict[str, Any] = {}
        clock = start + timedelta(seconds=2)
        prefix = f"s3://{MID}/runs/{run_id}/"
        pre_params = {"run_id": run_id, "input_uri": source["uri"], "output_prefix": prefix + "preprocess/",
                      "quarantine_prefix": f"s3://threadline-quarantine/{run_id}/", "max_reject_share": "0.05"}
        ana_params = {"run_id": run_id, "clean_uri": prefix + "preprocess/clean.parquet",
                      "partials_prefix": prefix + "analysis/", "scenarios": "20000", "horizon_days": "10",
                      "seed": "20261121"}
        post_params = {"run_id": run_id, "partials_prefix": prefix + "analysis/", "num_nodes": "2",
                       "validation_uri": prefix + "preprocess/validation.json",
                       "report_prefix": f"s3://{RESULTS}/runs/{run_id}/"}
        error = None

        if outcome == "validation":
            job, clock = self.job("preprocess", "SpotJobQueue", pre_params, clock, [65])
            fails["preprocess"] = self.failure(job)
            error = {"Error": "ValidationFailed", "Cause": "positions file rejected: 12 of 40 rows failed validation."}
        else:
            if outcome == "spot_fallback":
                job, clock = self.job("preprocess", "SpotJobQueue", pre_params, clock, ["spot"] * 3)
                fails["preprocess"] = self.failure(job)
                jobs["preprocess_on_demand"], clock = self.job("preprocess", "OnDemandJobQueue", pre_params, clock, [0])
            else:
                jobs["preprocess"], clock = self.job("preprocess", "SpotJobQueue", pre_params, clock, [0])
            if outcome == "capacity_fallback":
                job, clock = self.job("analysis", "GpuJobQueue", ana_params, clock, [], capacity_cancel=True)
                fails["analysis"] = self.failure(job)
                jobs["analysis_fallback"], clock = self.job("analysis", "GpuFallbackJobQueue", ana_params, clock, [0])
            elif outcome == "analysis_exit":
                job, clock = self.job("analysis", "GpuJobQueue", ana_params, clock, [3])
                fails["analysis"] = self.failure(job)
                error = {"Error": "AnalysisFailed", "Cause": json.dumps(job)}
            else:
                jobs["analysis"], clock = self.job("analysis", "GpuJobQueue", ana_params, clock, [0])
            if error is None:
                codes = ["spot", 0] if outcome == "postprocess_spot_once" else [0]
                jobs["postprocess"], clock = self.job("postprocess", "SpotJobQueue", post_params, clock, codes)
        status = "FAILED" if error else "SUCCEEDED"
        finished = {"event": "run_finished", "status": status, "run_id": run_id, "execution_arn": execution,
                    "source": source, "at": iso(clock), "jobs": jobs, "failures": fails, "error": error}
        return started, finished, self.facts(run_id, source, status, outcome), outcome

    def job(self, step: str, queue: str, parameters: dict[str, str], clock: datetime, codes: list[Any],
            capacity_cancel: bool = False) -> tuple[dict[str, Any], datetime]:
        attempts = []
        for code in codes:
            began = clock + timedelta(seconds=self.random.uniform(5, 60))
            clock = began + timedelta(seconds=self.random.uniform(20, 900))
            container: dict[str, Any] = {"LogStreamName": f"{step}/default/{self.random.getrandbits(32):08x}"}
            reason = "Essential container in task exited"
            if code == "spot":
                reason = f"Host EC2 (instance i-0{self.random.getrandbits(60):015x}) terminated."
            else:
                container["ExitCode"] = code
            attempts.append({"Container": container, "StartedAt": ms(began), "StoppedAt": ms(clock),
                             "StatusReason": reason})
        succeeded = bool(codes) and codes[-1] == 0
        description: dict[str, Any] = {
            "JobId": self.job_id(), "JobName": f"{step}-{parameters['run_id']}", "JobQueue": QUEUE + queue,
            "Status": "SUCCEEDED" if succeeded else "FAILED", "JobDefinition": f"{JOBDEF}{step}:3",
            "Attempts": attempts, "Parameters": parameters,
            "StatusReason": ("Canceled by JobStateTimeLimit action due to reason: "
                             "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
                             if capacity_cancel else attempts[-1]["StatusReason"]),
        }
        if step == "analysis":
            description["NodeProperties"] = {"NumNodes": 2, "MainNode": 0, "NodeRangeProperties": [
                {"TargetNodes": "0:", "Container": {"Image": image("analysis")}}]}
        else:
            description["Container"] = {"Image": image(step)}
            if attempts and "ExitCode" in attempts[-1]["Container"]:
                description["Container"]["ExitCode"] = attempts[-1]["Container"]["ExitCode"]
        if capacity_cancel:
            clock = clock + timedelta(seconds=600)
        return description, clock

    @staticmethod
    def failure(description: dict[str, Any]) -> dict[str, Any]:
        return {"Error": "States.TaskFailed", "Cause": json.dumps(description), "Job": description}

    def facts(self, run_id: str, source: dict[str, Any], status: str, outcome: str) -> list[ObjectFacts]:
        if outcome == "validation":
            return []
        rows = self.random.randrange(100, 50_000)
        prefix = f"s3://{MID}/runs/{run_id}/"
        tag = lambda: f"{self.random.getrandbits(128):032x}"  # noqa: E731
        facts = [ObjectFacts(uri=source["uri"], row_count=rows + 3, schema="positions@1",
                             schema_hash="8ca31e15d314770d"),
                 ObjectFacts(uri=prefix + "preprocess/clean.parquet", etag=tag(), size=rows * 60, row_count=rows,
                             schema="positions@1", schema_hash="8ca31e15d314770d"),
                 ObjectFacts(uri=prefix + "preprocess/validation.json", etag=tag(), size=1100)]
        if outcome != "analysis_exit":
            facts += [ObjectFacts(uri=f"{prefix}analysis/node-{n:04d}.parquet", etag=tag(), size=160_000)
                      for n in range(2)]
        if status == "SUCCEEDED":
            facts += [ObjectFacts(uri=f"s3://{RESULTS}/runs/{run_id}/report.{ext}", etag=tag(), size=9000)
                      for ext in ("json", "html")]
        return facts


def percentiles(samples: list[float], engine: list[float] | None = None,
                cpu: list[float] | None = None) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda values, q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    stats = {"n": len(ordered), "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
             "p50_ms": round(pick(ordered, 0.5) * 1000, 2), "p95_ms": round(pick(ordered, 0.95) * 1000, 2),
             "max_ms": round(ordered[-1] * 1000, 2)}
    if engine:
        inside = sorted(engine)
        stats |= {"graph_p50_ms": round(pick(inside, 0.5) * 1000, 2),
                  "graph_p95_ms": round(pick(inside, 0.95) * 1000, 2)}
    if cpu:
        stats |= {"cpu_p50_ms": round(pick(sorted(cpu), 0.5) * 1000, 2)}
    return stats


class GraphClock:
    """The time spent inside the embedded graph (`GraphStore.run`), which the endpoint calls."""

    def __init__(self, store: GraphStore) -> None:
        self.seconds = 0.0
        self.queries = 0
        run = store.run

        def timed_run(query: str, parameters: Any = None) -> list[dict[str, Any]]:
            started = time.perf_counter()
            self.queries += 1
            try:
                return run(query, parameters)
            finally:
                self.seconds += time.perf_counter() - started

        store.run = timed_run  # type: ignore[method-assign]

    def timed(self, call: Any) -> tuple[float, float, float, Any]:
        """`call()`: its seconds end to end, the seconds of them inside the graph, the process's CPU seconds
        (client, endpoint and graph together), and its value."""
        inside, started, cpu = self.seconds, time.perf_counter(), time.process_time()
        value = call()
        return time.perf_counter() - started, self.seconds - inside, time.process_time() - cpu, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=0, help="distinct input files (default runs / 4)")
    parser.add_argument("--batch", type=int, default=250, help="runs per combined write while generating")
    parser.add_argument("--samples", type=int, default=100, help="events timed one by one through the endpoint")
    parser.add_argument("--queries", type=int, default=30, help="repetitions of each query")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="keep the generated graph in this folder")
    args = parser.parse_args()

    now = datetime.now(UTC)
    factory = RunFactory(args.seed, args.files or max(1, args.runs // 4), now)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="threadline-lineage-bench-"))
    if args.keep and folder.exists():
        shutil.rmtree(folder)
    store = GraphStore(graph_path(folder))
    results: dict[str, Any] = {"runs": args.runs, "machine_note": "2-core sandbox; the twin's embedded graph (ladybug)",
                               "load_average_at_start": [round(load, 2) for load in os.getloadavg()]}

    # 1. The graph of N runs, written with the production write code in combined batches.
    runs: list[dict[str, Any]] = []
    generate_started = time.perf_counter()
    batch: list[tuple[Any, Any]] = []
    queries_sent = 0
    for index in range(args.runs):
        started, finished, facts, outcome = factory.run(index)
        runs.append({"run_id": started["run_id"], "source": started["source"]["uri"], "outcome": outcome,
                     "finished": finished})
        batch += [(parse_lineage_event(started), ()), (parse_lineage_event(finished), facts)]
        if len(batch) >= 2 * args.batch or index == args.runs - 1:
            queries_sent += record_events(store, batch, "threadline").queries
            batch = []
    generate_seconds = time.perf_counter() - generate_started
    counts = {row["l"]: row["c"] for row in store.run("MATCH (n) RETURN label(n) AS l, count(*) AS c")}
    edges = store.run("MATCH ()-[e]->() RETURN count(*) AS c")[0]["c"]
    results["graph"] = {"nodes": counts, "relationships": edges, "write_seconds": round(generate_seconds, 1),
                        "events_per_second_batched": round(2 * args.runs / generate_seconds, 1),
                        "queries": queries_sent}
    print(f"graph: {args.runs} runs, {sum(counts.values())} nodes, {edges} relationships, written in "
          f"{generate_seconds:.1f}s ({2 * args.runs / generate_seconds:.0f} events/s in batches of {args.batch} runs)")

    # 2. Write latency per event through the local neptunedata endpoint and the production client.
    standin = NeptuneStandin(store).start()
    clock = GraphClock(store)
    client = boto3.client("neptunedata", endpoint_url=standin.url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    graph = NeptuneCypher(client)
    graph.run("RETURN 1 AS one")
    single: dict[str, list[float]] = {"run_started": [], "run_finished": []}
    single_inside: dict[str, list[float]] = {"run_started": [], "run_finished": []}
    single_cpu: dict[str, list[float]] = {"run_started": [], "run_finished": []}
    batched: list[float] = []
    batched_inside: list[float] = []
    batched_cpu: list[float] = []
    batch_queries: list[int] = []  # round trips per batch
    extra = RunFactory(args.seed + 1, max(1, args.samples // 2), now)
    pending: list[tuple[Any, Any]] = []
    for index in range(args.samples):
        started, finished, facts, _ = extra.run(args.runs + index)
        for kind, event, event_facts in (("run_started", started, ()), ("run_finished", finished, facts)):
            # Each lambda here and below is called at once, inside its loop.
            elapsed, inside, cpu, _ = clock.timed(
                lambda: record_event(graph, parse_lineage_event(event), "threadline", event_facts))  # noqa: B023
            single[kind].append(elapsed)
            single_inside[kind].append(inside)
            single_cpu[kind].append(cpu)
        pending += [(parse_lineage_event(started), ()), (parse_lineage_event(finished), facts)]
        if len(pending) >= 10:
            sent_before = clock.queries
            elapsed, inside, cpu, _ = clock.timed(lambda: record_events(graph, pending, "threadline"))  # noqa: B023
            batched.append(elapsed / len(pending))
            batched_inside.append(inside / len(pending))
            batched_cpu.append(cpu / len(pending))
            batch_queries.append(clock.queries - sent_before)
            pending = []
    results["write_latency"] = {kind: percentiles(samples, single_inside[kind], single_cpu[kind])
                                for kind, samples in single.items()}
    if batched:
        results["write_latency"]["per_event_in_batches_of_10"] = {
            **percentiles(batched, batched_inside, batched_cpu),
            "round_trips_per_batch": round(statistics.fmean(batch_queries), 1)}

    # 3. The queries users run, through the endpoint.
    rng = random.Random(args.seed + 2)
    succeeded = [r for r in runs
                 if r["outcome"] in ("ok", "spot_fallback", "capacity_fallback", "postprocess_spot_once")]
    timings: dict[str, list[float]] = {"upstream_of_report": [], "downstream_of_input": [],
                                       "input_versions_by_uri": [], "run_report": [], "failures_7d": [],
                                       "resume_lookup_by_cache_key": []}
    inside_graph: dict[str, list[float]] = {key: [] for key in timings}
    cpu_spent: dict[str, list[float]] = {key: [] for key in timings}
    sizes: dict[str, list[int]] = {key: [] for key in timings}
    since = parse_since("7d", now)
    keys = [row["k"] for row in store.run(
        "MATCH (a:StepAttempt) WHERE a.status = 'SUCCEEDED' AND a.step = 'analysis' RETURN a.cache_key AS k LIMIT 500")]
    for _ in range(args.queries):
        run = rng.choice(succeeded)
        report_uri = f"s3://{RESULTS}/runs/{run['run_id']}/report.json"
        for name, call, size in (
            ("upstream_of_report", lambda: upstream(graph, report_uri), lambda v: len(v.attempts)),  # noqa: B023
            ("downstream_of_input", lambda: downstream(graph, run["source"]), lambda v: len(v.attempts)),  # noqa: B023
            ("input_versions_by_uri", lambda: resolve(graph, run["source"]), len),  # noqa: B023 (downstream's start)
            ("run_report", lambda: run_report(graph, rng.choice(runs)["run_id"]), lambda v: len(v.attempts)),
            ("failures_7d", lambda: failures(graph, since), lambda v: len(v.runs)),
            ("resume_lookup_by_cache_key",
             lambda: graph.run(queries.REUSABLE_ATTEMPTS, {"cache_key": rng.choice(keys)}), len),
        ):
            elapsed, inside, cpu, value = clock.timed(call)
            timings[name].append(elapsed)
            inside_graph[name].append(inside)
            cpu_spent[name].append(cpu)
            sizes[name].append(size(value))
    results["queries"] = {name: {**percentiles(samples, inside_graph[name], cpu_spent[name]),
                                 "mean_result_size": round(statistics.fmean(sizes[name]), 1)}
                          for name, samples in timings.items()}
    standin.stop()
    store.close()
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)

    results["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "lineage.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'measure':46} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9} {'graph p50':>10} {'graph p95':>10}"
          f" {'cpu p50':>8}")
    for section in ("write_latency", "queries"):
        for name, stats in results[section].items():
            print(f"{section + ': ' + name:46} {stats['n']:>5} {stats['p50_ms']:>9} {stats['p95_ms']:>9} "
                  f"{stats['mean_ms']:>9} {stats['graph_p50_ms']:>10} {stats['graph_p95_ms']:>10} "
                  f"{stats['cpu_p50_ms']:>8}")
    print(f"load average (1, 5, 15 min) at start {results['load_average_at_start']}, "
          f"at end {results['load_average_at_end']}")
    print(f"written to {OUT / 'lineage.json'}")


if __name__ == "__main__":
    main()
