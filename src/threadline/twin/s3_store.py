"""S3 objects that outlive the twin, kept as files a person can open.

The current version of `s3://BUCKET/KEY` is the file `<workdir>/s3/BUCKET/KEY`;
older versions of versioned buckets sit in `<workdir>/state/s3-versions/BUCKET/`
under their version id, and `<workdir>/state/s3.json` lists every version
(version id, ETag, time, metadata, file). The next twin puts them back into
moto's buckets with the same version ids and times and without S3 events, so
restoring never starts a run, the start function's per-version run names
stay stable, and a resumed run finds the outputs it reuses (`plan_resume`
HEADs and lists them). A current file edited by hand comes back with its new
content (and ETag).

A key that cannot be a file there (`a` next to `a/b`, `..`, a trailing `/`)
is kept under `state/s3-versions/BUCKET/` by a hash of its name instead.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .state_files import read_json, write_bytes, write_json

logger = logging.getLogger("threadline.twin")
_Written = tuple[str, str]  # (version id, ETag) a file holds


class S3Store:
    def __init__(self, workdir: Path, account_id: str, partition: str = "aws") -> None:
        self.workdir = workdir
        self.objects_dir = workdir / "s3"
        self.versions_dir = workdir / "state" / "s3-versions"
        self.manifest = workdir / "state" / "s3.json"
        self.account_id = account_id
        self.partition = partition
        self._written: dict[str, _Written] = {}  # relative file -> what it holds now
        self._saved: dict[tuple[str, str], _SavedKey] = {}  # (bucket, key) -> what the last save wrote of it
        self._folders: dict[str, tuple[frozenset[str], frozenset[str]]] = {}  # bucket -> (names, folder names)

    def local_path(self, uri: str) -> Path | None:
        """Where the current version of `s3://bucket/key` is kept (it exists once saved); None for other URIs."""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not uri.startswith("s3://") or not bucket or not key:
            return None
        return self.workdir / self._current_file(bucket, key)

    # -- restore -----------------------------------------------------------------

    def restore(self, problems: list[str]) -> int:
        """Put the saved objects back into the buckets that exist now; the number of versions restored."""
        saved = read_json(self.manifest, problems)
        if not isinstance(saved, dict):
            return 0
        backend = self._backend()
        restored = 0
        buckets = saved.get("buckets")
        for bucket_name, keys in (buckets.items() if isinstance(buckets, dict) else ()):
            if bucket_name not in backend.buckets:
                problems.append(f"bucket {bucket_name} is no longer in the template: its saved objects stay "
                                f"under {self.objects_dir / bucket_name} but are not restored")
                continue
            for key_name, versions in keys.items():
                try:
                    restored += self._restore_key(backend, bucket_name, key_name, versions, problems)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:  # an entry edited into nonsense
                    problems.append(f"s3://{bucket_name}/{key_name} not restored: {self.manifest} has a bad "
                                    f"entry for it ({type(exc).__name__}: {exc})")
        return restored

    def _restore_key(self, backend: Any, bucket_name: str, key_name: str, versions: list[dict[str, Any]],
                     problems: list[str]) -> int:
        from moto.s3.models import FakeDeleteMarker

        restored = 0
        last = None
        for entry in versions:
            if entry.get("delete_marker"):
                if last is not None:
                    marker = FakeDeleteMarker(key=last)
                    marker._version_id = entry["version_id"]
                    marker.last_modified = _time(entry.get("last_modified")) or marker.last_modified
                    backend.get_bucket(bucket_name).keys[key_name] = marker
                continue
            path = self.workdir / entry["file"]
            try:
                value = path.read_bytes()
            except OSError as exc:
                problems.append(f"s3://{bucket_name}/{key_name} (version {entry['version_id']}) not restored: "
                                f"{path}: {exc.strerror or exc}")
                continue
            key = backend.put_object(bucket_name, key_name, value, disable_notification=True)
            key._version_id = entry["version_id"]
            key.last_modified = _time(entry.get("last_modified")) or key.last_modified
            key.set_metadata(dict(entry.get("metadata") or {}))
            self._written[entry["file"]] = (key.version_id, key.etag)
            last = key
            restored += 1
        return restored

    # -- save --------------------------------------------------------------------

    def save(self) -> None:
        """Write what changed since the last save, drop files of deleted objects, then the manifest.

        A key whose versions are the very objects of the last save (moto makes a new
        object for each put and delete marker) is not looked at again, and when no key
        changed nothing is written: a save of an idle twin costs a walk over the key
        names, not a stat of every file and a manifest of every version. (So a file
        removed by hand while the twin runs is written again when its key next changes.)
        """
        backend = self._backend()
        manifest: dict[str, dict[str, list[dict[str, Any]]]] = {}
        saved: dict[tuple[str, str], _SavedKey] = {}
        folders: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        changed = False
        for bucket_name, bucket in list(backend.buckets.items()):
            listed = list(bucket.keys.iterlists())
            folders[bucket_name] = self._folders_of(bucket_name, listed)
            keys: dict[str, list[dict[str, Any]]] = {}
            for key_name, versions in listed:
                is_folder = key_name in folders[bucket_name][1]
                before = self._saved.get((bucket_name, key_name))
                if before is None or not before.holds(versions, is_folder):
                    before = self._save_key(bucket_name, key_name, tuple(versions), is_folder)
                    changed = True
                saved[(bucket_name, key_name)] = before
                if before.entries:
                    keys[key_name] = before.entries
            if keys:
                manifest[bucket_name] = keys
        self._folders = folders
        if not changed and saved.keys() == self._saved.keys():
            return
        written = {relative: holds for key in saved.values() for relative, holds in key.files.items()}
        for gone in set(self._written) - set(written):
            (self.workdir / gone).unlink(missing_ok=True)
        self._written = written
        self._saved = saved
        write_json(self.manifest, {"buckets": manifest})

    def _folders_of(self, bucket_name: str, listed: list[tuple[str, Any]]) -> tuple[frozenset[str], frozenset[str]]:
        """The bucket's key names and the names that other keys sit under (recomputed when the names change)."""
        names = frozenset(key for key, _ in listed)
        before = self._folders.get(bucket_name)
        if before is not None and before[0] == names:
            return before
        under = set()
        for key in names:
            slash = key.find("/")
            while slash >= 0:
                under.add(key[:slash])
                slash = key.find("/", slash + 1)
        return names, frozenset(under)

    def _save_key(self, bucket_name: str, key_name: str, versions: tuple[Any, ...],
                  is_folder: bool) -> _SavedKey:
        current = self._current_file(bucket_name, key_name, is_folder)
        entries = []
        files: dict[str, _Written] = {}
        complete = True
        latest = versions[-1] if versions and not _is_marker(versions[-1]) else None  # deleted: no current file
        for version in versions:
            if _is_marker(version):
                entries.append({"version_id": version.version_id, "delete_marker": True,
                                "last_modified": version.last_modified})
                continue
            relative = current if version is latest else self._version_file(bucket_name, version.version_id)
            holds = (version.version_id, version.etag)
            if self._written.get(relative) != holds or not (self.workdir / relative).exists():
                try:
                    value = version.value
                except ValueError:  # replaced and disposed while we looked: the next save has it
                    complete = False
                    continue
                self._make_room(relative)
                write_bytes(self.workdir / relative, value)
            files[relative] = holds
            entries.append({"version_id": version.version_id, "etag": version.etag, "size": version.size,
                            "last_modified": version.last_modified, "metadata": dict(version.metadata),
                            "file": relative})
        return _SavedKey(versions if complete else (), is_folder, entries, files)

    def _make_room(self, relative: str) -> None:
        """Remove a file written earlier where `relative` needs a folder (its key is now a folder's name too)."""
        parts = relative.split("/")
        for end in range(1, len(parts)):
            parent = "/".join(parts[:end])
            if self._written.pop(parent, None) is not None:
                (self.workdir / parent).unlink(missing_ok=True)

    def _current_file(self, bucket: str, key: str, is_folder: bool = False) -> str:
        """`s3/BUCKET/KEY`, unless KEY cannot be a file there (`is_folder`: another key is under `KEY/`)."""
        parts = key.split("/")
        if is_folder or key.endswith("/") or any(part in ("", ".", "..") for part in parts):
            return self._version_file(bucket, "key-" + hashlib.sha256(key.encode()).hexdigest()[:32])
        return "/".join(["s3", bucket, *parts])

    def _version_file(self, bucket: str, version_id: str) -> str:
        return "/".join(["state", "s3-versions", bucket, version_id])

    def _backend(self) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[self.account_id][self.partition]


@dataclass(frozen=True)
class _SavedKey:
    """What a save wrote of one key: its versions (held, so that no other object takes their identities)."""

    versions: tuple[Any, ...]
    is_folder: bool
    entries: list[dict[str, Any]]
    files: dict[str, _Written]

    def holds(self, versions: list[Any], is_folder: bool) -> bool:
        """Whether `versions` are still the very objects saved (moto never changes a saved one)."""
        return is_folder == self.is_folder and len(versions) == len(self.versions) and \
            all(now is then for now, then in zip(versions, self.versions, strict=True))


def _is_marker(version: Any) -> bool:
    """A delete marker (asking a key for `value` would read its whole body)."""
    from moto.s3.models import FakeDeleteMarker

    return isinstance(version, FakeDeleteMarker)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=None)  # moto keeps naive UTC times
