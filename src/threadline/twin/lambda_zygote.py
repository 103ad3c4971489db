"""A warm parent for the twin's Lambda execution environments: it imports the layer's libraries once, then forks.

A cold execution environment spends most of its init importing boto3, botocore,
Powertools and slack_sdk (what CommonLayer ships, layers/common/requirements.txt)
and parsing botocore's models at its first client. This process does that once
and forks a child per environment. The child takes the environment's folder,
variables, import path, stdin, control pipe and init log, then runs
lambda_bootstrap.py as `python -P lambda_bootstrap.py HANDLER FD` would: the
function's own code (its handler module, threadline_common) is imported fresh
in every environment, never here.

Started by `lambda_runtime.LocalLambdaRuntime` as `python -P lambda_zygote.py FD
[BYTECODE_DIR]` with an environment of its own (`IMPORT_TIME_ENV` names what the
preloaded libraries read while they import; an environment that differs there
starts cold). What else a child gets, none of it visible to the function: a heap
frozen out of the garbage collector before the first fork (`gc.freeze`), so its
collections do not copy the pages it shares with this process, and its modules'
bytecode kept in BYTECODE_DIR (the twin's cache, else a folder of this process's),
never in the function's folder.

The twin makes each environment's stdin and control pipes and opens its init
log just as for a cold start, and hands them over with the request (SCM_RIGHTS):
it keeps the same pipe ends whichever way the environment started, and no named
pipes need making or cleaning up. A SOCK_SEQPACKET socket keeps each request
whole with its descriptors.

Protocol on the Unix SOCK_SEQPACKET socket FD, one JSON object a message.
Requests, each with three file descriptors attached (stdin, control, init log):
  {"id": N, "handler": H, "cwd": DIR, "env": {...}}
Answers:
  {"ready": true}                      once the libraries are imported
  {"id": N, "pid": P}                  the environment started
  {"id": N, "error": TEXT}             it could not
  {"exit": P, "returncode": R}         an environment ended (R = -N when killed by signal N)
When the socket closes, the environments still running are killed and the process exits.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import json
import os
import runpy
import select
import signal
import socket
import sys
import tempfile
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NoReturn

BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lambda_bootstrap.py")
# CommonLayer's libraries as the handlers use them (functions/*/app.py, threadline_common), and what their
# first client and call load: botocore's client machinery, its HTTP stack, Powertools' parameters.
PRELOAD = ("aws_lambda_powertools", "aws_lambda_powertools.logging", "aws_lambda_powertools.utilities.typing",
           "aws_lambda_powertools.utilities.parameters", "aws_lambda_powertools.shared.json_encoder",
           "botocore.exceptions", "botocore.config", "botocore.session", "botocore.client",
           "botocore.httpsession", "botocore.endpoint_provider", "botocore.retries.standard",
           "botocore.retries.adaptive", "botocore.docs", "boto3", "boto3.session", "boto3.docs",
           "boto3.dynamodb.types", "boto3.dynamodb.conditions", "boto3.s3.inject", "boto3.s3.transfer",
           "boto3.resources.factory", "slack_sdk.errors", "slack_sdk.webhook", "encodings.idna")
# The services the functions call (functions/*/app.py, threadline_common): their botocore models are parsed once.
BOTOCORE_SERVICES = ("s3", "dynamodb", "sqs", "lambda", "stepfunctions", "batch", "cloudwatch", "neptunedata",
                     "secretsmanager")
# What those imports read from the environment (Powertools' user agent, cold-start and debug switches), and
# what Python reads as it starts (PYTHON*, the locale): an environment must agree with this process on them.
IMPORT_TIME_ENV = ("AWS_EXECUTION_ENV", "AWS_LAMBDA_INITIALIZATION_TYPE", "POWERTOOLS_DEBUG", "HOME", "LANG")
IMPORT_TIME_PREFIXES = ("PYTHON", "LC_")
PER_ENVIRONMENT = ("PYTHONPATH",)  # set for each environment by the child itself
MAX_REQUEST_BYTES = 1 << 20  # a request is mostly its environment: a few KiB
BUFFER_BYTES = 1 << 20  # room for many requests or answers in flight: a sender seldom waits
BACKSTOP_S = 10.0  # the longest wait between two looks for ended children (a SIGCHLD ends it at once)


def _load_fork_parent() -> ModuleType:
    """fork_parent.py, loaded by its path: run as a `-P` script, this file is outside threadline's package."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fork_parent.py")
    spec = importlib.util.spec_from_file_location("_fork_parent", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_shared = _load_fork_parent()


@dataclass(frozen=True)
class _ForkSettings:
    """What every child needs from this process, besides its request."""

    base_path: list[str]
    bytecode_dir: str


def main(channel_fd: int, bytecode_dir: str | None) -> None:
    channel = socket.socket(fileno=channel_fd)
    channel.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER_BYTES)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # a function that needs it imports it (and fails) itself
            print(f"lambda zygote: could not preload {name}: {exc}", file=sys.stderr)
    _shared.share_botocore_models(BOTOCORE_SERVICES, "lambda zygote")
    wake = _shared.wake_on_child_exit()[0]
    with contextlib.ExitStack() as cleanup:
        if bytecode_dir is None:  # no cache of the twin's to share: one of this process's own
            bytecode_dir = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="threadline-lambda-bytecode-"))
        settings = _ForkSettings(list(sys.path), bytecode_dir)  # `-P`: the libraries' folders, no script folder
        gc.collect()
        gc.freeze()  # a child's collections then neither walk nor copy the pages it shares with this process
        _send(channel, {"ready": True})
        _serve(channel, wake, settings)


def _serve(channel: socket.socket, wake: int, settings: _ForkSettings) -> None:
    """Start an environment per request until the socket closes; report each one's end."""
    children: set[int] = set()
    requests = channel.fileno()
    while True:
        readable, _, _ = select.select([requests, wake], [], [], BACKSTOP_S)
        if wake in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake, 4096)
        _reap(channel, children)
        if requests not in readable:
            continue
        message, fds, flags, _ = socket.recv_fds(channel, MAX_REQUEST_BYTES, 3)
        if not message:
            break
        _start(channel, message, fds, flags, settings, children)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    while children:
        try:
            pid, _ = os.waitpid(-1, 0)
        except ChildProcessError:
            return
        children.discard(pid)


def _start(channel: socket.socket, message: bytes, fds: list[int], flags: int, settings: _ForkSettings,
           children: set[int]) -> None:
    request: dict[str, Any] = {}
    try:
        request = json.loads(message)
        if len(fds) != 3 or flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise ValueError("a request comes with its stdin, control pipe and init log, whole")
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
    except (OSError, ValueError) as exc:
        for fd in fds:
            os.close(fd)
        _send(channel, {"id": request.get("id"), "error": f"cannot start the environment: {exc}"})
        return
    if pid == 0:
        _child(request, fds, settings)
    for fd in fds:  # the child's now: the twin sees the control pipe's end when the child goes
        os.close(fd)
    children.add(pid)
    _send(channel, {"id": request["id"], "pid": pid})


def _child(request: dict[str, Any], fds: list[int], settings: _ForkSettings) -> NoReturn:
    """Become the execution environment, as `python -P lambda_bootstrap.py HANDLER FD` in its folder would."""
    code = 1
    try:
        os.setsid()  # the terminal's Ctrl-C is the twin's to handle: an environment ends when its stdin closes
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        stdin, control, log = fds
        os.dup2(stdin, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.set_inheritable(control, True)
        # Nothing else of this process's stays open: the socket, the wake-up pipe, other requests' pipes.
        os.closerange(3, control)
        os.closerange(control + 1, os.sysconf("SC_OPEN_MAX"))
        env = {str(key): str(value) for key, value in request["env"].items()}
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(env)
        python_path = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
        sys.path[:] = [*python_path, *settings.base_path]
        # The function's own modules compile once for the twin, into its cache, never into the function's folder.
        sys.pycache_prefix = settings.bytecode_dir
        sys.dont_write_bytecode = False
        sys.argv = [BOOTSTRAP, request["handler"], str(control)]
        code = 0
        runpy.run_path(BOOTSTRAP, run_name="__main__")
    except SystemExit as exc:
        code = _shared.exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def forkable(env: dict[str, str], zygote_env: dict[str, str]) -> bool:
    """Whether an environment with `env` can be forked from a zygote started with `zygote_env`."""
    keys = {key for key in (*env, *zygote_env)
            if key in IMPORT_TIME_ENV or (key.startswith(IMPORT_TIME_PREFIXES) and key not in PER_ENVIRONMENT)}
    return all(env.get(key) == zygote_env.get(key) for key in keys)


def _reap(channel: socket.socket, children: set[int]) -> None:
    if not children:
        return
    try:
        for pid, returncode in _shared.ended_children():
            children.discard(pid)
            _send(channel, {"exit": pid, "returncode": returncode})
    except ChildProcessError:
        children.clear()


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the twin went away: the next read sees the socket closed
        channel.send(json.dumps(message).encode())


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
