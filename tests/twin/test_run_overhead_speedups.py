"""Per-run waits that end on the event they wait for: a Batch job's end, a job process's end."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from threadline.twin import moto_speedups
from threadline.twin.job_launcher import JobLauncher

LONG_S = 30.0  # a sleep that a wake-up must cut short; far above any scheduling delay


@pytest.fixture(autouse=True)
def installed():
    moto_speedups.install()
    yield
    moto_speedups.hook_interpreter_clients([])


def _sync_loop_time():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_module,
    )

    return vars(callback_module)["time"]


def _sleep_in_thread(seconds: float) -> tuple[threading.Thread, threading.Event, threading.Event]:
    """A thread that sleeps as the `.sync` loop does, once to settle and then `seconds`."""
    sleep = _sync_loop_time().sleep
    settled, woke = threading.Event(), threading.Event()

    def run() -> None:
        sleep(0)  # a thread's first sleep only records the job ends it has seen
        settled.set()
        sleep(seconds)
        woke.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, settled, woke


def test_a_job_end_wakes_a_sync_poll_sleeping_between_polls():
    thread, settled, woke = _sleep_in_thread(LONG_S)
    assert settled.wait(LONG_S)
    assert not woke.wait(0.2)  # nothing ended: it sleeps on
    started = time.monotonic()
    moto_speedups.batch_job_ended()
    assert woke.wait(LONG_S)
    assert time.monotonic() - started < LONG_S / 2
    thread.join(LONG_S)


def test_a_job_end_between_a_poll_and_the_sleep_is_not_missed():
    sleep = _sync_loop_time().sleep
    sleep(0)  # this thread has now seen every job end so far
    moto_speedups.batch_job_ended()  # as if the job ended right after this thread's poll
    started = time.monotonic()
    sleep(LONG_S)
    assert time.monotonic() - started < LONG_S / 2


def test_with_no_job_end_the_sleep_lasts_its_time():
    sleep = _sync_loop_time().sleep
    sleep(0)
    started = time.monotonic()
    sleep(0.2)
    assert time.monotonic() - started >= 0.19


def test_the_runtime_wakes_polls_on_terminal_statuses_only(tmp_path, monkeypatch):
    from threadline.twin.batch_runtime import JobRecord, LocalBatchRuntime
    from threadline.twin.faults import FaultPlan

    ends: list[str] = []
    monkeypatch.setattr(moto_speedups, "batch_job_ended", lambda: ends.append("ended"))
    runtime = LocalBatchRuntime(tmp_path, {}, tmp_path / "logs", FaultPlan())

    class Job:
        status = "SUBMITTED"

    job, record = Job(), JobRecord("id", "name", "definition", "queue")
    for status in ("PENDING", "RUNNABLE", "STARTING", "RUNNING"):
        runtime._set_status(job, record, status)
    assert ends == []
    runtime._set_status(job, record, "SUCCEEDED")
    runtime._set_status(job, record, "FAILED")
    assert ends == ["ended", "ended"]



def test_a_warm_job_process_end_wakes_the_attempt_loop_before_its_timeout(tmp_path):
    package = tmp_path / "shortjob"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("import time\ntime.sleep(0.3)\n")
    launcher = JobLauncher(warm=True)
    launcher.start_zygote()
    try:
        assert launcher.wait_ready(120), "the zygote did not import its libraries"
        process = launcher.start([sys.executable, "-m", "shortjob"], tmp_path,
                                 {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path)},
                                 tmp_path / "job.log")
        assert launcher.started_warm == 1
        started = time.monotonic()
        while process.poll() is None:  # other answers may wake it too; the end must
            assert time.monotonic() - started < LONG_S, "the process's end did not wake the wait"
            launcher.wait_for_exit(LONG_S)
        assert process.returncode == 0
        assert time.monotonic() - started < LONG_S / 2
    finally:
        launcher.close()
