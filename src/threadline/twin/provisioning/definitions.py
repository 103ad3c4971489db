"""A state machine definition's grammar check, made once per definition and remembered.

CreateStateMachine checks a definition by parsing it with moto's ANTLR grammar,
about a third of a second for the pipeline's, and the first execution needs the
same parse tree (kept per definition by `moto_speedups`). A definition that
passed the check once passes it again, so the twin remembers every definition
that passed (a marker file in the cache folder of `template_cache.py`). One it
has seen is created without the check and parsed once the twin is ready
(`warm`), while the first upload's event and start function are still on their
way; a new or changed one is checked at creation as before, so a broken
definition still fails the start.

The server's port differs from start to start and appears in the queue URLs
substituted into the definition; the remembered key has it replaced by a fixed
token (digits within a string cannot change how the definition parses).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from pathlib import Path
from typing import Any

from ..template_cache import cache_dir, keep_newest

_LOCAL_PORT = re.compile(r"(127\.0\.0\.1|localhost):\d+")
_lock = threading.Lock()
_unchecked: set[str] = set()  # definitions being created without moto's parse

log = logging.getLogger("threadline.twin")


def create_checked_once(sfn: Any, args: dict[str, Any], directory: Path | None = None) -> tuple[str, bool]:
    """CreateStateMachine with `args`; the ARN, and whether the definition is still to be parsed (`warm`)."""
    definition = args["definition"]
    marker = (directory or cache_dir()) / f"asl-{definition_key(definition)}.ok"
    seen = marker.exists()
    if seen:
        _skip_check_of(definition)
    try:
        arn = sfn.create_state_machine(**args)["stateMachineArn"]
    finally:
        with _lock:
            _unchecked.discard(definition)
    if not seen:  # it passed moto's check just now
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            keep_newest(marker.parent, "asl-*.ok")
        except OSError as exc:
            log.info("could not remember the checked definition in %s: %s", marker.parent, exc)
    return arn, seen


def definition_key(definition: str) -> str:
    """The definition's hash, with local ports replaced, under the grammar's version (moto's)."""
    import moto

    normalised = _LOCAL_PORT.sub(r"\1:PORT", definition)
    return hashlib.sha256(f"moto {moto.__version__}\n{normalised}".encode()).hexdigest()[:32]


def warm(definition: str) -> None:
    """Parse `definition` now, so that its first execution finds the tree made."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    try:
        AmazonStateLanguageParser.parse(definition)
    except Exception:  # remembered as good: only a changed grammar gets here, and the execution will say so
        log.warning("a state machine definition remembered as checked no longer parses", exc_info=True)


def _skip_check_of(definition: str) -> None:
    """Let moto's CreateStateMachine take `definition` unparsed, until `create_checked_once` discards it."""
    with _lock:
        _unchecked.add(definition)
        _wrap_moto_check()


def _wrap_moto_check() -> None:
    """moto's definition check, passing the definitions in `_unchecked` (wrapped once per process)."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    check = StepFunctionsParserBackend.__dict__["_validate_definition"]
    if getattr(check, "threadline_skips", False):
        return
    original = check.__func__

    def validate_definition(definition: str) -> None:
        if definition not in _unchecked:
            original(definition=definition)

    validate_definition.threadline_skips = True  # type: ignore[attr-defined]
    StepFunctionsParserBackend._validate_definition = staticmethod(validate_definition)  # type: ignore[method-assign]
