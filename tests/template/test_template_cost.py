"""The lineage function's grants for a run's cost: its report only, Spot price history only where allowed."""

from __future__ import annotations

from typing import Any


def _policies(resources: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """(condition or None, statement) of every statement of the lineage function's policies."""
    found = []
    for policy in resources["RecordLineageFunction"]["Properties"]["Policies"]:
        condition, document = (policy["Fn::If"][0], policy["Fn::If"][1]) if "Fn::If" in policy else (None, policy)
        found.extend((condition, statement) for statement in document["Statement"])
    return found


def _granting(resources: dict[str, Any], action: str) -> list[tuple[str | None, dict[str, Any]]]:
    return [(condition, s) for condition, s in _policies(resources)
            if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]


def test_the_report_grant_is_the_results_buckets_report_html_only(resources: dict[str, Any]) -> None:
    for action in ("s3:GetObject", "s3:PutObject"):
        reports = [s for _, s in _granting(resources, action) if "report.html" in str(s["Resource"])]
        assert [s["Resource"] for s in reports] == [{"Fn::Sub": "${ResultsBucket.Arn}/*/report.html"}], action
    (only,) = _granting(resources, "s3:PutObject")  # nothing else of any bucket is written
    assert only[1]["Resource"] == {"Fn::Sub": "${ResultsBucket.Arn}/*/report.html"}


def test_the_data_key_is_used_through_s3_only(resources: dict[str, Any]) -> None:
    (_, statement), = _granting(resources, "kms:GenerateDataKey")
    assert statement["Resource"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    via_s3 = {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": via_s3}}


def test_spot_price_history_is_granted_only_when_looked_up(template: dict[str, Any],
                                                          resources: dict[str, Any]) -> None:
    (condition, statement), = _granting(resources, "ec2:DescribeSpotPriceHistory")
    assert condition == "LookUpSpotPrices" and statement["Resource"] == "*"  # no resource-level permissions
    assert template["Conditions"]["LookUpSpotPrices"] == {"Fn::Equals": [{"Ref": "SpotPriceLookup"}, "true"]}
    variables = resources["RecordLineageFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["SPOT_PRICE_LOOKUP"] == {"Ref": "SpotPriceLookup"}
    assert template["Parameters"]["SpotPriceLookup"]["Default"] == "true"
