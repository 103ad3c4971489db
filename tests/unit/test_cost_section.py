"""The report's cost section (threadline_common.cost_section): rendered, put over the placeholder, kept encrypted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from threadline_common import cost_section

from postprocess.report_html import COST_PLACEHOLDER

COST: dict[str, Any] = {
    "currency": "USD", "region": "us-east-1", "total": 0.012345, "on_demand": 0.02, "spot_savings": None,
    "by_step": {"preprocess": 0.002, "analysis": 0.010345},
    "spot_savings_by_step": {"preprocess": None, "analysis": 0.0},
    "by_attempt": [
        {"job": "preprocess#1", "step": "preprocess", "capacity": "SPOT", "instance": "m6a.large", "nodes": 1,
         "seconds": 20.0, "usd": 0.002, "spot_at_on_demand": True},
        {"job": "analysis#1", "step": "analysis", "capacity": "GPU", "instance": "g6.2xlarge", "nodes": 2,
         "seconds": 132.0, "usd": 0.010345, "spot_at_on_demand": False},
        {"job": "postprocess#1", "step": "postprocess", "capacity": "SPOT", "instance": None, "nodes": 1,
         "seconds": 3.0, "usd": None, "spot_at_on_demand": False},
    ],
    "attempts": 3, "unpriced": ["postprocess#1: no <resource> request"],
}
PAGE = f"<html><body><h1>Report</h1>\n{COST_PLACEHOLDER}\n<footer>end</footer></body></html>"


def test_the_section_shows_total_steps_attempts_savings_and_unpriced_escaped():
    section = cost_section.render(COST)

    assert section.startswith('<section id="run-cost">') and section.endswith("</section>")
    assert '<th>Total</th><td class="num">$0.012345</td>' in section
    assert "<th>Spot savings</th><td class=\"num\">unknown" in section
    assert "<tr><td>preprocess</td><td>$0.002000</td><td>unknown</td></tr>" in section
    assert "<tr><td>analysis</td><td>$0.010345</td><td>$0.000000</td></tr>" in section
    assert "<tr><td>analysis#1</td><td>GPU</td><td>g6.2xlarge</td><td>2</td>" in section
    assert "<td>unpriced</td>" in section
    assert "no &lt;resource&gt; request" in section and "<resource>" not in section


def test_known_savings_are_shown_as_an_amount():
    section = cost_section.render({**COST, "spot_savings": 0.0042})
    assert '<th>Spot savings</th><td class="num">$0.004200</td>' in section


def test_the_postprocess_placeholder_is_replaced_and_a_page_without_one_is_left():
    section = cost_section.render(COST)
    page = cost_section.with_section(PAGE, section)

    assert page is not None and section in page and COST_PLACEHOLDER not in page
    assert page.startswith("<html><body><h1>Report</h1>") and page.endswith("<footer>end</footer></body></html>")
    assert cost_section.with_section(page, section) == page  # the filled section is found again
    assert cost_section.with_section("<html></html>", section) is None


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str, str]]:
    """moto's S3 and KMS: a versioned bucket holding a report encrypted with a KMS key; (client, bucket, key id)."""
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
        client.create_bucket(Bucket="results")
        client.put_bucket_versioning(Bucket="results", VersioningConfiguration={"Status": "Enabled"})
        client.put_object(Bucket="results", Key="runs/r1/report.html", Body=PAGE.encode(),
                          ContentType="text/html", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
        yield client, "results", key_id


def test_the_report_gets_a_new_version_with_the_cost_and_the_same_encryption(s3):
    client, bucket, key_id = s3
    uri = f"s3://{bucket}/runs/r1/report.html"

    assert cost_section.write_report_cost(client, uri, COST) == cost_section.WRITTEN
    stored = client.get_object(Bucket=bucket, Key="runs/r1/report.html")
    page = stored["Body"].read().decode()
    assert cost_section.render(COST) in page and "is added here when the run ends" not in page
    assert (stored["ServerSideEncryption"], stored["SSEKMSKeyId"]) == ("aws:kms", key_id)
    assert stored["ContentType"] == cost_section.CONTENT_TYPE

    # A redelivered run_finished: the same bytes, so no new version.
    assert cost_section.write_report_cost(client, uri, COST) == cost_section.UNCHANGED
    versions = client.list_object_versions(Bucket=bucket, Prefix="runs/r1/report.html")["Versions"]
    assert len(versions) == 2


def test_a_report_without_the_placeholder_is_not_touched_and_a_missing_one_raises(s3):
    client, bucket, _ = s3
    client.put_object(Bucket=bucket, Key="runs/r2/report.html", Body=b"<html>older report</html>")

    assert cost_section.write_report_cost(client, f"s3://{bucket}/runs/r2/report.html", COST) \
        == cost_section.NO_PLACEHOLDER
    with pytest.raises(client.exceptions.NoSuchKey):
        cost_section.write_report_cost(client, f"s3://{bucket}/runs/r3/report.html", COST)
    with pytest.raises(ValueError, match="not an S3 object URI"):
        cost_section.write_report_cost(client, "https://example.com/report.html", COST)
