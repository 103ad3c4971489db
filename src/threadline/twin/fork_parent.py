"""What the twin's two warm parents share: job_zygote.py (Batch jobs) and lambda_zygote.py (Lambda environments).

Standard library only, and no import of threadline: lambda_zygote.py runs as a
`python -P` script outside threadline's package (its environments must not
see twin code) and loads this file by its path.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def share_botocore_models(services: tuple[str, ...], parent: str) -> None:
    """Parse botocore's data files for `services` once, for every child's sessions to read.

    Each child's first client otherwise parses the same service model and
    endpoint list again (a tenth of a second or more). Only this static data is
    shared, as the imported modules are: credentials, region and endpoint are
    still read by each child's own sessions from its own environment, and a
    session given its own data path (AWS_DATA_PATH) gets a loader of its own.
    `parent` names the process in what it says on stderr.
    """
    try:
        import botocore.loaders
        import botocore.session
    except ImportError:
        return
    loader = botocore.loaders.create_loader()
    try:
        for name in ("endpoints", "partitions", "sdk-default-configuration", "_retry"):
            loader.load_data(name)
        for service in services:
            for kind in ("service-2", "endpoint-rule-set-1"):
                loader.load_service_model(service, kind)
    except Exception as exc:  # the children parse what they need themselves
        print(f"{parent}: could not preload botocore's models: {exc}", file=sys.stderr)
        return
    own_loader = botocore.session.create_loader

    def create_loader(search_path_string: str | None = None) -> Any:
        return own_loader(search_path_string) if search_path_string else loader

    botocore.session.create_loader = create_loader


def wake_on_child_exit() -> tuple[int, int]:
    """A pipe that gets a byte whenever a child ends (SIGCHLD), so that `select` on its read end returns at once."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    return read_end, write_end


def exit_code(value: object) -> int:
    """What `sys.exit(value)` makes a process's exit status."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1
