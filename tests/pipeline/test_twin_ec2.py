"""The twin's EC2 holds no default AMIs (docs/twin.md, "Differences from AWS"); its network is still there."""

from __future__ import annotations

from threadline.twin.server import Twin


def test_the_twin_has_no_default_images_and_has_its_subnets(twin: Twin) -> None:
    ec2 = twin.client("ec2")
    assert ec2.describe_images(Owners=["amazon"])["Images"] == []
    subnets = sorted(subnet["CidrBlock"] for subnet in ec2.describe_subnets()["Subnets"]
                     if subnet["CidrBlock"].startswith("10.42."))
    assert subnets == ["10.42.0.0/24", "10.42.1.0/24"]  # the VPC the template is wired into
