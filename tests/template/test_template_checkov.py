"""checkov on the template, as written and as SAM expands it: no failure without a written reason.

Every check a resource is allowed to fail is listed on that resource, with its reason, in
`Metadata.checkov.skip` (`id` and `comment`) of template.yaml: the one place for them. SAM
copies a function's Metadata to the Lambda function it generates, so the same skips cover
the expanded form. The tests check three things:

- checkov, run on template.yaml as written, reports no failure, and every skip it honours
  carries a reason;
- with the skips taken out, the failures of both forms are exactly the declared skips: a new
  failure needs a fix or a skip with its reason, and a skip whose check now passes must go;
- no check crashed on template.yaml as written (a crashed check did not run); without the
  skips, a crash counts as a failure.

One checkov run scans the three files (each on its own: its graph links a file's resources
only), started in the background once the tests are collected (`background_checks.py`); its
report also names the checkov version that ran, checked against the pin.

checkov lives in its own virtualenv (.tools/checkov, pinned in requirements-checkov.txt):
its pins clash with the project's. `scripts/setup --with-sam`, which `make test` runs,
installs it; without it these tests skip and say so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from background_checks import Check, register, shared_folder

from threadline.twin.template import load_yaml, translate

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
CHECKOV_BIN = REPO_ROOT / ".tools" / "checkov" / "bin" / "checkov"
CHECKOV_REQUIREMENTS = REPO_ROOT / "requirements-checkov.txt"
SETUP_HINT = (
    "checkov is not installed at .tools/checkov/bin/checkov: run `scripts/setup --with-sam` "
    "(`make test` does), which installs requirements-checkov.txt into its own virtualenv"
)
CHECK_ID = re.compile(r"^CKV2?_AWS_[0-9]+$")
CRASH = re.compile(r"Failed to run check (\S+) on (\S+?):(\S+)")  # check, file, resource

Finding = tuple[str, str]  # (check id, logical id)


@dataclass
class Scan:
    """checkov's findings on one file: checks passed, failures, skips (with comments) and crashed checks."""

    name: str
    passed: int = 0
    failed: set[Finding] = field(default_factory=set)
    skipped: dict[Finding, str] = field(default_factory=dict)
    crashed: set[Finding] = field(default_factory=set)


@dataclass
class Report:
    """The one checkov run over every form: the version that ran, and a scan per form."""

    version: str
    scans: dict[str, Scan]


def _logical_id(resource: str) -> str:
    """checkov names a resource `Type.LogicalId` (`AWS::S3::Bucket.IncomingBucket`)."""
    return resource.rsplit(".", 1)[-1]


def _declared_skips(template: dict[str, Any]) -> dict[Finding, str]:
    skips: dict[Finding, str] = {}
    for logical_id, resource in template["Resources"].items():
        for entry in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", []):
            skips[(entry.get("id", ""), logical_id)] = str(entry.get("comment") or "")
    return skips


def _without_skips(template: dict[str, Any]) -> dict[str, Any]:
    stripped = json.loads(json.dumps(template))
    for resource in stripped["Resources"].values():
        metadata = resource.get("Metadata")
        if isinstance(metadata, dict) and "checkov" in metadata:
            del metadata["checkov"]
            if not metadata:
                del resource["Metadata"]
    return stripped


def _write(path: Path, template: dict[str, Any]) -> Path:
    path.write_text(json.dumps(template, indent=1, default=str), encoding="utf-8")
    return path


# The forms scanned, by file name: template.yaml as written; and both forms with the skips taken out.
FORMS = {
    TEMPLATE_PATH.name: "template.yaml",
    "template-without-skips.json": "template.yaml without skips",
    "expanded-without-skips.json": "expanded template without skips",
}


def _checkov_command(folder: Path) -> list[str]:
    """Write the forms without skips into `folder`; one checkov run scans all three (each file on its own)."""
    sam_template = load_yaml(TEMPLATE_PATH)
    expanded, _ = translate(sam_template, REPO_ROOT)
    files = [TEMPLATE_PATH,
             _write(folder / "template-without-skips.json", _without_skips(sam_template)),
             _write(folder / "expanded-without-skips.json", _without_skips(expanded))]
    return [str(CHECKOV_BIN), *(arg for path in files for arg in ("--file", str(path))),
            "--framework", "cloudformation", "--output", "json", "--skip-download"]


CHECKOV = register(Check("checkov", __name__, CHECKOV_BIN, _checkov_command, cwd=REPO_ROOT,
                         env={"BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"}))


def _form(file_path: str) -> str:
    return FORMS[Path(file_path).name]


def _parse(stdout: str, stderr: str) -> Report:
    report = json.loads(stdout)
    if isinstance(report, list):  # one report per framework; only cloudformation ran
        (report,) = report
    summary, results = report["summary"], report.get("results", {})
    assert summary["parsing_errors"] == 0 and not results.get("parsing_errors"), f"checkov could not parse: {results}"
    scans = {name: Scan(name) for name in FORMS.values()}
    for check in results.get("passed_checks", []):
        scans[_form(check["file_path"])].passed += 1
    for check in results.get("failed_checks", []):
        scans[_form(check["file_path"])].failed.add((check["check_id"], _logical_id(check["resource"])))
    for check in results.get("skipped_checks", []):
        comment = (check.get("check_result") or {}).get("suppress_comment") or ""
        scans[_form(check["file_path"])].skipped[(check["check_id"], _logical_id(check["resource"]))] = comment
    for check, file_path, resource in CRASH.findall(stderr):
        scans[_form(file_path)].crashed.add((check, _logical_id(resource)))
    return Report(summary["checkov_version"], scans)


@pytest.fixture(scope="module")
def checkov() -> Path:
    if not CHECKOV_BIN.exists():
        pytest.skip(SETUP_HINT)
    return CHECKOV_BIN


@pytest.fixture(scope="module")
def sam_template() -> dict[str, Any]:
    return load_yaml(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def report(checkov: Path, tmp_path_factory: pytest.TempPathFactory) -> Report:
    """The run started in the background when the tests were collected (or now, if none was)."""
    result = CHECKOV.result(shared_folder(tmp_path_factory))
    # Exit status 1 means "some check failed"; the JSON says which. Anything else is an error.
    assert result.returncode in (0, 1), f"checkov failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return _parse(result.stdout, result.stderr)


@pytest.fixture(scope="module")
def scans(report: Report) -> dict[str, Scan]:
    return report.scans


def test_checkov_matches_the_pin(report: Report) -> None:
    """The checkov that scanned the template is the pinned one (its report names its version)."""
    pins = dict(
        line.split("==", 1)
        for line in CHECKOV_REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    assert report.version == pins["checkov"].strip()


def test_every_declared_skip_names_a_check_and_gives_a_reason(sam_template: dict[str, Any]) -> None:
    skips = _declared_skips(sam_template)
    assert skips, "template.yaml declares no checkov skips: then drop this test's stale-skip logic too"
    bad = [f"{resource}: {check!r} {comment!r}" for (check, resource), comment in skips.items()
           if not CHECK_ID.match(check) or len(comment.split()) < 5]
    assert not bad, "each skip needs a check id (CKV_AWS_...) and a reason of a sentence:\n" + "\n".join(bad)


def test_the_template_as_written_has_no_unexplained_failure(scans: dict[str, Scan]) -> None:
    scan = scans["template.yaml"]
    assert scan.passed > 0, scan
    assert not scan.failed, (
        "checkov failures on template.yaml without a written reason: fix them, or add "
        "Metadata.checkov.skip (id and comment) to the resource:\n"
        + "\n".join(f"  {check} on {resource}" for check, resource in sorted(scan.failed))
    )
    assert all(len(comment.split()) >= 5 for comment in scan.skipped.values()), scan.skipped


@pytest.mark.parametrize("form", ["template.yaml without skips", "expanded template without skips"])
def test_failures_are_exactly_the_declared_skips(scans: dict[str, Scan], sam_template: dict[str, Any],
                                                 form: str) -> None:
    """Each form fails only declared checks; together they fail every declared one (no stale skip)."""
    declared = set(_declared_skips(sam_template))
    unexplained = (scans[form].failed | scans[form].crashed) - declared
    assert not unexplained, (
        f"checkov failures on the {form} without a written reason: fix them, or add "
        "Metadata.checkov.skip (id and comment) to the resource (a resource SAM generates, such "
        "as a function's role, takes no skip: fix its source in the template):\n"
        + "\n".join(f"  {check} on {resource}" for check, resource in sorted(unexplained))
    )
    # A check that crashes without its skip counts as failing: the skip is what keeps it from running.
    failing = {finding for name, scan in scans.items() if name != "template.yaml"
               for finding in scan.failed | scan.crashed}
    stale = declared - failing
    assert not stale, "checkov skips whose check no longer fails: remove them from template.yaml:\n" + "\n".join(
        f"  {check} on {resource}" for check, resource in sorted(stale))


def test_checkov_honours_every_declared_skip(scans: dict[str, Scan], sam_template: dict[str, Any]) -> None:
    """The skips are in the shape checkov reads: it reports each one as skipped, with its comment."""
    declared = _declared_skips(sam_template)
    assert scans["template.yaml"].skipped == declared


def test_no_check_crashed(scans: dict[str, Scan]) -> None:
    """A check that crashes did not run; on the template as written, none may crash."""
    crashed = sorted(f"{check} on {resource}" for check, resource in scans["template.yaml"].crashed)
    assert not crashed, (
        "checks that crashed on template.yaml did not run (usually an intrinsic function they cannot "
        "read): make the property readable, or skip the check on that resource with the reason:\n  "
        + "\n  ".join(crashed)
    )
