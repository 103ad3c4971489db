"""What the twin's two warm parents share: job_zygote.py (Batch jobs) and lambda_zygote.py (Lambda environments).

Standard library only, and no import of threadline: lambda_zygote.py runs as a
`python -P` script outside threadline's package (its environments must not
see twin code) and loads this file by its path.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from typing import Any


def share_botocore_models(services: tuple[str, ...], parent: str) -> None:
    """Parse botocore's data files for `services` once, for every child's sessions to read, and do once
    what each child's first session and client would (`_keep_handler_checks`, `_make_first_client`).

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
                # As a session asks (the loader's cache key holds the arguments' names too).
                loader.load_service_model(service, kind, api_version=None)
    except Exception as exc:  # the children parse what they need themselves
        print(f"{parent}: could not preload botocore's models: {exc}", file=sys.stderr)
        return
    own_loader = botocore.session.create_loader

    def create_loader(search_path_string: str | None = None) -> Any:
        return own_loader(search_path_string) if search_path_string else loader

    botocore.session.create_loader = create_loader
    _keep_handler_checks()
    if services:
        _make_first_client(services[0], parent)


def _keep_handler_checks() -> None:
    """Keep the answers of the two checks botocore repeats for each built-in handler of every new session.

    Each session registers a few hundred handlers. For each, botocore spells the
    event name with its default aliases (a cache per session, so it starts
    empty) and asks `inspect` whether the handler takes keyword arguments: a
    third of a new session's cost. Both answers depend only on the name and the
    function, so a session with the default aliases starts from a copy of the
    names spelled here, and a function's answer is kept. Everything else about
    registering a handler, and every other session, is as botocore does it.
    """
    import types

    import botocore.hooks

    default_aliases, spelled = botocore.hooks.EVENT_ALIASES, botocore.hooks.EventAliaser._alias_event_name
    names: dict[str, str] = {}

    def alias_event_name(self: Any, event_name: str) -> str:
        if self._event_aliases is not default_aliases:
            return spelled(self, event_name)
        if not self._alias_name_cache and names:
            self._alias_name_cache.update(names)
        name = spelled(self, event_name)
        names.setdefault(event_name, name)
        return name

    accepts_kwargs, answers = botocore.hooks.accepts_kwargs, {}

    def kept_accepts_kwargs(func: Any) -> Any:
        code = func.__func__ if isinstance(func, types.MethodType) else func
        if not isinstance(code, types.FunctionType):
            return accepts_kwargs(func)
        if code not in answers:
            answers[code] = accepts_kwargs(func)
        return answers[code]

    botocore.hooks.EventAliaser._alias_event_name = alias_event_name
    botocore.hooks.accepts_kwargs = kept_accepts_kwargs


def _make_first_client(service: str, parent: str) -> None:
    """Make and drop one session and one client, as a child's first ones would be made.

    A process's first client does work its later ones skip, whatever their
    service: it compiles botocore's regular expressions, loads OpenSSL's defaults
    into its first context, and builds the first credential resolver (a third of
    a forked child's first client). Done here, a child inherits that as it
    inherits the imported modules. The client is given placeholder keys, so
    nothing looks for credentials, and it never sends a request.
    """
    import botocore.session

    try:
        session = botocore.session.Session()
        session.get_component("credential_provider")
        session.create_client(service, region_name="us-east-1", aws_access_key_id="warm-up",
                              aws_secret_access_key="warm-up")
    except Exception as exc:  # the children make their first client themselves
        print(f"{parent}: could not make botocore's first client: {exc}", file=sys.stderr)


def wake_on_child_exit() -> tuple[int, int]:
    """A pipe that gets a byte whenever a child ends (SIGCHLD), so that `select` on its read end returns at once."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    return read_end, write_end


def ended_children() -> Iterator[tuple[int, int]]:
    """(pid, exit status as subprocess gives it) of each child that has ended, without waiting for one.

    Raises ChildProcessError when the process has no children at all.
    """
    while True:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        yield pid, os.waitstatus_to_exitcode(status)


def exit_code(value: object) -> int:
    """What `sys.exit(value)` makes a process's exit status."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1
