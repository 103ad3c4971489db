"""The SAM CLI, which builds the functions and deploys the whole template."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .errors import DeployError
from .journal import Journal

PROJECT_SAM = Path(".tools") / "sam" / "bin" / "sam"  # where `scripts/setup --with-sam` installs it
# The seam to the SAM CLI's process: run argv in a folder with an environment, return its exit status.
SamRunner = Callable[[Sequence[str], Path, Mapping[str, str]], int]


def run_sam(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> int:
    return subprocess.run(list(argv), cwd=cwd, env=dict(env), check=False).returncode


class SamCli:
    def __init__(self, root: Path, journal: Journal, runner: SamRunner = run_sam,
                 executable: str | None = None, region: str | None = None) -> None:
        self.root = root
        self.journal = journal
        self.region = region  # None: the profile's, as for the deploy's own AWS calls
        self._runner = runner
        self._executable = executable

    def executable(self) -> str:
        if self._executable is not None:
            return self._executable
        local = self.root / PROJECT_SAM
        found = str(PROJECT_SAM) if local.exists() else shutil.which("sam")
        if found is None and not self.journal.dry_run:
            raise DeployError("no SAM CLI: run `scripts/setup --with-sam` (it installs one in .tools/sam)")
        return found or "sam"

    def _run(self, argv: list[str]) -> None:
        self.journal.command(argv)
        if self.journal.dry_run:
            return
        # `sam build` needs a python3.13 on PATH for the functions' runtime: this interpreter's folder has one.
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        status = self._runner(argv, self.root, env)
        if status != 0:
            raise DeployError(f"`{shlex.join(argv[:3])} ...` failed with exit status {status}")

    def build(self, env: str) -> None:
        self._run([self.executable(), "build", "--config-env", env])

    def deploy(self, env: str, parameter_overrides: Mapping[str, str]) -> None:
        """`sam deploy` of the environment. A command-line override list replaces samconfig's whole list,
        so `parameter_overrides` must hold the environment's own values too."""
        overrides = " ".join(shlex.quote(f"{key}={value}") for key, value in parameter_overrides.items())
        region = ["--region", self.region] if self.region else []
        self._run([self.executable(), "deploy", "--config-env", env, *region, "--parameter-overrides", overrides])
