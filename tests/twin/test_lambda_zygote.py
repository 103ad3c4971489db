"""Environments forked from the zygote: each function's own variables, a fresh import of its code, and the cold path
taking over where the zygote cannot serve."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from threadline.twin import lambda_launcher
from threadline.twin.faults import FaultPlan
from threadline.twin.lambda_runtime import FunctionSpec, LocalLambdaRuntime

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "common"
# A handler as the template's are: Powertools' Logger at import, the layer's code, and a side effect at import
# (one line a fresh import) to count how often its module is imported.
HANDLER = '''
import os, sys
from aws_lambda_powertools import Logger
from threadline_common import aws

with open(os.environ["IMPORTS_FILE"], "a") as imports:
    imports.write(f"{os.getpid()}\\n")
logger = Logger()

def handler(event, context):
    if event.get("do") == "exit":
        os._exit(4)
    return {"pid": os.getpid(), "flavour": os.environ.get("FLAVOUR"), "service": logger.service,
            "cwd": os.getcwd(), "path": sys.path[:2], "client_region": aws.client("s3").meta.region_name,
            "twin_code": sorted(name for name in sys.modules if name.startswith("threadline.")),
            "preloaded_handler": sys.modules["app"].__file__}
'''


def _function(tmp_path: Path, name: str, environment: dict[str, str]) -> FunctionSpec:
    code = tmp_path / name
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    return FunctionSpec(name.title(), name, f"arn:aws:lambda:us-east-1:123456789012:function:{name}", code,
                        "app.handler", [LAYER], {"IMPORTS_FILE": str(tmp_path / f"{name}.imports"), **environment},
                        timeout=30)


def _invoke(runtime: LocalLambdaRuntime, name: str, event: dict | None = None) -> dict:
    payload, errored, logs = runtime.invoke(name, event or {})
    assert not errored, (payload, logs)
    return json.loads(payload)


@pytest.fixture
def runtime(tmp_path: Path):
    lambdas = LocalLambdaRuntime({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
                                 tmp_path / "logs", FaultPlan(), region="eu-west-1")
    yield lambdas
    lambdas.close()


def test_each_function_sees_its_own_variables_and_imports_its_code_afresh(runtime, tmp_path):
    runtime.register(_function(tmp_path, "alpha", {"FLAVOUR": "mint", "POWERTOOLS_SERVICE_NAME": "alpha-svc"}))
    runtime.register(_function(tmp_path, "beta", {}))
    alpha, beta = _invoke(runtime, "alpha"), _invoke(runtime, "beta")
    assert (alpha["flavour"], alpha["service"]) == ("mint", "alpha-svc")
    assert (beta["flavour"], beta["service"]) == (None, "service_undefined")
    assert alpha["cwd"] == str(tmp_path / "alpha")
    assert alpha["path"] == [str(tmp_path / "alpha"), str(LAYER)]
    assert alpha["preloaded_handler"] == str(tmp_path / "alpha" / "app.py")
    assert alpha["client_region"] == "eu-west-1"  # botocore read this environment's variables, not the zygote's
    assert alpha["twin_code"] == []
    # A second environment of alpha (the first one dies) imports the handler module again; a warm one does not.
    assert runtime.invoke("alpha", {"do": "exit"})[1] is True
    again = _invoke(runtime, "alpha")
    assert _invoke(runtime, "alpha")["pid"] == again["pid"] != alpha["pid"]
    assert (tmp_path / "alpha.imports").read_text().split() == [str(alpha["pid"]), str(again["pid"])]
    assert (tmp_path / "beta.imports").read_text().split() == [str(beta["pid"])]
    assert (runtime.started_warm, runtime.started_cold) == (3, 0)


def test_a_variable_read_as_the_libraries_import_makes_a_cold_start(runtime, tmp_path):
    # Powertools reads POWERTOOLS_DEBUG as it is imported: the zygote imported it without, so this one starts cold.
    runtime.register(_function(tmp_path, "debug", {"POWERTOOLS_DEBUG": "true", "FLAVOUR": "plain"}))
    runtime.register(_function(tmp_path, "quiet", {}))
    assert _invoke(runtime, "debug")["flavour"] == "plain"
    assert _invoke(runtime, "quiet")["flavour"] is None
    assert (runtime.started_warm, runtime.started_cold) == (1, 1)


@pytest.mark.parametrize("invoked_first", [True, False], ids=["after-an-invocation", "at-once"])
def test_without_the_zygote_environments_start_cold(runtime, tmp_path, invoked_first):
    runtime.register(_function(tmp_path, "alpha", {"FLAVOUR": "mint"}))
    first = _invoke(runtime, "alpha") if invoked_first else None
    zygote = runtime._zygote
    assert zygote is not None
    os.kill(zygote.process.pid, signal.SIGKILL)  # at once: most likely before it has forked anything
    zygote.process.wait(timeout=30)
    with zygote.changed:
        assert zygote.changed.wait_for(lambda: zygote.gone, timeout=30)
    second = _invoke(runtime, "alpha")  # what it forked or was asked for is retired; a cold environment serves
    assert second["flavour"] == "mint" and (first is None or second["pid"] != first["pid"])
    assert (runtime.started_warm, runtime.started_cold) == (1, 1)


def test_a_zygote_that_cannot_start_leaves_the_environments_cold(runtime, tmp_path, monkeypatch):
    monkeypatch.setattr(lambda_launcher, "ZYGOTE", tmp_path / "no-such-zygote.py")  # its interpreter exits at once
    runtime.register(_function(tmp_path, "alpha", {"FLAVOUR": "mint"}))
    assert _invoke(runtime, "alpha")["flavour"] == "mint"
    assert runtime.started_cold == 1


def test_closing_the_runtime_ends_the_zygote_and_its_environments(runtime, tmp_path):
    runtime.register(_function(tmp_path, "alpha", {}))
    pid = _invoke(runtime, "alpha")["pid"]
    zygote = runtime._zygote
    assert zygote is not None
    runtime.close()
    assert zygote.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
