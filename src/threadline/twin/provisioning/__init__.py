"""Creates what the translated template declares, through the AWS APIs of the twin.

One function per resource type calls the same APIs CloudFormation would; a
type with no function here is reported as cloud-only, never silently dropped.
moto's own CloudFormation is not used: it skips alarms and S3 notifications,
ignores DefinitionSubstitutions and fails on multi-node job definitions.

`core` holds the Provisioner and the registry; each service module registers
its handlers with `handles` when imported, so all of them are imported here.
"""

from __future__ import annotations

# Imported for their handler registrations only.
from . import (  # noqa: F401
    batch,
    compute,
    database,
    events,
    monitoring,
    network,
    notifications,
    queues,
    registry,
    security,
    states,
    storage,
)
from .core import CLOUD_ONLY_TYPES, CloudOnly, Provisioned, Provisioner

__all__ = ["CLOUD_ONLY_TYPES", "CloudOnly", "Provisioned", "Provisioner"]
