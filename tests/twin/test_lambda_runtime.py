"""The twin's Lambda runtime: results, function errors, a dead interpreter and a timeout, told apart.

Each test runs with environments forked from the zygote (warm) and started as fresh interpreters (cold).
"""

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


@pytest.fixture(params=[True, False], ids=["warm", "cold"])
def warm_start(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def runtime(tmp_path: Path, warm_start: bool):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    lambdas = LocalLambdaRuntime({}, tmp_path / "logs", FaultPlan(), warm_start=warm_start)
    lambdas.register(FunctionSpec("Fn", "fn", "arn:aws:lambda:us-east-1:123456789012:function:fn", code,
                                  "app.handler", [], {}, timeout=1))
    yield lambdas
    lambdas.close()
    assert (lambdas.started_cold if warm_start else lambdas.started_warm) == 0  # every environment as asked


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


def _runtime_for(tmp_path: Path, source: str, timeout: int, warm_start: bool) -> LocalLambdaRuntime:
    code = tmp_path / "slow"
    code.mkdir()
    (code / "app.py").write_text(source)
    lambdas = LocalLambdaRuntime({}, tmp_path / "logs", FaultPlan(), warm_start=warm_start)
    lambdas.register(FunctionSpec("Slow", "slow", "arn:aws:lambda:us-east-1:123456789012:function:slow", code,
                                  "app.handler", [], {}, timeout=timeout))
    return lambdas


def test_a_slow_import_is_init_time_not_invocation_time(tmp_path, warm_start):
    # The import takes longer than the 1 s function timeout: Lambda times init apart.
    lambdas = _runtime_for(tmp_path, "import time\ntime.sleep(1.5)\n\n"
                                     "def handler(event, context):\n    return 'ok'\n",
                           timeout=1, warm_start=warm_start)
    try:
        assert lambdas.invoke("slow", {})[:2] == ('"ok"', False)
    finally:
        lambdas.close()


def test_a_failing_import_is_reported_on_invocation(tmp_path, warm_start):
    lambdas = _runtime_for(tmp_path, "import no_such_module_here\n\ndef handler(event, context):\n    return 1\n",
                           timeout=1, warm_start=warm_start)
    try:
        payload, errored, _ = lambdas.invoke("slow", {})
        assert errored and '"Runtime.ImportModuleError"' in payload and "no_such_module_here" in payload
    finally:
        lambdas.close()
