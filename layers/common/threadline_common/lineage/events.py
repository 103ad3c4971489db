"""The lineage events the state machine sends (docs/design.md, "Lineage events"), parsed and checked."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

RUN_STARTED = "run_started"
RUN_FINISHED = "run_finished"


class LineageEventError(ValueError):
    """The event does not follow the lineage event contract; it is logged and skipped."""


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    execution_arn: str | None
    source: dict[str, Any]
    at: str | None


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    status: str
    execution_arn: str | None
    source: dict[str, Any]
    at: str | None
    jobs: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    plan: dict[str, Any] = field(default_factory=dict)

    @property
    def reused(self) -> dict[str, dict[str, Any]]:
        """Steps this run did not run because it reused an earlier attempt's outputs (by step)."""
        reused = self.plan.get("reused") if isinstance(self.plan, dict) else None
        if not isinstance(reused, dict):
            return {}
        return {step: entry for step, entry in reused.items()
                if isinstance(entry, dict) and isinstance(entry.get("attempt_id"), str)}


LineageEvent = RunStarted | RunFinished


def parse_lineage_event(event: Any) -> LineageEvent:
    """Check `event` against the contract; raise LineageEventError saying what is wrong."""
    if isinstance(event, str):
        try:
            event = json.loads(event)
        except json.JSONDecodeError as exc:
            raise LineageEventError(f"the event is a string but not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise LineageEventError(f"the event must be a JSON object, not {type(event).__name__}")
    kind = event.get("event")
    run_id = _required_text(event, "run_id")
    execution_arn = _optional_text(event, "execution_arn")
    source = _source(event)
    at = _optional_text(event, "at")
    if kind == RUN_STARTED:
        return RunStarted(run_id=run_id, execution_arn=execution_arn, source=source, at=at)
    if kind == RUN_FINISHED:
        status = _required_text(event, "status").upper()
        return RunFinished(
            run_id=run_id,
            status=status,
            execution_arn=execution_arn,
            source=source,
            at=at,
            jobs=_mapping(event, "jobs"),
            failures=_mapping(event, "failures"),
            error=_error(event),
            plan=_mapping(event, "plan"),
        )
    raise LineageEventError(f"unknown lineage event {kind!r}; expected {RUN_STARTED!r} or {RUN_FINISHED!r}")


def _required_text(event: dict[str, Any], name: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value.strip():
        raise LineageEventError(f"{name!r} must be a non-empty string, got {value!r}")
    return value


def _optional_text(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise LineageEventError(f"{name!r} must be a string, got {type(value).__name__}")
    return value or None


def _mapping(event: dict[str, Any], name: str) -> dict[str, Any]:
    value = event.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LineageEventError(f"{name!r} must be an object keyed by step, got {type(value).__name__}")
    return value


def _source(event: dict[str, Any]) -> dict[str, Any]:
    source = event.get("source")
    if source is None:
        return {}
    if not isinstance(source, dict):
        raise LineageEventError(f"'source' must be an object, got {type(source).__name__}")
    if not source.get("uri") and not (source.get("bucket") and source.get("key")):
        raise LineageEventError("'source' needs a 'uri' or a 'bucket' and a 'key'")
    return source


def _error(event: dict[str, Any]) -> dict[str, Any] | None:
    error = event.get("error")
    if error is None:
        return None
    if not isinstance(error, dict):
        raise LineageEventError(f"'error' must be an object with Error and Cause, got {type(error).__name__}")
    return error
