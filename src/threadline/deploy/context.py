"""The jobs' build context (`jobs/`): which files an image holds, their content hash, the zip.

The files are those `docker build` sends: everything under the context except
what `.dockerignore` names (its simple forms: `name`, `dir/name`, `**/name`,
with `*` and `?`). An image's content hash covers the folders its Dockerfile
copies (`jobkit/` and its job's own folder, Dockerfile and requirements
included) and its build arguments; equal hashes mean an equal image, so a
pushed image tagged with the hash is never built again.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so equal contexts give byte-equal zips


def _ignore_patterns(context: Path) -> list[str]:
    ignore = context / ".dockerignore"
    if not ignore.is_file():
        return []
    lines = (line.strip() for line in ignore.read_text(encoding="utf-8").splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def _ignored(relative: PurePosixPath, patterns: Iterable[str]) -> bool:
    parts = relative.parts
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatchcase(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatchcase("/".join(parts[:depth]), pattern) for depth in range(1, len(parts) + 1)):
            return True
    return False


def context_files(context: Path, folders: Iterable[str] | None = None) -> list[PurePosixPath]:
    """The context's files (relative, sorted) that a build would send, optionally under `folders` only."""
    patterns = _ignore_patterns(context)
    roots = [context / folder for folder in folders] if folders is not None else [context]
    found = {PurePosixPath(path.relative_to(context).as_posix())
             for root in roots for path in root.rglob("*") if path.is_file()}
    return sorted(path for path in found if not _ignored(path, patterns))


def content_hash(context: Path, folders: Iterable[str], build_args: Mapping[str, str]) -> str:
    """sha256 (hex) of the named folders' files (paths and bytes) and the build arguments."""
    digest = hashlib.sha256()
    for relative in context_files(context, folders):
        digest.update(f"{relative}\0".encode())
        digest.update(hashlib.sha256((context / relative).read_bytes()).digest())
    for name, value in sorted(build_args.items()):
        digest.update(f"--build-arg {name}={value}\0".encode())
    return digest.hexdigest()


def context_zip(context: Path) -> bytes:
    """The whole build context as a zip with fixed timestamps (what CodeBuild unpacks and builds)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in context_files(context):
            info = zipfile.ZipInfo(str(relative), date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (context / relative).read_bytes())
    return buffer.getvalue()
