"""Helpers shared by the Batch job tests (paths, moto resources, sample files)."""

from __future__ import annotations

import socket
from pathlib import Path

import boto3

from threadline import samples

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "jobs"

REGION = "us-east-1"
BUCKETS = {"incoming": "tl-incoming", "intermediate": "tl-intermediate",
           "quarantine": "tl-quarantine", "results": "tl-results"}
RUN_TABLE = "tl-runs"


def create_resources(endpoint_url: str | None = None, **credentials: str) -> None:
    """The pipeline's buckets (incoming versioned) and run table."""
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint_url, **credentials)
    for bucket in BUCKETS.values():
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=BUCKETS["incoming"], VersioningConfiguration={"Status": "Enabled"})
    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint_url, **credentials)
    dynamodb.create_table(
        TableName=RUN_TABLE,
        KeySchema=[{"AttributeName": "run_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "run_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_sample(path: Path, rows: int, bad_share: float = 0.0, seed: int = 7) -> Path:
    assert samples.main(["--rows", str(rows), "--bad-share", str(bad_share), "--seed", str(seed),
                         "--out", str(path)]) == 0
    return path


def write_csv(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


HEADER = "position_id,asset,sector,quantity,price,annual_vol,annual_drift,beta"


def row(pid: str = "P1", asset: str = "ACME", sector: str = "energy", quantity: str = "10",
        price: str = "12.5", vol: str = "0.3", drift: str = "0.05", beta: str = "0.5") -> str:
    return ",".join([pid, asset, sector, quantity, price, vol, drift, beta])
