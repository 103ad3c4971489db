"""S3: the build context CodeBuild builds from."""

from __future__ import annotations

from .journal import AwsService


class SourceBucket(AwsService):
    service = "s3"

    def upload(self, bucket: str, key: str, body: bytes) -> str:
        """Put `body` at s3://bucket/key; returns CodeBuild's form of the location, `bucket/key`."""
        self._call("PutObject", {}, Bucket=bucket, Key=key, Body=body, ContentType="application/zip")
        return f"{bucket}/{key}"
