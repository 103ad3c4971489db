"""EventBridge schedules, fired by the twin.

moto stores a rule's `ScheduleExpression` and never fires it. The twin reads
the enabled rules of the default bus every `refresh_s` seconds and fires each
`rate(N unit)` rule's Lambda targets with a "Scheduled Event" (or the target's
constant `Input`), as an asynchronous invocation, every N units scaled by
`time_scale` (1/60: `rate(1 minute)` fires every second, `rate(5 minutes)`
every 5 s). The first firing comes one scaled period after the twin first sees
the rule, as on AWS. `cron(...)` schedules and non-Lambda targets are not
fired; each is logged once.

moto also hands every event put on the bus to a rule that has a schedule and
no event pattern (an empty pattern matches everything), so a scheduled
function would receive S3, Step Functions and Batch events as well. On AWS a
schedule-only rule matches no event; the moto fix
`schedule_rules_ignore_bus_events` makes the twin agree.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from . import moto_fixes

if TYPE_CHECKING:
    pass

logger = logging.getLogger("threadline.twin")

TIME_SCALE = 1 / 60  # a rate(1 minute) schedule fires every second in the twin
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """The period of a `rate(...)` expression in seconds (unscaled); None for anything else."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    value, unit = int(match.group(1)), match.group(2).rstrip("s")
    if value < 1 or (value == 1) != (match.group(2) == unit):  # AWS: "1 minute", "5 minutes"
        return None
    return float(value * _UNIT_SECONDS[unit])


def scheduled_event(rule_arn: str, account: str, region: str, moment: datetime | None = None) -> dict[str, Any]:
    """The event EventBridge sends a schedule's target."""
    moment = moment or datetime.now(UTC)
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": account, "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
            "resources": [rule_arn], "detail": {}}


@dataclass
class _Schedule:
    arn: str
    period_s: float  # scaled
    due: float  # time.monotonic() of the next firing


@dataclass
class ScheduleRunner:
    session: Any
    endpoint_url: str
    region: str = "us-east-1"
    time_scale: float = TIME_SCALE
    refresh_s: float = 1.0
    invoke: Callable[[str, dict[str, Any]], None] = moto_fixes.invoke_lambda_by_arn
    fired: list[tuple[str, str]] = field(default_factory=list)  # (rule name, target ARN) per firing
    _schedules: dict[str, _Schedule] = field(default_factory=dict)
    _told: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ScheduleRunner:
        self._thread = threading.Thread(target=self._loop, name="schedules", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.refresh_s + 5)

    def _loop(self) -> None:
        events = self.session.client("events", endpoint_url=self.endpoint_url, region_name=self.region)
        refreshed = float("-inf")
        while not self._stop.is_set():
            now = time.monotonic()
            if now - refreshed >= self.refresh_s:
                try:
                    self.refresh(events, now)
                except (ClientError, BotoCoreError):
                    if self._stop.is_set():
                        return
                refreshed = now
            for name, schedule in list(self._schedules.items()):
                if now >= schedule.due:
                    schedule.due = max(schedule.due + schedule.period_s, now)
                    self._fire(events, name, schedule)
            upcoming = min((s.due for s in self._schedules.values()), default=now + self.refresh_s)
            self._stop.wait(max(0.01, min(upcoming, refreshed + self.refresh_s) - time.monotonic()))

    def refresh(self, events: Any, now: float) -> None:
        """Pick up new, changed and deleted schedule rules of the default bus."""
        seen = set()
        for page in events.get_paginator("list_rules").paginate():
            for rule in page.get("Rules", []):
                expression = rule.get("ScheduleExpression")
                if not expression or rule.get("State", "ENABLED") != "ENABLED":
                    continue
                period = rate_seconds(expression)
                if period is None:
                    self._tell(rule["Name"], f"schedule {expression!r} of rule {rule['Name']} is not fired "
                                             "by the twin (only rate(N minutes|hours|days))")
                    continue
                seen.add(rule["Name"])
                scaled = period * self.time_scale
                known = self._schedules.get(rule["Name"])
                if known is None or known.period_s != scaled:
                    self._schedules[rule["Name"]] = _Schedule(rule["Arn"], scaled, now + scaled)
        for name in set(self._schedules) - seen:
            del self._schedules[name]

    def _fire(self, events: Any, name: str, schedule: _Schedule) -> None:
        try:
            targets = events.list_targets_by_rule(Rule=name).get("Targets", [])
        except (ClientError, BotoCoreError):
            return
        account, region = schedule.arn.split(":")[4], schedule.arn.split(":")[3]
        for target in targets:
            if ":lambda:" not in target["Arn"]:
                self._tell(f"{name}/{target['Arn']}", f"target {target['Arn']} of schedule rule {name} is not "
                                                      "fired by the twin (Lambda targets only)")
                continue
            event = json.loads(target["Input"]) if "Input" in target \
                else scheduled_event(schedule.arn, account, region)
            self.invoke(target["Arn"], event)
            self.fired.append((name, target["Arn"]))

    def _tell(self, key: str, message: str) -> None:
        if key not in self._told:
            self._told.add(key)
            logger.warning(message)



