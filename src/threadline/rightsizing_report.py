"""Right-sizing hints over a time window, from the `rightsizing` maps of run records.

The lineage function writes each finished run's hints into its record
(threadline_common.run_rightsizing_record). Over many runs, a step needs what
its largest run needed, so this takes the peak of the runs' memory peaks and,
for CPU, the median of their mean use (a CPU hint trades speed, not failure),
measured against the request of the step's latest run, and asks
threadline_common.rightsizing for the same hint a single run would get.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from threadline_common.cost import Request
from threadline_common.rightsizing import suggest

from .cost_report import parse_moment


@dataclass
class StepWindow:
    """One step's figures gathered over the window's runs."""

    request: Request | None = None
    request_at: str = ""
    runs: int = 0
    peaks: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    oom_runs: int = 0

    def add(self, entry: dict[str, Any], finished_at: str) -> None:
        self.runs += 1
        request = _request(entry.get("request"))
        if request is not None and finished_at >= self.request_at:
            self.request, self.request_at = request, finished_at
        if (peak := _number(entry.get("peak_memory_mib"))) is not None:
            self.peaks.append(peak)
        if (cpu := _number(entry.get("cpu_vcpus"))) is not None:
            self.cpus.append(cpu)
        self.oom_runs += bool(entry.get("oom"))

    def to_dict(self) -> dict[str, Any]:
        peak = max(self.peaks, default=None)
        cpu = statistics.median(self.cpus) if self.cpus else None
        hint = suggest(self.request, peak, cpu, self.oom_runs > 0) if self.request else None
        request = self.request
        return {
            "runs": self.runs,
            "measured_runs": len(self.peaks),
            "request": None if request is None else
            {"vcpus": request.vcpus, "memory_mib": request.memory_mib, "gpus": request.gpus},
            "peak_memory_mib": None if peak is None else round(peak, 3),
            "median_cpu_vcpus": None if cpu is None else round(cpu, 3),
            "oom_runs": self.oom_runs,
            "suggested_memory_mib": hint.memory_mib if hint else None,
            "suggested_vcpus": hint.vcpus if hint else None,
            "notes": list(hint.notes) if hint else ["no resource request recorded"],
        }


def summarise_rightsizing(records: Iterable[dict[str, Any]], since: datetime) -> dict[str, dict[str, Any]]:
    """Each step's window figures and hint, from every record whose `rightsizing` finished at or after `since`."""
    steps: dict[str, StepWindow] = {}
    for record in records:
        sizing = record.get("rightsizing")
        if not isinstance(sizing, dict) or not isinstance(sizing.get("steps"), dict):
            continue
        finished_at = sizing.get("finished_at") if isinstance(sizing.get("finished_at"), str) else ""
        moment = parse_moment(finished_at) or parse_moment(record.get("started_at"))
        if moment is None or moment < since:
            continue
        for step, entry in sizing["steps"].items():
            if isinstance(entry, dict):
                steps.setdefault(str(step), StepWindow()).add(entry, finished_at or "")
    return {step: window.to_dict() for step, window in steps.items()}


def _request(value: Any) -> Request | None:
    if not isinstance(value, dict):
        return None
    vcpus, memory = _number(value.get("vcpus")), _number(value.get("memory_mib"))
    if vcpus is None or memory is None:
        return None
    return Request(vcpus=vcpus, memory_mib=int(memory), gpus=int(_number(value.get("gpus")) or 0))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    return float(value)

