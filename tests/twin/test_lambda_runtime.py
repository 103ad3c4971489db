"""The twin's Lambda runtime: results, function errors, a dead interpreter and a timeout, told apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.twin.faults import FaultPlan
from threadline.twin.lambda_runtime import FunctionSpec, LocalLambdaRuntime

HANDLER = '''
import os, time

def handler(event, context):
    if event["do"] == "exit":
        os._exit(3)
    if event["do"] == "sleep":
        time.sleep(5)
    if event["do"] == "raise":
        raise KeyError("missing")
    return {"echo": event["do"], "function": context.function_name}
'''


@pytest.fixture
def runtime(tmp_path: Path):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    lambdas = LocalLambdaRuntime({}, tmp_path / "logs", FaultPlan())
    lambdas.register(FunctionSpec("Fn", "fn", "arn:aws:lambda:us-east-1:123456789012:function:fn", code,
                                  "app.handler", [], {}, timeout=1))
    yield lambdas
    lambdas.close()


def test_a_result_and_a_function_error(runtime):
    assert runtime.invoke("fn", {"do": "hi"})[:2] == ('{"echo": "hi", "function": "fn"}', False)
    payload, errored, _ = runtime.invoke("fn", {"do": "raise"})
    assert errored and '"errorType": "KeyError"' in payload


def test_an_interpreter_that_dies_is_an_exit_error_not_a_timeout(runtime):
    payload, errored, _ = runtime.invoke("fn", {"do": "exit"})
    assert errored and '"Runtime.ExitError"' in payload and "exit status 3" in payload
    assert runtime.invoke("fn", {"do": "again"})[:2] == ('{"echo": "again", "function": "fn"}', False)


def test_a_handler_past_its_timeout_is_timed_out(runtime):
    payload, errored, _ = runtime.invoke("fn", {"do": "sleep"})
    assert errored and '"Sandbox.Timedout"' in payload
    assert runtime.invoke("fn", {"do": "after"})[1] is False  # a fresh environment serves the next call
