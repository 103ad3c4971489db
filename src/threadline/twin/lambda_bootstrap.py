"""Runs one Lambda invocation inside a fresh interpreter, as the Lambda runtime would.

Started by `lambda_runtime.LocalLambdaRuntime` with `python -P` so that only the
function's code folder and its layers are importable (no twin code). Reads the
event from stdin, writes {"ok": bool, "payload": ...} to the result file named
in argv[2]. Handler output (print, logging) goes to stdout/stderr, the logs.
"""

import importlib
import json
import os
import sys
import time
import traceback
import uuid


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


def main() -> None:
    handler_path, result_path = sys.argv[1], sys.argv[2]
    timeout = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
    context = LambdaContext(time.monotonic() + timeout)
    try:
        module_name, function_name = handler_path.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), function_name)
        event = json.load(sys.stdin)
        outcome = {"ok": True, "payload": handler(event, context)}
    except Exception as exc:  # reported to the caller as Lambda reports a function error
        traceback.print_exc()
        outcome = {
            "ok": False,
            "payload": {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "stackTrace": traceback.format_tb(exc.__traceback__),
            },
        }
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(outcome, handle, default=str)


if __name__ == "__main__":
    main()
