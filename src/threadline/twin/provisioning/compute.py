"""Lambda functions, layers, event source mappings and EventInvokeConfig.

The functions run from their local folders in the twin's Lambda runtime; the twin's Lambda
API gets a placeholder zip.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..lambda_async import AsyncConfig
from ..lambda_runtime import FunctionSpec
from ..template import TemplateError
from .core import Provisioner, handles


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "code runs from the local folder in the threadline twin\n")
    return buffer.getvalue()


@handles("AWS::Lambda::LayerVersion")
def _layer(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("LayerName") or f"{p.stack_name}-{logical_id}"
    layer = p.client("lambda").publish_layer_version(
        LayerName=name, Content={"ZipFile": _dummy_zip()},
        CompatibleRuntimes=props.get("CompatibleRuntimes", []))
    arn = layer["LayerVersionArn"]
    p.lambda_runtime_layers[arn] = p.artifacts.layer_dirs[_sam_source(logical_id, p.artifacts.layer_dirs)]
    return arn, {}


def _sam_source(logical_id: str, known: dict[str, Path]) -> str:
    """SAM adds a hash suffix to layer logical ids (CommonLayer -> CommonLayer1a2b3c)."""
    if logical_id in known:
        return logical_id
    for candidate in known:
        if logical_id.startswith(candidate):
            return candidate
    raise TemplateError(f"no local ContentUri folder for {logical_id}")


@handles("AWS::Lambda::Function")
def _function(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("FunctionName") or f"{p.stack_name}-{logical_id}"
    environment = props.get("Environment", {}).get("Variables", {})
    function = p.client("lambda").create_function(
        FunctionName=name, Runtime=props.get("Runtime", "python3.13"), Role=props["Role"],
        Handler=props["Handler"], Code={"ZipFile": _dummy_zip()},
        Timeout=int(props.get("Timeout", 3)), MemorySize=int(props.get("MemorySize", 128)),
        Environment={"Variables": {k: str(v) for k, v in environment.items()}},
    )
    code_dir = p.artifacts.code_dirs.get(logical_id)
    if code_dir is None:
        raise TemplateError(f"{logical_id} has no local CodeUri folder")
    p.lambda_runtime.register(FunctionSpec(
        logical_id=logical_id, name=name, arn=function["FunctionArn"], code_dir=code_dir,
        handler=props["Handler"], layer_dirs=[p.lambda_runtime_layers[arn] for arn in props.get("Layers", [])],
        environment={k: str(v) for k, v in environment.items()},
        timeout=int(props.get("Timeout", 3)), memory_size=int(props.get("MemorySize", 128)),
        async_config=AsyncConfig(dead_letter_arn=props.get("DeadLetterConfig", {}).get("TargetArn")),
    ))
    return name, {"Arn": function["FunctionArn"]}


@handles("AWS::Lambda::EventInvokeConfig")
def _event_invoke_config(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    """Async retries and the on-failure destination, applied by the twin's AsyncInvoker."""
    spec = p.lambda_runtime.find(str(props["FunctionName"]))
    on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    if on_failure and ":sqs:" not in on_failure:
        raise TemplateError(f"{logical_id}: the twin delivers on-failure destinations to SQS queues only")
    spec.async_config = replace(spec.async_config, on_failure_arn=on_failure,
                                maximum_retry_attempts=int(props.get("MaximumRetryAttempts", 2)))
    return f"{spec.name}:{props.get('Qualifier', '$LATEST')}", {}


@handles("AWS::Lambda::EventSourceMapping")
def _event_source_mapping(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    """Recorded in the twin's Lambda API; the twin's poller (event_sources.py) delivers from it."""
    args: dict[str, Any] = {"EventSourceArn": props["EventSourceArn"], "FunctionName": props["FunctionName"],
                            "Enabled": bool(props.get("Enabled", True))}
    for key in ("BatchSize", "MaximumBatchingWindowInSeconds"):
        if key in props:
            args[key] = int(props[key])
    for key in ("FunctionResponseTypes", "ScalingConfig", "FilterCriteria"):
        if key in props:
            args[key] = props[key]
    if "MaximumConcurrency" in args.get("ScalingConfig", {}):
        args["ScalingConfig"] = {"MaximumConcurrency": int(args["ScalingConfig"]["MaximumConcurrency"])}
    mapping = p.client("lambda").create_event_source_mapping(**args)
    return mapping["UUID"], {"Id": mapping["UUID"], "EventSourceMappingArn": mapping.get("EventSourceMappingArn")}
