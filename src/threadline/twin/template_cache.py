"""The SAM translation of template.yaml, kept on disk between twin starts.

Loading template.yaml and aws-sam-translator and translating took a fifth of the
twin's start (bench/README.md). The result is a pure function of
template.yaml's bytes, the project root (the local folders it names), the region,
the account, the translator's version and the twin's own pre-processing in
template.py, so it is kept under a hash of all of these: any change to one is a
new key, and an entry that cannot be read is translated again. The cache lives
outside the workdir (every fresh workdir would start cold) in
`$THREADLINE_CACHE_DIR`, else `$XDG_CACHE_HOME/threadline`, else
`~/.cache/threadline`; where it cannot be written, the twin translates every time.
Only the newest entries are kept (`keep_newest`). The same folder remembers the
state machine definitions already checked (`provisioning/definitions.py`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from . import template
from .state_files import write_bytes
from .template import LocalArtifacts, load_yaml, translate

CACHE_DIR_ENV = "THREADLINE_CACHE_DIR"
TEMPLATE_FILE = "template.yaml"
KEEP_ENTRIES = 32  # of each kind: a few templates (branches, test copies) times a few versions each
_ARTIFACT_KINDS = ("code_dirs", "layer_dirs", "definitions")

log = logging.getLogger("threadline.twin")


def cache_dir() -> Path:
    """Where translations are kept (see the module's docstring)."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "threadline"


def translated_template(root: Path, region: str, account_id: str,
                        directory: Path | None = None) -> tuple[dict[str, Any], LocalArtifacts]:
    """`translate(load_yaml(root / "template.yaml"), root, ...)`, from the cache when its inputs are unchanged."""
    source = (root / TEMPLATE_FILE).read_bytes()
    entry = (directory or cache_dir()) / f"sam-{cache_key(source, root, region, account_id)}.json"
    cached = _read(entry)
    if cached is not None:
        return cached
    result = translate(load_yaml(root / TEMPLATE_FILE), root, region=region, account_id=account_id)
    _write(entry, *result)
    return result


def cache_key(source: bytes, root: Path, region: str, account_id: str) -> str:
    """A hash of everything the translation depends on."""
    import samtranslator

    digest = hashlib.sha256()
    for part in (source, Path(template.__file__).read_bytes(), samtranslator.__version__.encode(),
                 str(root.resolve()).encode(), region.encode(), account_id.encode()):
        digest.update(len(part).to_bytes(8, "big"))  # lengths first: no two inputs hash alike by shifting bytes
        digest.update(part)
    return digest.hexdigest()[:32]


def _read(entry: Path) -> tuple[dict[str, Any], LocalArtifacts] | None:
    try:
        stored = json.loads(entry.read_text(encoding="utf-8"))
        artifacts = LocalArtifacts(**{kind: {name: Path(path) for name, path in stored["artifacts"][kind].items()}
                                      for kind in _ARTIFACT_KINDS})
        return stored["template"], artifacts
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring the unreadable template cache entry %s (%s); translating again", entry, exc)
        return None


def _write(entry: Path, cfn: dict[str, Any], artifacts: LocalArtifacts) -> None:
    """Written whole or not at all (`state_files.write_bytes`): a reader never sees half an entry."""
    stored = {"template": cfn,
              "artifacts": {kind: {name: str(path) for name, path in getattr(artifacts, kind).items()}
                            for kind in _ARTIFACT_KINDS}}
    try:
        write_bytes(entry, json.dumps(stored).encode())
    except (OSError, TypeError, ValueError) as exc:  # a read-only home or a full disk, or a value JSON cannot hold
        log.info("could not keep the template's translation in %s: %s", entry.parent, exc)
        return
    keep_newest(entry.parent, "sam-*.json")


def keep_newest(directory: Path, pattern: str, count: int = KEEP_ENTRIES) -> None:
    """Remove all but the `count` newest files matching `pattern`: each change of an input adds an entry."""
    def modified(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed meanwhile by another twin's pruning
            return 0.0

    for stale in sorted(directory.glob(pattern), key=modified, reverse=True)[count:]:
        stale.unlink(missing_ok=True)
