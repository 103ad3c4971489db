"""Job processes forked from the warm zygote behave as the cold `python -m` processes they replace."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.twin.job_launcher import ColdProcess, JobLauncher, WarmProcess
from threadline.twin.job_zygote import BACKSTOP_S, SPARES

JOB = '''
import gc, json, os, signal, sys, time
import probejob
probejob.calls += 1  # module state: a fresh process sees 1, however many jobs ran before
mode = sys.argv[1]
print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "calls": probejob.calls,
                  "secret": os.environ.get("TWIN_ONLY"), "given": os.environ.get("GIVEN"),
                  "numpy_loaded": "numpy" in sys.modules, "path0": sys.path[0],
                  "bytecode": probejob.__cached__, "frozen": gc.get_freeze_count(),
                  "sigchld_default": signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL,
                  "wakeup_fd": signal.set_wakeup_fd(-1)}))
if mode == "exit":
    sys.exit(int(sys.argv[2]))
if mode == "raise":
    raise RuntimeError("the job failed")
if mode == "sleep":
    time.sleep(30)
'''


@pytest.fixture(scope="module")
def launcher() -> Iterator[JobLauncher]:
    warm = JobLauncher(warm=True)
    warm.start_zygote()
    assert warm.wait_ready(60), "the zygote did not import its libraries"
    yield warm
    warm.close()


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    package = tmp_path / "probejob"
    package.mkdir()
    (package / "__init__.py").write_text("calls = 0\n")
    (package / "__main__.py").write_text(JOB)
    return tmp_path


def run(launcher: JobLauncher, job_dir: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    log = job_dir / f"log-{time.monotonic_ns()}.txt"
    process = launcher.start([sys.executable, "-m", "probejob", *args], job_dir,
                             {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(job_dir), **(env or {})}, log)
    return process.wait(), log.read_text()


def test_a_job_runs_its_module_with_its_arguments_folder_and_environment_only(launcher, job_dir,
                                                                              monkeypatch) -> None:
    monkeypatch.setenv("TWIN_ONLY", "not for jobs")
    code, output = run(launcher, job_dir, "ok", "--flag", env={"GIVEN": "yes"})
    first = json.loads(output)

    assert code == 0 and launcher.started_warm >= 1
    assert first["argv"] == ["ok", "--flag"] and Path(first["cwd"]) == job_dir
    assert first["given"] == "yes" and first["secret"] is None  # only the job's environment
    assert first["numpy_loaded"] is True  # imported once, in the zygote
    assert Path(first["path0"]) == job_dir  # as `python -m` puts the working folder first
    second = json.loads(run(launcher, job_dir, "ok")[1])
    assert first["calls"] == second["calls"] == 1  # each job starts from a fresh process state


def test_a_job_gets_a_fresh_process_s_signals_and_keeps_its_bytecode_out_of_its_folder(launcher,
                                                                                   job_dir) -> None:
    code, output = run(launcher, job_dir, "ok", env={"PYTHONDONTWRITEBYTECODE": "1"})
    seen = json.loads(output)

    assert code == 0
    assert seen["sigchld_default"] is True and seen["wakeup_fd"] == -1  # the zygote's own wake-up is not the job's
    bytecode = Path(seen["bytecode"])
    assert bytecode.exists() and job_dir not in bytecode.parents  # compiled once, into the zygote's cache
    assert not list(job_dir.rglob("__pycache__"))
    assert seen["frozen"] > 0  # the preloaded objects stay out of the job's garbage collections


def test_a_job_s_end_is_reported_at_once_not_at_the_zygote_s_backstop(launcher, job_dir) -> None:
    started = time.monotonic()
    code, _ = run(launcher, job_dir, "ok")

    assert code == 0
    assert time.monotonic() - started < BACKSTOP_S / 2  # a SIGCHLD, not the backstop, woke the zygote


def test_starting_does_not_wait_for_the_zygote_and_every_job_gets_its_own_process(launcher, job_dir) -> None:
    zygote = launcher._zygote
    assert zygote is not None
    warm_before = launcher.started_warm
    os.kill(zygote.pid, signal.SIGSTOP)  # it can answer nothing now
    try:
        processes = [launcher.start([sys.executable, "-m", "probejob", "exit", str(code)], job_dir,
                                    {"PYTHONPATH": str(job_dir)}, job_dir / f"many-{code}.log") for code in (3, 0, 5)]
        assert all(isinstance(process, WarmProcess) for process in processes)
        assert [process.poll() for process in processes] == [None, None, None]  # asked for, still starting
    finally:
        os.kill(zygote.pid, signal.SIGCONT)

    assert [process.wait() for process in processes] == [3, 0, 5]
    assert len({process.pid for process in processes}) == 3 and launcher.started_warm == warm_before + 3


@pytest.mark.parametrize(("args", "expected"), [(("exit", "3"), 3), (("exit", "0"), 0), (("raise",), 1)])
def test_exit_codes_are_the_interpreters(launcher, job_dir, args, expected) -> None:
    code, output = run(launcher, job_dir, *args)

    assert code == expected
    if expected == 1:
        assert "RuntimeError: the job failed" in output  # the traceback lands in the job's log


def test_a_killed_job_reports_the_signal_as_a_cold_process_does(launcher, job_dir) -> None:
    warm = launcher.start([sys.executable, "-m", "probejob", "sleep"], job_dir,
                          {"PYTHONPATH": str(job_dir)}, job_dir / "warm.log")
    cold = ColdProcess([sys.executable, "-m", "probejob", "sleep"], job_dir, {"PYTHONPATH": str(job_dir)},
                       job_dir / "cold.log")
    assert isinstance(warm, WarmProcess)
    time.sleep(0.3)
    assert warm.poll() is None and cold.poll() is None
    warm.kill()
    cold.kill()

    assert warm.wait() == cold.wait() == -9


def test_other_commands_and_a_gone_zygote_start_cold(job_dir) -> None:
    launcher = JobLauncher(warm=True)
    launcher.start_zygote()
    other = launcher.start([sys.executable, str(job_dir / "probejob" / "__main__.py"), "ok"], job_dir,
                           {"PYTHONPATH": str(job_dir)}, job_dir / "script.log")
    assert isinstance(other, ColdProcess) and other.wait() == 0
    launcher.close()

    after = launcher.start([sys.executable, "-m", "probejob", "ok"], job_dir, {"PYTHONPATH": str(job_dir)},
                           job_dir / "after.log")
    assert isinstance(after, ColdProcess) and after.wait() == 0
    assert launcher.started_cold == 2 and launcher.started_warm == 0


def _children(pid: int) -> set[int]:
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _eventually(check, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_spares_wait_forked_ahead_and_a_burst_beyond_them_still_gets_its_own_processes(job_dir) -> None:
    launcher = JobLauncher(warm=True)
    launcher.start_zygote()
    assert launcher.wait_ready(60)
    zygote = launcher._zygote
    assert zygote is not None
    try:
        assert _eventually(lambda: len(_children(zygote.pid)) == SPARES), "no spares were forked"
        spares = _children(zygote.pid)
        burst = [launcher.start([sys.executable, "-m", "probejob", "exit", str(code)], job_dir,
                                {"PYTHONPATH": str(job_dir), "GIVEN": str(code)}, job_dir / f"burst-{code}.log")
                 for code in range(SPARES + 2)]
        assert [process.wait() for process in burst] == list(range(SPARES + 2))
        pids = [process.pid for process in burst]
        assert len(set(pids)) == SPARES + 2 and spares <= set(pids)  # the spares took the first requests
        for code in range(SPARES + 2):
            said = json.loads((job_dir / f"burst-{code}.log").read_text().splitlines()[0])
            assert said["given"] == str(code) and said["calls"] == 1 and said["argv"] == ["exit", str(code)]
        assert _eventually(lambda: len(_children(zygote.pid)) == SPARES), "the spares were not forked again"
        left = _children(zygote.pid)
    finally:
        launcher.close()
    assert zygote.poll() is not None
    assert all(not Path(f"/proc/{pid}").exists() for pid in left), "a spare outlived its zygote"
