"""External checkers (checkov, `sam validate --lint`) run once per test run, in the background.

Each checker costs seconds of CPU. A test module declares its `Check` at import; when
collection ends (`conftest.py`) every check whose module has tests to run is started as
a subprocess, so it runs while the worker goes on with other tests. Under pytest-xdist
the workers share one folder: the first to claim a check runs it for all of them, and
every worker reads the result the recorder (`record_check.py`) leaves there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

RECORDER = Path(__file__).with_name("record_check.py")
WAIT_S = 900.0  # for a result: generous, as the checkers share two busy cores with the tests
POLL_S = 0.1


@dataclass(frozen=True)
class Result:
    """What a checker printed, and how it ended (`returncode` None: it ran past its time)."""

    returncode: int | None
    stdout: str
    stderr: str


@dataclass
class Check:
    """One checker command; `prepare` writes its inputs into the shared folder and returns the command."""

    name: str
    module: str  # the test module that reads the result (its `__name__`)
    program: Path  # the checker: where it is missing, its tests skip or fail and say so; nothing starts
    prepare: Callable[[Path], list[str]]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 600.0
    _process: subprocess.Popen[bytes] | None = None

    def start(self, folder: Path) -> None:
        """Run the checker in the background, unless another process already claimed it."""
        if not self.program.exists():
            return
        try:
            os.close(os.open(folder / f"{self.name}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        result_path = folder / f"{self.name}.json"
        try:
            command = self.prepare(folder)
            self._process = subprocess.Popen(
                [sys.executable, str(RECORDER), str(result_path), str(self.timeout_s), "--", *command],
                cwd=self.cwd, env={**os.environ, **self.env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except Exception:  # the workers waiting for this result must hear of it, not wait it out
            result_path.write_text(json.dumps({"returncode": 127, "stdout": "", "stderr": traceback.format_exc()}),
                                   encoding="utf-8")

    def result(self, folder: Path) -> Result:
        """Start the check if no process has, then wait for its result."""
        self.start(folder)
        path = folder / f"{self.name}.json"
        deadline = time.monotonic() + self.timeout_s + WAIT_S
        while not path.exists():
            if self._process is not None and self._process.poll() is not None and not path.exists():
                raise AssertionError(f"the {self.name} recorder ended ({self._process.returncode}) with no result")
            if time.monotonic() > deadline:
                raise AssertionError(f"no result of {self.name} in {folder} after {self.timeout_s + WAIT_S:.0f} s")
            time.sleep(POLL_S)
        answer: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return Result(answer["returncode"], answer["stdout"], answer["stderr"])


CHECKS: list[Check] = []


def register(check: Check) -> Check:
    CHECKS.append(check)
    return check


def shared_folder(factory: pytest.TempPathFactory) -> Path:
    """One folder for the whole run: pytest-xdist's workers each have a base folder under a common one."""
    base = factory.getbasetemp()
    folder = (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / "threadline-checks"
    folder.mkdir(exist_ok=True)
    return folder


def start_collected(session: pytest.Session) -> None:
    """Start the checks whose modules have tests to run (called when collection has ended)."""
    factory: pytest.TempPathFactory | None = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:  # no early start: each check then starts when its first test asks for it
        return
    modules = {getattr(getattr(item, "module", None), "__name__", None) for item in session.items}
    wanted = [check for check in CHECKS if check.module in modules]
    if wanted:
        folder = shared_folder(factory)
        for check in wanted:
            check.start(folder)
