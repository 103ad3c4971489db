"""The fault matrix (fault_matrix.CASES) through the twin: every fault kind x stage ends as the table says.

Each case is one run, its faults scoped to it. For each: the execution's status and
error, the run record's status (and who closed it), the lineage Run node's status,
the run's Slack messages, and where the table names one, the alarm's Slack message;
the evidence behind the row (`_check_details`), such as the states the run took; and,
over the matrix, the new dead letters of each queue. Runs overlap as runs of
several uploads do, except where a fault reaches past its own run (`run_matrix`).
A `hang` case's run meets a task time limit of a few seconds, deployed for that run only.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from pipeline_helpers import FAILURE_TAIL, HAPPY_PATH, definition_changed, start_resume, until

from threadline import samples
from threadline.lineage.view import twin_graph
from threadline.twin.faults import Fault
from threadline.twin.runs import (
    TERMINAL,
    RunNotStarted,
    RunResult,
    collect,
    find_execution,
    slack_messages,
    upload,
    wait,
)
from threadline.twin.server import Twin

from fault_matrix import CASES, NO_RUN, FaultCase

pytestmark = pytest.mark.pipeline

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()
DEAD_LETTER_QUEUES = ("StartRunDeadLetterQueue", "NotifySlackDeadLetterQueue", "FinaliseRunDeadLetterQueue",
                      "LineageDeadLetterQueue")
# A hung job waits out its task's time limit, whatever it is; a real step never meets this one in a `hang` case
# (pre-processing's limit ends a hung pre-processing job before any other step runs; the analysis has its own).
HANG_LIMIT_S = 3
# Runs in flight at once: the GPU queue runs two analyses at a time and the twin four job attempts, so
# more runs would only wait RUNNABLE, and that wait counts against each task's time limit.
CONCURRENT_RUNS = 4
RUN_TIMEOUT_S = 180
PREPROCESS_FAILED = ["CheckPreprocessFailure", "ParsePreprocessFailure", "PreprocessFailureKind"]
ANALYSIS_FAILED = ["CheckAnalysisFailure", "ParseAnalysisFailure", "AnalysisFailureKind"]
POSTPROCESS_FAILED = ["CheckPostprocessFailure", "ParsePostprocessFailure", "PostprocessFailureKind"]
# The states some cases' runs take, in order: each fault's branch of the state machine.
PATHS = {
    "happy": HAPPY_PATH,
    "pre-spot": HAPPY_PATH[:6] + PREPROCESS_FAILED + ["PreprocessOnDemand"] + HAPPY_PATH[6:],
    "ana-capacity": HAPPY_PATH[:7] + ANALYSIS_FAILED + ["AnalysisOnFallbackQueue"] + HAPPY_PATH[7:],
    "ana-capacity-both": HAPPY_PATH[:7] + ANALYSIS_FAILED + [
        "AnalysisOnFallbackQueue", "CheckAnalysisFallbackFailure", "ParseAnalysisFallbackFailure", "AnalysisFailed",
    ] + FAILURE_TAIL,
    "ana-exit": HAPPY_PATH[:7] + ANALYSIS_FAILED + ["AnalysisFailed"] + FAILURE_TAIL,
    "post-spot": HAPPY_PATH[:8] + POSTPROCESS_FAILED + ["PostprocessOnDemand"] + HAPPY_PATH[8:],
    "slack-down": HAPPY_PATH,
}


@dataclass(eq=False)
class CaseRun:
    """One case's run: its execution, then the run ended and collected, or what went wrong on the way."""

    case: FaultCase
    arn: str | None = None
    result: RunResult | None = None
    error: BaseException | None = None

    @property
    def stem(self) -> str:
        """The uploaded file's stem, which starts the run id: "-run" ends it so that none starts another
        (ana-capacity, ana-capacity-both), and a fault scoped to one run never hits another."""
        return f"fm-{self.case.name}-run"

    def step(self, action: Callable[[Twin, CaseRun], None], twin: Twin) -> None:
        """Take the next step, unless an earlier one failed; a failure is kept for the case's check to raise."""
        if self.error is None:
            try:
                action(twin, self)
            except (Exception, pytest.fail.Exception) as exc:
                self.error = exc


def test_every_fault_ends_as_the_matrix_says(twin: Twin, visited: set[str], subtests: pytest.Subtests) -> None:
    letters_before = dead_letters(twin)
    outbox_before = set(twin.outbox.glob("*.json"))
    runs = [CaseRun(case) for case in CASES]
    try:
        run_matrix(twin, runs)
        for run in runs:
            with subtests.test(run.case.name):
                _check_case(twin, run, outbox_before, visited)
    finally:
        for run in runs:
            twin.faults.clear(run_id=run.stem)
    # Runs overlap, so dead letters are counted over the matrix: each queue gets what its cases expect there.
    assert dead_letters(twin) == expected_letters(CASES, letters_before)


def run_matrix(twin: Twin, runs: list[CaseRun]) -> None:
    """Start, end and collect every case's run. Runs overlap, except where a fault reaches past its own run.

    With Neptune down no run records lineage, so that case runs alone; a `hang` case's time limit
    is deployed for the state machine, so nothing else starts while it is; the start function's
    fault cannot be scoped to one upload, so nothing else is uploaded while it is in force. The
    rest run CONCURRENT_RUNS at a time.
    """
    for run in runs:
        for spec in run.case.faults:
            twin.faults.add(Fault.parse(spec, run_id=run.stem))
    alone = [run for run in runs if run.case.action == "neptune-down"]
    hanging = [run for run in runs if _hangs(run.case)]
    unstarted = [run for run in runs if run.case.action == "start-fault"]
    for run in alone:
        run.step(_run_with_neptune_down, twin)
    for run in hanging:
        run.step(_start_with_hang_limit, twin)
    for run in unstarted:
        run.step(_upload_unstarted, twin)
    # Two-part cases first (a resumed second run; a big file to write and validate): started last, they
    # would end the matrix alone.
    together = sorted((run for run in runs if run not in alone + hanging + unstarted),
                      key=lambda run: run.case.action not in ("resume", "invalid-file"))
    with ThreadPoolExecutor(CONCURRENT_RUNS) as pool:
        list(pool.map(lambda run: run.step(_run_to_end, twin), together))
    for run in hanging:
        run.step(_wait, twin)
    # Collected once every run has ended: a collect waits for all the twin's async work (notices, the finaliser),
    # which runs of other cases would otherwise keep busy.
    ended = [run for run in runs if run.result is not None]
    with ThreadPoolExecutor(max(1, len(ended))) as pool:
        list(pool.map(lambda run: run.step(_collect, twin), ended))


def _hangs(case: FaultCase) -> bool:
    return any(Fault.parse(spec).kind == "hang" for spec in case.faults)


def _start(twin: Twin, run: CaseRun) -> None:
    """Upload the case's file as users do; the execution it started."""
    body = invalid_file() if run.case.action == "invalid-file" else SAMPLE
    uploaded = upload(twin, body, f"incoming/{run.stem}.csv")
    run.arn = find_execution(twin, uploaded["bucket"], uploaded["key"], uploaded["version_id"],
                             since=uploaded["uploaded_at"])


def _wait(twin: Twin, run: CaseRun) -> None:
    """The run, once ended. Polled every 0.1 s, not `wait`'s 0.05 s: several runs' polls share the CPU with the runs."""
    arn = run.arn
    assert arn is not None
    sfn = twin.client("stepfunctions")
    until(lambda: sfn.describe_execution(executionArn=arn)["status"] in TERMINAL, RUN_TIMEOUT_S, f"{arn} to end")
    run.result = wait(twin, arn, timeout=RUN_TIMEOUT_S)


def _collect(twin: Twin, run: CaseRun) -> None:
    assert run.result is not None
    run.result = collect(twin, run.result, save=False)  # read through the APIs: no local files needed


def _run_with_neptune_down(twin: Twin, run: CaseRun) -> None:
    """Neptune is down from the upload until the execution ends; the run's lineage must come back after it."""
    twin.neptune.set_down(True)
    try:
        _start(twin, run)
        _wait(twin, run)
    finally:
        twin.neptune.set_down(False)


def _start_with_hang_limit(twin: Twin, run: CaseRun) -> None:
    """Start the run under a definition whose time limit for the case's stage is HANG_LIMIT_S."""
    with definition_changed(twin, hang_limit(run.case)):
        _start(twin, run)


def _upload_unstarted(twin: Twin, run: CaseRun) -> None:
    """An upload whose start function fails on every try: once its event is dead-lettered, no run ever starts."""
    start_fault = Fault.parse("StartRunFunction:error")  # the S3 event carries no run id to scope by
    queue = "StartRunDeadLetterQueue"
    expected = dead_letters(twin)[queue] + run.case.dead_letters.get(queue, 0)
    twin.faults.add(start_fault)
    try:
        uploaded = upload(twin, SAMPLE, f"incoming/{run.stem}.csv")
        # Once the event is dead-lettered, Lambda never runs the start function for it again.
        until(lambda: dead_letters(twin)[queue] == expected, 60, "the upload's event in its dead-letter queue")
    finally:
        twin.faults.remove(start_fault)
    with pytest.raises(RunNotStarted) as raised:
        find_execution(twin, uploaded["bucket"], uploaded["key"], uploaded["version_id"], timeout=0)
    assert type(raised.value) is RunNotStarted, raised.value  # not skipped: never started


def _run_to_end(twin: Twin, run: CaseRun) -> None:
    """Start the run, act on it as the case says (stop it, or resume it when it has ended), wait for its end."""
    _start(twin, run)
    assert run.arn is not None
    if run.case.action == "abort":
        arn = run.arn
        until(lambda: "Analysis" in _states(twin, arn), 60, "the analysis to start")
        twin.client("stepfunctions").stop_execution(executionArn=arn, error="Stopped", cause="the fault matrix")
    _wait(twin, run)
    if run.case.action == "resume":
        earlier = run.result
        assert earlier is not None and earlier.status == "SUCCEEDED", earlier and earlier.cause
        # The resumed run plans from the lineage graph, which must hold the earlier run by then.
        until(lambda: lineage_status(twin, earlier.run_id) == "SUCCEEDED", 60, "the earlier run's lineage")
        run.arn = start_resume(twin, earlier)
        _wait(twin, run)


def _states(twin: Twin, arn: str) -> list[str]:
    events = twin.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def dead_letters(twin: Twin) -> dict[str, int]:
    sqs = twin.client("sqs")
    counts = {}
    for queue in DEAD_LETTER_QUEUES:
        attributes = sqs.get_queue_attributes(QueueUrl=twin.physical_id(queue),
                                              AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        counts[queue] = int(attributes["ApproximateNumberOfMessages"])
    return counts


def expected_letters(cases: tuple[FaultCase, ...], before: dict[str, int]) -> dict[str, int]:
    return {queue: before[queue] + sum(case.dead_letters.get(queue, 0) for case in cases) for queue in before}


def invalid_file() -> bytes:
    """Tens of thousands of rejected rows: a validation report past Step Functions' 256 KiB limit.

    Nine rows in ten name a sector no schema allows, 190 characters long, so that the
    report's 1,000 sample rejects alone are over 256 KiB.
    """
    out = io.StringIO()
    samples.write(out, rows=30_000, seed=11)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    sector = rows[0].index("sector")
    for number, row in enumerate(rows[1:]):
        if number % 10:
            row[sector] = f"sector-{number:06d}-" + "x" * 176
    written = io.StringIO()
    csv.writer(written, lineterminator="\n").writerows(rows)
    return written.getvalue().encode()


def lineage_status(twin: Twin, run_id: str) -> str | None:
    rows = twin_graph(twin).run("MATCH (r:Run {run_id: $run_id}) RETURN r.status AS status", {"run_id": run_id})
    return rows[0]["status"] if rows else None


def hang_limit(case: FaultCase) -> Callable[[str], str]:
    """A definition change: the time limit of the tasks waiting on the case's stage becomes HANG_LIMIT_S."""
    key = "analysis_task_s" if case.stage == "analysis" else "job_task_s"

    def change(text: str) -> str:
        definition = json.loads(text)
        limits = definition["States"]["InitialiseRun"]["Parameters"]["limits"]
        del limits[f"{key}.$"]
        limits[key] = HANG_LIMIT_S
        return json.dumps(definition)

    return change


def _check_case(twin: Twin, run: CaseRun, outbox_before: set[Path], visited: set[str]) -> None:
    case, result = run.case, run.result
    if run.error is not None:
        raise run.error
    if result is None:
        assert case.status == NO_RUN
    else:
        visited.update(result.path)
        assert (result.status, result.error) == (case.status, case.error), result.cause
        assert result.record is not None and result.record["status"] == case.record, result.record
        assert result.record.get("closed_by") == case.closed_by
        assert not result.record.get("pending"), "the finaliser still owes a notice"
        # Each notice is its own async invocation: a retried one may land after a later notice, in
        # Slack as here, so the matrix names which notices arrive, each once, not their order.
        assert sorted(m["kind"] for m in slack_messages(twin, result.run_id)) == sorted(case.slack)
        until(lambda: lineage_status(twin, result.run_id) == case.lineage, 60,
              f"lineage run status {case.lineage} (now {lineage_status(twin, result.run_id)})")
        _check_details(twin, case, result)
    if case.alarm:
        alarm_name = f"{twin.config.stack_name}-{case.alarm}"
        until(lambda: [m for m in set(twin.outbox.glob("*.json")) - outbox_before
                       if alarm_name in m.read_text(encoding="utf-8")], 30, f"the {case.alarm} Slack message")


def _check_details(twin: Twin, case: FaultCase, result: RunResult) -> None:
    """What the columns do not say: the evidence that each fault took the path it claims."""
    if case.name in PATHS:
        assert result.path == PATHS[case.name]
    jobs = [job for job in twin.batch_runtime.jobs.values() if result.run_id in job.job_name]
    if case.name == "happy":
        results = result.objects["ResultsBucket"]
        assert any(uri.endswith("/report.json") for uri in results)
        assert any(uri.endswith("/report.html") for uri in results)
        assert "QuarantineBucket" not in result.objects
        assert result.record["execution_arn"] == result.execution_arn
        assert [m.get("kind") for m in result.slack] == ["run_started", "run_succeeded"]  # no retry: in order
    if case.name == "pre-spot":
        [spot] = [job for job in jobs if job.job_name == f"preprocess-{result.run_id}"]
        # Batch's own retry (evaluateOnExit: RETRY on "Host EC2*") used all three attempts before the fallback.
        assert [a["statusReason"][:9] for a in spot.attempts] == ["Host EC2 "] * 3
    if case.name == "ana-capacity":
        cancelled = next(job for job in jobs if job.job_name == f"analysis-{result.run_id}")  # the GPU queue's
        assert cancelled.status_reason.startswith("Canceled by JobStateTimeLimit action due to reason: CAPACITY:")
        assert cancelled.attempts == []  # it never left RUNNABLE
    if case.name == "ana-capacity-both":
        assert json.loads(result.cause or "{}")["StatusReason"].startswith("Canceled by JobStateTimeLimit action")
    if case.name == "ana-exit":
        cause = json.loads(result.cause or "{}")  # the Batch job description, as Step Functions reported it
        assert cause["Container"]["ExitCode"] == 3
        assert cause["StatusReason"] == "Essential container in task exited"
        assert [m.get("kind") for m in result.slack] == ["run_started", "run_failed"]  # no retry: in order
    if case.name == "pre-kill":
        [killed] = [job for job in jobs if job.job_name.startswith("preprocess-")]
        assert killed.attempts[-1]["container"]["exitCode"] == 137
    if case.name in ("pre-hang", "ana-hang"):
        step = "preprocess-" if case.name == "pre-hang" else "analysis-"
        [hung] = [job for job in jobs if job.job_name.startswith(step)]
        until(lambda: hung.status == "FAILED", 10, "the timed-out task's job to be terminated")
    if case.name == "pre-invalid":
        summary = result.record["error_cause"]
        assert "27000 of 30000 rows failed validation" in summary
        assert summary in json.dumps(slack_messages(twin, result.run_id)[-1], ensure_ascii=False)
        report = twin.client("s3").get_object(Bucket=twin.physical_id("QuarantineBucket"),
                                              Key=f"{result.run_id}/validation.json")["Body"].read()
        assert len(report) > 256 * 1024  # read whole, it would have ended the run with States.DataLimitExceeded
    if case.name in ("pre-server-error", "pre-client-error"):
        code = "ServerException" if case.name == "pre-server-error" else "ClientException"
        assert f"Error Code: {code}" in (result.cause or ""), result.cause  # the API's plain-text Cause, kept
    if case.name == "abort":
        assert all(job.status in ("SUCCEEDED", "FAILED") for job in jobs), "a job outlived its aborted run"
    if case.name == "oversize":
        assert result.record["error_name"] == "States.DataLimitExceeded"
