"""A warm Lambda execution environment for one function, as the Lambda runtime keeps one.

Started by `lambda_runtime.LocalLambdaRuntime` with `python -P`, or run by a child
of lambda_zygote.py as that would run it, so that the function's code folder and
its layers come first on the import path (no twin code). It imports
the handler once (the cold start), then serves invocations: one JSON request per
line on stdin naming the event, result and log files. On the control pipe it
says "ready" once the import is done and "done" after each invocation. While a
handler runs, file descriptors 1 and 2 point at that invocation's log file, so
print() and every logging handler land there.
"""

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any


class LambdaContext:
    """The attributes of the Lambda context object that handlers use."""

    def __init__(self, deadline: float) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = os.environ.get("THREADLINE_FUNCTION_ARN", "")
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(exc: BaseException, error_type: str | None = None) -> dict:
    return {"errorMessage": str(exc), "errorType": error_type or type(exc).__name__,
            "stackTrace": traceback.format_tb(exc.__traceback__)}


def _redirect_output(path: str) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)


def main() -> None:
    handler_path, control_fd = sys.argv[1], int(sys.argv[2])
    timeout = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
    handler: Any = None  # the function the handler setting names
    init_error = None
    try:
        module_name, function_name = handler_path.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # reported on every invocation, as Lambda reports an init failure
        traceback.print_exc()
        init_error = _error(exc, "Runtime.ImportModuleError")
    os.write(control_fd, b"ready\n")  # the init phase is over; invocations are timed from here
    for line in sys.stdin:
        request = json.loads(line)
        _redirect_output(request["log_path"])
        if init_error is not None:
            outcome = {"ok": False, "payload": init_error}
        else:
            try:
                with open(request["event_path"], encoding="utf-8") as handle:
                    event = json.load(handle)
                context = LambdaContext(time.monotonic() + timeout)
                outcome = {"ok": True, "payload": handler(event, context)}
            except Exception as exc:  # a function error: the caller sees errorType and errorMessage
                traceback.print_exc()
                outcome = {"ok": False, "payload": _error(exc)}
        sys.stdout.flush()
        sys.stderr.flush()
        with open(request["result_path"], "w", encoding="utf-8") as handle:
            json.dump(outcome, handle, default=str)
        os.write(control_fd, b"done\n")


if __name__ == "__main__":
    main()
