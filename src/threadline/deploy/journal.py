"""Every step and every AWS call of a deploy, printed as it happens.

In a dry run the journal answers each call with what a first deploy into an
empty account would get back, so the same code walks the whole sequence and
prints every call without making one.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from botocore import xform_name

Printer = Callable[[str], None]
_SHOWN_VALUE_CHARS = 400


def _shown(value: Any) -> str:
    """A parameter as printed: bodies (bytes, multi-line text) by their size, long values cut."""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str) and "\n" in value:
        return f"<{len(value)} characters>"
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= _SHOWN_VALUE_CHARS else f"{text[:_SHOWN_VALUE_CHARS - 20]}...({len(text)} chars)"


@dataclass(frozen=True)
class AwsCall:
    """One AWS API call: service, operation (as the API names it) and its parameters."""

    service: str
    operation: str
    params: Mapping[str, Any]

    def line(self) -> str:
        shown = " ".join(f"{key}={_shown(value)}" for key, value in self.params.items())
        return f"aws {self.service} {self.operation} {shown}".rstrip()


@dataclass
class Journal:
    """Numbered steps, the calls and commands under each, and whether they are only shown."""

    dry_run: bool
    out: Printer = print
    calls: list[AwsCall] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    _steps: int = 0

    def step(self, title: str) -> None:
        self._steps += 1
        self.out(f"[{self._steps}] {title}")

    def note(self, text: str) -> None:
        self.out(f"    {text}")

    def call(self, call: AwsCall) -> None:
        self.calls.append(call)
        self.out(f"    {'(dry run) ' if self.dry_run else ''}{call.line()}")

    def command(self, argv: Sequence[str]) -> None:
        self.commands.append(list(argv))
        self.out(f"    {'(dry run) ' if self.dry_run else ''}$ {shlex.join(argv)}")


class AwsService:
    """Base of the per-service clients: each call is journaled, and made unless in a dry run."""

    service: ClassVar[str]

    def __init__(self, session: Any | None, journal: Journal) -> None:
        self.journal = journal
        self._client = None if journal.dry_run or session is None else session.client(self.service)

    def _call(self, operation: str, dry_answer: Any, **params: Any) -> Any:
        self.journal.call(AwsCall(self.service, operation, params))
        if self._client is None:
            return dry_answer
        return getattr(self._client, xform_name(operation))(**params)

    @property
    def errors(self) -> Any:
        """The client's modelled exceptions (never reached in a dry run)."""
        assert self._client is not None
        return self._client.exceptions
