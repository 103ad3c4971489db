"""Parse and build `s3://bucket/key` URIs."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

# Bucket naming rules, loosely: lower case, digits, dots and hyphens, 3-63 chars.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Uri:
    """An S3 location; a key ending in `/` (or empty) is a prefix."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        """Parse `s3://bucket/key`; raise ValueError with a readable reason."""
        if not uri.startswith("s3://"):
            raise ValueError(f"not an s3:// URI: {uri!r}")
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not _BUCKET.match(bucket):
            raise ValueError(f"bad bucket name in {uri!r}")
        return cls(bucket, key)

    @classmethod
    def parse_prefix(cls, uri: str) -> S3Uri:
        """Parse a prefix URI; a missing trailing slash is added."""
        parsed = cls.parse(uri)
        if parsed.key and not parsed.key.endswith("/"):
            return cls(parsed.bucket, parsed.key + "/")
        return parsed

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    @property
    def basename(self) -> str:
        return posixpath.basename(self.key.rstrip("/"))

    def join(self, name: str) -> S3Uri:
        """The object `name` under this prefix."""
        if not self.is_prefix:
            raise ValueError(f"{self} is not a prefix (it must end with '/')")
        return S3Uri(self.bucket, self.key + name.lstrip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"
