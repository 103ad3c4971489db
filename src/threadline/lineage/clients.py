"""The services the CLI talks to, one small client each, kept out of the command code.

- `StepFunctionsClient`, `SqsClient`, `CloudFormationClient`: one boto3 client
  each, with the calls the commands need (executions and reruns; the lineage
  dead-letter queue and its redrive; a stack's outputs). They print nothing and
  decide nothing: `rerun.py` and `redrive.py` hold the rules, the commands say
  what happened. The same calls work against AWS and the twin.
- `GraphClient`: where the lineage commands read the graph: a Neptune cluster
  (host or https URL; boto3 `neptunedata` signs with SigV4 from the default
  credential chain, and the machine must reach the cluster's VPC: VPN, Direct
  Connect, or an SSM port forward with the cluster name mapped to 127.0.0.1 so
  the signature's host matches), any neptunedata-compatible endpoint (the
  twin's while `threadline up` runs), or the twin's embedded graph in
  `--workdir` (read-only; a running twin may keep writing).

`aws_session` is how every command makes its AWS clients: against the twin (an
endpoint on this machine) the region is the twin's and test credentials do when
none are configured; against AWS a missing region is a clear `AccessError`, not
botocore's NoRegionError.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from threadline_common.lineage.neptune import CypherRunner, NeptuneCypher

    from ..twin.server import Twin

TWIN_REGION = "us-east-1"  # where the twin provisions the stack
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


class AccessError(RuntimeError):
    """The command cannot talk to AWS as asked; the message says what to pass or set."""


def is_local(url: str | None) -> bool:
    """Whether `url` points at this machine (the twin of `threadline up`, or another local emulator)."""
    if not url:
        return False
    host = urlsplit(url if "//" in url else f"//{url}").hostname or ""
    return host in _LOCAL_HOSTS or host.endswith(".localhost") or host.startswith("127.")


def aws_session(endpoint_url: str | None = None, region: str | None = None) -> Any:
    """A boto3 session for AWS, or for the twin when `endpoint_url` is local.

    Region: `region`, else for a local endpoint the twin's (us-east-1: the
    environment's region, meant for AWS, would miss the twin's resources), else
    the SDK's own (AWS_DEFAULT_REGION, the profile); none is an AccessError.
    A local endpoint without configured credentials gets the twin's test ones.
    """
    import boto3

    configured = boto3.Session()
    local = is_local(endpoint_url)
    chosen = region or (TWIN_REGION if local else configured.region_name)
    if not chosen:
        raise AccessError("no AWS region configured: pass --region REGION or set AWS_DEFAULT_REGION "
                          "(for the local twin of `threadline up`, pass --endpoint-url http://127.0.0.1:4566)")
    if local and configured.get_credentials() is None:
        return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=chosen)
    return boto3.Session(region_name=chosen)


def explain_aws_error(error: BaseException, endpoint_url: str | None = None) -> str | None:
    """What went wrong talking to AWS (or the twin), said for the user; None if `error` is not such a failure."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    if isinstance(error, AccessError):
        return str(error)
    if isinstance(error, NoRegionError):
        return "no AWS region configured: pass --region REGION or set AWS_DEFAULT_REGION"
    if isinstance(error, NoCredentialsError):
        return ("no AWS credentials found: configure them (aws configure, AWS_PROFILE, or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
    if isinstance(error, EndpointConnectionError):
        target = endpoint_url or getattr(error, "kwargs", {}).get("endpoint_url") or "the AWS endpoint"
        hint = "; is `threadline up` running there?" if is_local(endpoint_url) else ""
        return f"cannot reach {target}{hint}"
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        operation = getattr(error, "operation_name", "") or "the request"
        return f"{operation} failed: {details.get('Code', 'error')}: {details.get('Message', '')}".rstrip(": ")
    if isinstance(error, BotoCoreError):
        return f"{type(error).__name__}: {error}"
    return None


class _ServiceClient:
    """One boto3 client of `service`."""

    service: ClassVar[str]

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def connect(cls, session: Any, endpoint_url: str | None = None) -> Self:
        """The client from a session of `aws_session` (AWS, or the twin at `endpoint_url`)."""
        return cls(session.client(cls.service, endpoint_url=endpoint_url))

    @classmethod
    def of(cls, client: Any) -> Self:
        """`client` itself when it is one of these already, else a boto3 client (or a stand-in) wrapped."""
        return client if isinstance(client, cls) else cls(client)


class CloudFormationClient(_ServiceClient):
    service = "cloudformation"

    def stack_output(self, stack: str, key: str) -> str | None:
        """One output of a deployed stack, or None when there is no such stack or output."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            stacks = self.client.describe_stacks(StackName=stack)["Stacks"]
        except (ClientError, BotoCoreError):
            return None
        for item in stacks[0].get("Outputs", []) if stacks else []:
            if item.get("OutputKey") == key:
                return str(item["OutputValue"])
        return None


class StepFunctionsClient(_ServiceClient):
    service = "stepfunctions"

    def state_machines(self) -> Iterator[dict[str, Any]]:
        for page in self.client.get_paginator("list_state_machines").paginate():
            yield from page["stateMachines"]

    def executions(self, machine_arn: str) -> list[dict[str, Any]]:
        """The state machine's executions, newest first (one page, as ListExecutions returns them)."""
        return list(self.client.list_executions(stateMachineArn=machine_arn)["executions"])

    def execution_input(self, execution_arn: str) -> dict[str, Any]:
        return dict(json.loads(self.client.describe_execution(executionArn=execution_arn)["input"]))

    def start(self, machine_arn: str, name: str, payload: dict[str, Any]) -> str:
        """Start an execution named `name` with `payload` as its input; its ARN."""
        response = self.client.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(payload))
        return str(response["executionArn"])


class SqsClient(_ServiceClient):
    service = "sqs"

    def queue_url(self, name: str) -> str:
        return str(self.client.get_queue_url(QueueName=name)["QueueUrl"])

    def queue_urls(self, prefix: str) -> list[str]:
        return list(self.client.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []))

    def queue_arn(self, queue_url: str) -> str:
        attributes = self.client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def waiting(self, queue_url: str) -> int:
        """Messages in the queue, visible or in flight."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
        return sum(int(value) for value in attributes["Attributes"].values())

    def move_back(self, dead_letter_arn: str) -> str:
        """Move every message of a dead-letter queue back to its source queue (SQS's redrive); the task handle."""
        return str(self.client.start_message_move_task(SourceArn=dead_letter_arn)["TaskHandle"])


class GraphClient:
    """The lineage graph to read: a Neptune cluster, a neptunedata endpoint, or the twin's graph in `workdir`.

    `session`, when given, makes the neptunedata client (the twin's own);
    otherwise `aws_session` does.
    """

    def __init__(self, workdir: Path = Path(".threadline"), endpoint: str | None = None,
                 neptune: str | None = None, region: str | None = None, session: Any | None = None) -> None:
        self.workdir = workdir
        self.endpoint = endpoint
        self.neptune = neptune
        self.region = region
        self._session = session

    @classmethod
    def of_twin(cls, twin: Twin) -> GraphClient:
        """The twin's graph through its local neptunedata endpoint, as the functions reach it."""
        return cls(twin.workdir, endpoint=twin.neptune.url, session=twin.session)

    @property
    def where(self) -> str:
        """The graph as the user named it."""
        return self.endpoint or self.neptune or str(self.workdir)

    def cypher(self) -> NeptuneCypher:
        """The production openCypher client (boto3 `neptunedata`) for the endpoint or cluster."""
        import boto3
        from threadline_common.lineage.neptune import NeptuneCypher

        url = self.endpoint or neptune_url(self.neptune or "")
        session = self._session
        if session is None:
            try:
                session = aws_session(url, self.region)
            except AccessError:  # the cluster's region is in its host name; SigV4 needs one to sign with
                session = boto3.Session(region_name=_neptune_region(url) or TWIN_REGION)
        return NeptuneCypher(session.client("neptunedata", endpoint_url=url))

    @contextmanager
    def open(self) -> Iterator[CypherRunner]:
        """A CypherRunner for the graph; closed on exit."""
        if self.neptune or self.endpoint:
            yield self.cypher()
            return
        from ..twin.graph_store import GraphStore, earlier_graph, graph_path

        path = graph_path(self.workdir.resolve())
        if not path.exists():
            earlier = earlier_graph(self.workdir.resolve())
            also = (f" ({earlier} is the graph of an earlier threadline, keyed differently, and is left as it was)"
                    if earlier else "")
            raise FileNotFoundError(f"no lineage graph at {path}{also}: run the twin first "
                                    "(threadline demo / run / up), or pass --endpoint or --neptune")
        store = GraphStore(path, read_only=True)
        try:
            yield store
        finally:
            store.close()


def neptune_url(neptune: str) -> str:
    """`host`, `host:port` or a full URL -> the cluster's HTTPS endpoint, built as the functions build theirs."""
    if neptune.startswith(("https://", "http://")):
        return neptune
    from threadline_common.lineage.neptune import endpoint_url

    host, _, port = neptune.partition(":")
    return endpoint_url({"NEPTUNE_ENDPOINT": host, "NEPTUNE_PORT": port}) or ""  # None only for an endpoint override


def _neptune_region(url: str) -> str | None:
    """The region in a Neptune endpoint's host (`name.cluster-x.REGION.neptune.amazonaws.com`)."""
    parts = (urlsplit(url).hostname or "").split(".")
    return parts[-4] if len(parts) >= 5 and parts[-3:] == ["neptune", "amazonaws", "com"] else None
