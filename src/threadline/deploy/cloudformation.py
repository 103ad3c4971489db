"""CloudFormation: the stack's status, its bootstrap creation, its resources and outputs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from .errors import DeployError
from .journal import AwsService, Journal

POLL_SECONDS = 10.0


class Stack(AwsService):
    service = "cloudformation"

    def __init__(self, session: Any | None, journal: Journal, name: str,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(session, journal)
        self.name = name
        self._sleep = sleep

    def status(self) -> str | None:
        """The stack's status, or None when there is no such stack (a dry run assumes none)."""
        try:
            stacks = self._call("DescribeStacks", {"Stacks": []}, StackName=self.name)["Stacks"]
        except ClientError as error:
            if "does not exist" in error.response["Error"]["Message"]:
                return None
            raise
        return str(stacks[0]["StackStatus"]) if stacks else None

    def create(self, template_body: str, parameters: dict[str, str]) -> None:
        """Create the stack from `template_body` and wait until it is complete."""
        self._call("CreateStack", {"StackId": f"<stack {self.name}>"}, StackName=self.name,
                   TemplateBody=template_body, Capabilities=["CAPABILITY_IAM"],
                   Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
                   OnFailure="ROLLBACK")
        self._wait("CREATE_COMPLETE")

    def delete(self) -> None:
        """Delete the stack (only ever one whose creation rolled back, which holds nothing) and wait."""
        self._call("DeleteStack", {}, StackName=self.name)
        self._wait(None)

    def output(self, key: str) -> str:
        """One output of the stack; a missing one is a DeployError."""
        dry = {"Stacks": [{"StackStatus": "CREATE_COMPLETE", "Outputs": [
            {"OutputKey": key, "OutputValue": f"<{self.name}-{key}>"}]}]}
        stacks = self._call("DescribeStacks", dry, StackName=self.name)["Stacks"]
        for item in stacks[0].get("Outputs", []):
            if item["OutputKey"] == key:
                return str(item["OutputValue"])
        raise DeployError(f"stack {self.name} has no output {key}: is it an older stack?")

    def _wait(self, target: str | None) -> None:
        """Poll until the stack reaches `target` (None: until it is gone); any other end is a DeployError."""
        if self.journal.dry_run:
            self.journal.note(f"(then DescribeStacks every {POLL_SECONDS:g} s until {target or 'gone'})")
            return
        while True:
            status = self.status()
            if status == target:
                return
            if status is None or status.endswith(("_COMPLETE", "_FAILED")):
                raise DeployError(f"stack {self.name} ended {status or 'deleted'} instead of {target or 'deleted'}: "
                                  "see its events in the CloudFormation console")
            self._sleep(POLL_SECONDS)
