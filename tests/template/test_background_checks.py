"""The background runner of the external checkers: one run per test run, its result read by all."""

from __future__ import annotations

import sys
from pathlib import Path

from background_checks import Check


def _check(name: str, code: str, timeout_s: float = 60.0) -> Check:
    return Check(name, __name__, Path(sys.executable), lambda _: [sys.executable, "-c", code], cwd=Path.cwd(),
                 timeout_s=timeout_s)


def test_a_check_runs_once_and_every_reader_gets_its_result(tmp_path: Path) -> None:
    # Each run appends a line to the log: a second process asking for the same check must not run it again.
    log = tmp_path / "runs.log"
    code = f"import sys; open({str(log)!r}, 'a').write('ran\\n'); print('out'); print('err', file=sys.stderr); " \
           "sys.exit(3)"
    first, second = _check("counted", code), _check("counted", code)  # as two workers would declare it
    first.start(tmp_path)
    results = [second.result(tmp_path), first.result(tmp_path)]
    assert results[0] == results[1]
    assert (results[0].returncode, results[0].stdout, results[0].stderr) == (3, "out\n", "err\n")
    assert log.read_text() == "ran\n"


def test_a_check_past_its_time_is_killed_and_says_so(tmp_path: Path) -> None:
    result = _check("slow", "import time; time.sleep(60)", timeout_s=0.5).result(tmp_path)
    assert result.returncode is None
    assert "ran past 0.5 s" in result.stderr


def test_a_check_that_cannot_start_reports_why(tmp_path: Path) -> None:
    missing = Check("missing", __name__, Path(sys.executable), lambda _: [str(tmp_path / "no-such-tool")],
                    cwd=tmp_path).result(tmp_path)
    assert missing.returncode == 127 and "no-such-tool" in missing.stderr

    def unprepared(folder: Path) -> list[str]:
        raise ValueError("the template does not parse")

    failed = Check("unprepared", __name__, Path(sys.executable), unprepared, cwd=tmp_path).result(tmp_path)
    assert failed.returncode == 127 and "the template does not parse" in failed.stderr


def test_a_missing_checker_is_not_started(tmp_path: Path) -> None:
    check = Check("absent", __name__, tmp_path / "absent", lambda _: [sys.executable, "-c", "pass"], cwd=tmp_path)
    check.start(tmp_path)
    assert list(tmp_path.iterdir()) == []
