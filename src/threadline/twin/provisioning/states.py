"""Step Functions state machines, with DefinitionSubstitutions applied."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from ..template import TemplateError
from .core import Provisioner, _lower_keys, handles
from .definitions import create_checked_once, warm


@handles("AWS::StepFunctions::StateMachine")
def _state_machine(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("StateMachineName") or f"{p.stack_name}-{logical_id}"
    if "DefinitionString" in props:
        definition = props["DefinitionString"]
    elif "Definition" in props:
        definition = json.dumps(props["Definition"])
    else:
        path = p.artifacts.definitions.get(logical_id)
        if path is None:
            raise TemplateError(f"{logical_id} has no local definition file")
        definition = path.read_text(encoding="utf-8")
    definition = substitute_definition(definition, props.get("DefinitionSubstitutions", {}), logical_id)
    args: dict[str, Any] = {"name": name, "definition": definition, "roleArn": props["RoleArn"],
                            "type": props.get("StateMachineType", "STANDARD")}
    if "LoggingConfiguration" in props:
        args["loggingConfiguration"] = _lower_keys(props["LoggingConfiguration"])
    if "TracingConfiguration" in props:
        args["tracingConfiguration"] = _lower_keys(props["TracingConfiguration"])
    arn, unparsed = create_checked_once(p.client("stepfunctions"), args)
    if unparsed:
        p.warm_ups.append(functools.partial(warm, definition))
    return arn, {"Arn": arn, "Name": name}


_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def substitute_definition(definition: str, substitutions: dict[str, Any], logical_id: str) -> str:
    """Apply DefinitionSubstitutions as CloudFormation does; a missing key is an error."""
    missing = sorted(set(_SUBSTITUTION.findall(definition)) - set(substitutions))
    if missing:
        raise TemplateError(f"{logical_id}: no DefinitionSubstitutions for {missing}")
    return _SUBSTITUTION.sub(lambda m: str(substitutions[m.group(1)]), definition)
