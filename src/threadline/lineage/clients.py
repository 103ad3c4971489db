"""Where the lineage commands read the graph: Neptune, any openCypher endpoint, or the twin's graph file.

- `neptune`: a Neptune cluster (host or https URL), queried through boto3
  `neptunedata` with SigV4 (IAM auth) from the default credential chain; the
  machine must reach the cluster's VPC (VPN, Direct Connect, or an SSM port
  forward with the cluster name mapped to 127.0.0.1 so the signature's host matches).
- `endpoint`: a neptunedata-compatible URL, e.g. the twin's local endpoint
  while `threadline up` runs.
- otherwise the twin's embedded graph in `--workdir` (read-only; a running twin
  may keep writing).

`aws_session` is how every lineage command makes its AWS clients: against the
twin (an endpoint on this machine) the region is the twin's and test
credentials do when none are configured; against AWS a missing region is a
clear `AccessError`, not botocore's NoRegionError.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .lineage_view import layer_modules

GRAPH_FILE = "lineage.lbdb"
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
    from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError,
                                     NoRegionError)

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


@contextmanager
def open_graph(workdir: Path, endpoint: str | None = None, neptune: str | None = None,
               region: str | None = None) -> Iterator[Any]:
    """A CypherRunner for the chosen graph; closed on exit."""
    layer_modules()
    if neptune or endpoint:
        import boto3
        from threadline_common.lineage.neptune import NeptuneCypher

        url = endpoint or _neptune_url(neptune or "")
        try:
            session = aws_session(url, region)
        except AccessError:  # the cluster's region is in its host name; SigV4 needs one to sign with
            session = boto3.Session(region_name=_neptune_region(url) or TWIN_REGION)
        yield NeptuneCypher(session.client("neptunedata", endpoint_url=url))
        return
    from .twin.graph_store import GraphStore

    path = workdir / GRAPH_FILE
    if not path.exists():
        raise FileNotFoundError(f"no lineage graph at {path}: run the twin first "
                                "(threadline demo / run / up), or pass --endpoint or --neptune")
    store = GraphStore(path, read_only=True)
    try:
        yield store
    finally:
        store.close()


def _neptune_region(url: str) -> str | None:
    """The region in a Neptune endpoint's host (`name.cluster-x.REGION.neptune.amazonaws.com`)."""
    parts = (urlsplit(url).hostname or "").split(".")
    return parts[-4] if len(parts) >= 5 and parts[-3:] == ["neptune", "amazonaws", "com"] else None


def _neptune_url(neptune: str) -> str:
    """`host`, `host:port` or a full URL -> `https://host:port` (8182 when no port is given)."""
    if neptune.startswith(("https://", "http://")):
        return neptune
    host, _, port = neptune.partition(":")
    return f"https://{host}:{port or '8182'}"
