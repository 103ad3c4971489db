"""A local container engine (docker, podman or finch) that builds and pushes the job images.

All three take the same `login`, `build` and `push` command lines. The images
run on x86_64 Batch instances (template.yaml's instance types), so every build
targets linux/amd64 whatever the host.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import DeployError
from .journal import Journal

ENGINES = ("docker", "podman", "finch")
PLATFORM = "linux/amd64"
# The seam to the engine's process: run argv (with stdin text), return its exit status.
Runner = Callable[[Sequence[str], str | None], int]


def run_process(argv: Sequence[str], stdin: str | None) -> int:
    """Run a command with its output on the terminal."""
    return subprocess.run(list(argv), input=stdin, text=True, check=False).returncode


def probe_process(argv: Sequence[str], stdin: str | None) -> int:
    """Run a command quietly; a command that hangs counts as failed."""
    try:
        return subprocess.run(list(argv), input=stdin, text=True, capture_output=True, timeout=30,
                              check=False).returncode
    except (OSError, subprocess.TimeoutExpired):
        return 1


def answering_engine(probe: Runner | None = None) -> str | None:
    """The first engine on PATH whose daemon answers (`<engine> info`), or None."""
    for name in ENGINES:
        if shutil.which(name) is not None and (probe or probe_process)([name, "info"], None) == 0:
            return name
    return None


class LocalEngine:
    def __init__(self, name: str, journal: Journal, runner: Runner = run_process) -> None:
        self.name = name
        self.journal = journal
        self._runner = runner

    def _run(self, argv: list[str], stdin: str | None = None) -> None:
        self.journal.command(argv)
        if self.journal.dry_run:
            return
        status = self._runner(argv, stdin)
        if status != 0:
            raise DeployError(f"`{' '.join(argv[:2])} ...` failed with exit status {status}")

    def login(self, registry: str, user: str, password: str) -> None:
        """Log in with the password on stdin (it never appears in a command line or the journal)."""
        self._run([self.name, "login", "--username", user, "--password-stdin", registry], password)

    def build(self, context: Path, dockerfile: str, image: str, build_args: dict[str, str]) -> None:
        args = [arg for name, value in sorted(build_args.items()) for arg in ("--build-arg", f"{name}={value}")]
        self._run([self.name, "build", "--platform", PLATFORM, "--file", str(context / dockerfile), *args,
                   "--tag", image, str(context)])

    def push(self, image: str) -> None:
        self._run([self.name, "push", image])
