"""One environment of samconfig.toml: its stack name, region and parameter overrides."""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DeployError


@dataclass(frozen=True)
class SamEnvironment:
    name: str
    stack_name: str
    region: str | None
    parameter_overrides: dict[str, str]

    @classmethod
    def load(cls, path: Path, name: str) -> SamEnvironment:
        with path.open("rb") as handle:
            config: dict[str, Any] = tomllib.load(handle)
        if name not in config:
            raise DeployError(f"{path.name} has no environment {name!r} (it has {', '.join(sorted(config))})")
        section = config[name]
        merged: dict[str, Any] = {}
        for command in ("global", "deploy"):
            merged.update(section.get(command, {}).get("parameters", {}))
        raw = merged.get("parameter_overrides", [])
        items = raw if isinstance(raw, list) else shlex.split(raw)
        return cls(name=name, stack_name=str(merged["stack_name"]), region=merged.get("region"),
                   parameter_overrides=dict(str(item).split("=", 1) for item in items))
