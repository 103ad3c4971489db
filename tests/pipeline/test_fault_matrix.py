"""The fault matrix (fault_matrix.CASES) through the twin: every fault kind x stage ends as the table says.

For each case: the execution's status and error, the run record's status (and who
closed it), the lineage Run node's status, the run's Slack messages in order, new
dead letters, and where the table names one, the alarm's Slack message; and the
evidence behind the row (`_check_details`), such as the states the run took. A
`hang` case's run meets a task time limit of a few seconds, deployed for that run only.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import pytest
from pipeline_helpers import FAILURE_TAIL, HAPPY_PATH, definition_changed, until

from threadline import samples
from threadline.lineage.rerun import rerun, source_of_run
from threadline.lineage.view import twin_graph
from threadline.twin.faults import Fault
from threadline.twin.runs import RunNotStarted, RunResult, collect, find_execution, slack_messages, upload, wait
from threadline.twin.server import Twin

from fault_matrix import CASES, NO_RUN, FaultCase

pytestmark = pytest.mark.pipeline

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()
DEAD_LETTER_QUEUES = ("StartRunDeadLetterQueue", "NotifySlackDeadLetterQueue", "FinaliseRunDeadLetterQueue",
                      "LineageDeadLetterQueue")
# A hung job waits out its task's time limit, whatever it is; a real step never meets this one in a `hang` case
# (pre-processing's limit ends a hung pre-processing job before any other step runs; the analysis has its own).
HANG_LIMIT_S = 3
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


def dead_letters(twin: Twin) -> dict[str, int]:
    sqs = twin.client("sqs")
    counts = {}
    for queue in DEAD_LETTER_QUEUES:
        attributes = sqs.get_queue_attributes(QueueUrl=twin.physical_id(queue),
                                              AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        counts[queue] = int(attributes["ApproximateNumberOfMessages"])
    return counts


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


def expected_letters(case: FaultCase, before: dict[str, int]) -> dict[str, int]:
    return {queue: before[queue] + case.dead_letters.get(queue, 0) for queue in before}


def run_case(twin: Twin, case: FaultCase, letters_before: dict[str, int]) -> RunResult | None:
    """Start the case's run as users do (an upload), with its faults and action; the finished run."""
    stem = f"fm-{case.name}"
    for spec in case.faults:
        twin.faults.add(Fault.parse(spec, run_id=stem))
    if case.action == "start-fault":
        twin.faults.add(Fault.parse("StartRunFunction:error"))  # the S3 event carries no run id to scope by
    if case.action == "neptune-down":
        twin.neptune.set_down(True)
    hangs = any(Fault.parse(spec).kind == "hang" for spec in case.faults)
    try:
        with definition_changed(twin, hang_limit(case)) if hangs else nullcontext():
            return _upload_and_wait(twin, case, stem, letters_before)
    finally:
        if case.action == "neptune-down":
            twin.neptune.set_down(False)
        twin.faults.clear(run_id=stem)
        if case.action == "start-fault":
            twin.faults.clear()


def _upload_and_wait(twin: Twin, case: FaultCase, stem: str, letters_before: dict[str, int]) -> RunResult | None:
    body = invalid_file() if case.action == "invalid-file" else SAMPLE
    uploaded = upload(twin, body, f"incoming/{stem}.csv")
    if case.status == NO_RUN:
        # Once the event is dead-lettered, Lambda never runs the start function for it again.
        until(lambda: dead_letters(twin) == expected_letters(case, letters_before), 60,
              "the upload's event in its dead-letter queue")
        with pytest.raises(RunNotStarted) as raised:
            find_execution(twin, uploaded["bucket"], uploaded["key"], uploaded["version_id"], timeout=0)
        assert type(raised.value) is RunNotStarted, raised.value  # not skipped: never started
        return None
    arn = find_execution(twin, uploaded["bucket"], uploaded["key"], uploaded["version_id"])
    if case.action == "abort":
        until(lambda: "Analysis" in _states(twin, arn), 60, "the analysis to start")
        twin.client("stepfunctions").stop_execution(executionArn=arn, error="Stopped", cause="the fault matrix")
    result = wait(twin, arn, timeout=180)
    if case.action == "resume":
        assert result.status == "SUCCEEDED", result.cause
        assert twin.event_sources is not None and twin.event_sources.wait_idle(60)
        sfn = twin.client("stepfunctions")
        source = source_of_run(sfn, twin.state_machine_arn, result.run_id)
        _, arn = rerun(sfn, twin.state_machine_arn, source, base_run_id=result.run_id)
        result = wait(twin, arn, timeout=180)
    return collect(twin, result)


def _states(twin: Twin, arn: str) -> list[str]:
    events = twin.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_fault_ends_as_the_matrix_says(twin: Twin, case: FaultCase, visited: set[str]) -> None:
    letters_before = dead_letters(twin)
    outbox_before = set(twin.outbox.glob("*.json"))

    result = run_case(twin, case, letters_before)

    twin.wait_for_async(60)
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
        assert twin.event_sources is not None
        until(lambda: lineage_status(twin, result.run_id) == case.lineage, 60,
              f"lineage run status {case.lineage} (now {lineage_status(twin, result.run_id)})")
        _check_details(twin, case, result)

    assert dead_letters(twin) == expected_letters(case, letters_before)
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
