"""Where the lineage commands read the graph: Neptune, any openCypher endpoint, or the twin's graph file.

- `neptune`: a Neptune cluster (host or https URL), queried through boto3
  `neptunedata` with SigV4 (IAM auth) from the default credential chain; the
  machine must reach the cluster's VPC (VPN, Direct Connect, or an SSM port
  forward with the cluster name mapped to 127.0.0.1 so the signature's host matches).
- `endpoint`: a neptunedata-compatible URL, e.g. the twin's local endpoint
  while `threadline up` runs.
- otherwise the twin's embedded graph in `--workdir` (read-only; a running twin
  may keep writing).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .lineage_view import layer_modules

GRAPH_FILE = "lineage.lbdb"


@contextmanager
def open_graph(workdir: Path, endpoint: str | None = None, neptune: str | None = None,
               region: str | None = None) -> Iterator[Any]:
    """A CypherRunner for the chosen graph; closed on exit."""
    layer_modules()
    if neptune or endpoint:
        import boto3
        from threadline_common.lineage.neptune import NeptuneCypher

        url = endpoint or _neptune_url(neptune or "")
        session = boto3.Session(region_name=region) if region else boto3.Session()
        client = session.client("neptunedata", endpoint_url=url,
                                region_name=region or session.region_name or "us-east-1")
        yield NeptuneCypher(client)
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


def _neptune_url(neptune: str) -> str:
    """`host`, `host:port` or a full URL -> `https://host:port` (8182 when no port is given)."""
    if neptune.startswith(("https://", "http://")):
        return neptune
    host, _, port = neptune.partition(":")
    return f"https://{host}:{port or '8182'}"
