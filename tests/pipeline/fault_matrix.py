"""The fault matrix: every fault kind the twin injects, at every stage it applies to, and what must follow.

`test_fault_matrix.py` runs each case through the twin and checks every column;
`docs/faults.md` shows the same table, and `test_faults_doc.py` keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NO_RUN = "no run"
RUN_STARTED, RUN_SUCCEEDED, RUN_FAILED, VALIDATION_FAILED = (
    "run_started", "run_succeeded", "run_failed", "validation_failed")
OK_NOTICES = (RUN_STARTED, RUN_SUCCEEDED)
FAILED_NOTICES = (RUN_STARTED, RUN_FAILED)


@dataclass(frozen=True)
class FaultCase:
    name: str
    stage: str  # upload, preprocess, analysis, postprocess, notices, lineage, execution
    fault: str  # what goes wrong, in words
    faults: tuple[str, ...] = ()  # twin fault specs (JOB[@QUEUE]:KIND[:ATTEMPTS]), scoped to the run
    action: str | None = None  # abort | resume | invalid-file | neptune-down | start-fault
    status: str = "SUCCEEDED"  # the execution's end, or NO_RUN
    error: str | None = None  # the execution's error
    record: str | None = "SUCCEEDED"  # the run record's status
    closed_by: str | None = None  # "finaliser" when the safety net closed the run
    lineage: str | None = "SUCCEEDED"  # the lineage Run node's status
    slack: tuple[str, ...] = OK_NOTICES  # the run's Slack messages, in order
    dead_letters: dict[str, int] = field(default_factory=dict)  # queue logical id -> new messages
    alarm: str | None = None  # an alarm whose Slack message must arrive


CASES: tuple[FaultCase, ...] = (
    FaultCase("happy", "preprocess", "none"),
    FaultCase("pre-spot", "preprocess", "Spot reclaimed on all 3 attempts",
              ("preprocess@SpotJobQueue:spot",)),
    FaultCase("pre-capacity", "preprocess", "stuck RUNNABLE on the Spot queue",
              ("preprocess@SpotJobQueue:capacity",)),
    FaultCase("pre-kill", "preprocess", "process killed (SIGKILL, exit 137)", ("preprocess:kill",),
              status="FAILED", error="PreprocessFailed", record="FAILED", lineage="FAILED", slack=FAILED_NOTICES),
    FaultCase("pre-hang", "preprocess", "job never ends: task time limit", ("preprocess:hang",),
              status="FAILED", error="PreprocessFailed", record="FAILED", lineage="FAILED", slack=FAILED_NOTICES),
    FaultCase("pre-throttle", "preprocess", "SubmitJob throttled 3 times", ("preprocess:submit-throttle:1-3",)),
    FaultCase("pre-server-error", "preprocess", "SubmitJob 500 (plain-text Cause) on every try",
              ("preprocess:submit-server-error",),
              status="FAILED", error="PreprocessFailed", record="FAILED", lineage="FAILED", slack=FAILED_NOTICES),
    FaultCase("pre-client-error", "preprocess", "SubmitJob 400 ClientException", ("preprocess:submit-client-error",),
              status="FAILED", error="PreprocessFailed", record="FAILED", lineage="FAILED", slack=FAILED_NOTICES),
    FaultCase("pre-invalid", "preprocess", "30,000 rows, 27,000 rejected (report > 256 KiB)",
              action="invalid-file", status="FAILED", error="ValidationFailed", record="FAILED", lineage="FAILED",
              slack=(RUN_STARTED, VALIDATION_FAILED)),
    FaultCase("ana-capacity", "analysis", "stuck RUNNABLE on the GPU queue", ("analysis@GpuJobQueue:capacity",)),
    FaultCase("ana-capacity-both", "analysis", "stuck RUNNABLE on both GPU queues",
              ("analysis@GpuJobQueue:capacity", "analysis@GpuFallbackJobQueue:capacity"),
              status="FAILED", error="AnalysisFailed", record="FAILED", lineage="FAILED", slack=FAILED_NOTICES),
    FaultCase("ana-exit", "analysis", "application exit 3", ("analysis:exit=3",),
              status="FAILED", error="AnalysisFailed", record="FAILED", lineage="FAILED", slack=FAILED_NOTICES),
    FaultCase("ana-hang", "analysis", "job never ends: task time limit", ("analysis:hang",),
              status="FAILED", error="AnalysisFailed", record="FAILED", lineage="FAILED", slack=FAILED_NOTICES),
    FaultCase("post-spot", "postprocess", "Spot reclaimed on all 3 attempts", ("postprocess@SpotJobQueue:spot",)),
    FaultCase("post-capacity", "postprocess", "stuck RUNNABLE on the Spot queue",
              ("postprocess@SpotJobQueue:capacity",)),
    FaultCase("post-server-error", "postprocess", "SubmitJob 500 twice, then accepted",
              ("postprocess:submit-server-error:1-2",)),
    FaultCase("slack-flaky", "notices", "Slack function fails twice", ("NotifySlackFunction:error:1-2",)),
    FaultCase("slack-down", "notices", "Slack function fails on every try", ("NotifySlackFunction:error",),
              slack=(), dead_letters={"NotifySlackDeadLetterQueue": 2}),
    FaultCase("slack-throttled", "notices", "Lambda throttles the Slack function 3 times",
              ("NotifySlackFunction:throttle:1-3",)),
    FaultCase("start-error", "upload", "start function fails on every try", action="start-fault",
              status=NO_RUN, record=None, lineage=None, slack=(),
              dead_letters={"StartRunDeadLetterQueue": 1}, alarm="StartRunDeadLettersAlarm"),
    FaultCase("neptune-down", "lineage", "Neptune down during the run, back after it", action="neptune-down"),
    FaultCase("abort", "execution", "StopExecution while the analysis runs", action="abort",
              status="ABORTED", record="ABORTED", closed_by="finaliser", lineage="ABORTED", slack=FAILED_NOTICES),
    FaultCase("oversize", "execution", "a resumed run's plan over 256 KiB (uncatchable)",
              ("PlanResumeFunction:oversize",), action="resume", status="FAILED", error="States.DataLimitExceeded",
              record="FAILED", closed_by="finaliser", lineage="FAILED", slack=FAILED_NOTICES),
)

HEADER = ("| case | stage | fault | execution | run record | lineage run | Slack | dead letters |\n"
          "|---|---|---|---|---|---|---|---|")


def table(cases: tuple[FaultCase, ...] = CASES) -> str:
    """The matrix as the Markdown table in docs/faults.md."""
    rows = [HEADER]
    for case in cases:
        execution = case.status + (f" `{case.error}`" if case.error else "")
        record = "none" if case.record is None else case.record + (" (finaliser)" if case.closed_by else "")
        slack = ", ".join(case.slack) or "none"
        if case.alarm:
            slack += f"; alarm {case.alarm}"
        letters = ", ".join(f"{queue} +{count}" for queue, count in case.dead_letters.items()) or "none"
        rows.append(f"| {case.name} | {case.stage} | {case.fault} | {execution} | {record} | "
                    f"{case.lineage or 'none'} | {slack} | {letters} |")
    return "\n".join(rows)
