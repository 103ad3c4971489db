"""The build context (files, content hash, zip), the image list and the bootstrap template, against template.yaml."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from threadline.deploy.bootstrap import BOOTSTRAP_RESOURCES, bootstrap_template
from threadline.deploy.context import content_hash, context_files, context_zip
from threadline.deploy.images import JOB_IMAGES
from threadline.twin.template import load_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_yaml(REPO_ROOT / "template.yaml")


def _context(tmp_path: Path) -> Path:
    context = tmp_path / "jobs"
    for relative, text in {".dockerignore": "**/__pycache__\n**/*.pyc\n*.egg-info\n",
                           "jobkit/aws.py": "A = 1\n", "one/Dockerfile": "FROM x\n", "one/job.py": "B = 2\n",
                           "one/__pycache__/job.cpython-313.pyc": "x", "two/job.py": "C = 3\n",
                           "pkg.egg-info/PKG-INFO": "x"}.items():
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        (context / relative).write_text(text, encoding="utf-8")
    return context


def test_context_files_leave_out_what_dockerignore_names(tmp_path: Path) -> None:
    context = _context(tmp_path)
    assert [str(path) for path in context_files(context)] == \
        [".dockerignore", "jobkit/aws.py", "one/Dockerfile", "one/job.py", "two/job.py"]
    assert [str(path) for path in context_files(context, ["one"])] == ["one/Dockerfile", "one/job.py"]


def test_the_content_hash_follows_content_paths_and_build_args(tmp_path: Path) -> None:
    context = _context(tmp_path)
    first = content_hash(context, ["jobkit", "one"], {})
    assert content_hash(context, ["jobkit", "one"], {}) == first
    assert content_hash(context, ["jobkit", "one"], {"GPU": "1"}) != first
    (context / "two" / "job.py").write_text("C = 4\n", encoding="utf-8")
    (context / "one" / "__pycache__" / "job.cpython-313.pyc").write_text("y", encoding="utf-8")
    assert content_hash(context, ["jobkit", "one"], {}) == first, "another job's folder and caches do not count"
    (context / "one" / "job.py").rename(context / "one" / "main.py")
    assert content_hash(context, ["jobkit", "one"], {}) != first, "a renamed file is a different image"


def test_the_context_zip_is_byte_stable_and_holds_the_sent_files(tmp_path: Path) -> None:
    context = _context(tmp_path)
    body = context_zip(context)
    assert context_zip(context) == body
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.namelist() == [str(path) for path in context_files(context)]


def test_the_images_match_the_template(template: dict[str, Any]) -> None:
    resources, parameters = template["Resources"], template["Parameters"]
    dockerfiles = {res["Metadata"]["Dockerfile"] for res in resources.values()
                   if res["Type"] == "AWS::Batch::JobDefinition"}
    assert {image.dockerfile for image in JOB_IMAGES} == dockerfiles
    for image in JOB_IMAGES:
        repository = resources[f"{image.job.capitalize()}Repository"]["Properties"]["RepositoryName"]
        assert repository == {"Fn::Sub": image.repository("${AWS::StackName}")}
        assert image.digest_parameter is None or image.digest_parameter in parameters
    pinned = [image for image in JOB_IMAGES if image.digest_parameter]
    assert sorted(image.job for image in pinned) == ["analysis", "postprocess", "preprocess"]
    assert next(image for image in pinned if image.job == "analysis").gpu, "the analysis job asks for GPUs"


def test_the_bootstrap_is_a_closed_subset_of_the_template(template: dict[str, Any]) -> None:
    bootstrap = bootstrap_template(REPO_ROOT / "template.yaml")
    assert set(BOOTSTRAP_RESOURCES) <= set(bootstrap["Resources"])
    for name, resource in bootstrap["Resources"].items():
        assert resource == template["Resources"][name], f"{name} differs from template.yaml"
        assert not resource["Type"].startswith("AWS::Serverless::")
    assert set(bootstrap["Parameters"]) == {"Environment"}
    assert bootstrap["Outputs"]["ImageSourceBucketName"] == template["Outputs"]["ImageSourceBucketName"]
    assert "IncomingBucketName" not in bootstrap["Outputs"]
    # The job definitions, which need the pushed images, are not part of it.
    assert not [r for r in bootstrap["Resources"].values() if r["Type"] == "AWS::Batch::JobDefinition"]
