"""EC2 security groups and launch templates."""

from __future__ import annotations

from typing import Any

from .core import Provisioner, handles


@handles("AWS::EC2::SecurityGroup")
def _security_group(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("GroupName") or f"{p.stack_name}-{logical_id}"
    group_id = p.client("ec2").create_security_group(
        GroupName=name, Description=props.get("GroupDescription", logical_id), VpcId=props["VpcId"])["GroupId"]
    return group_id, {"GroupId": group_id, "VpcId": props["VpcId"]}


@handles("AWS::EC2::LaunchTemplate")
def _launch_template(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("LaunchTemplateName") or f"{p.stack_name}-{logical_id}"
    template = p.client("ec2").create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData=props.get("LaunchTemplateData", {}))["LaunchTemplate"]
    return template["LaunchTemplateId"], {"LatestVersionNumber": str(template["LatestVersionNumber"]),
                                          "DefaultVersionNumber": str(template["DefaultVersionNumber"])}
