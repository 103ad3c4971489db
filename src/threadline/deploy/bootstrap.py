"""The bootstrap template: what must exist before the job images can be built and pushed.

The job definitions of template.yaml name their images by digest, so the images
must be pushed before the stack is deployed whole; but the repositories they are
pushed to, and the CodeBuild project that can build them, are resources of that
same stack. On a first deploy the stack is therefore created from this subset
of template.yaml (the same logical ids and properties, and whatever they refer
to), the images are pushed, and `sam deploy` then updates the stack to the whole
template, which leaves these resources as they are.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..twin.template import load_yaml
from .errors import DeployError

BOOTSTRAP_RESOURCES = ("PreprocessRepository", "AnalysisRepository", "PostprocessRepository",
                       "ImageSourceBucket", "ImageSourceBucketPolicy", "ImageBuildProject")
_SUB_NAME = re.compile(r"\$\{(?!!)([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def _names(node: Any) -> tuple[set[str], set[str]]:
    """(names referred to by Ref/GetAtt/Sub, condition names) anywhere under `node`."""
    names: set[str] = set()
    conditions: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            if key == "Ref" and isinstance(value, str):
                names.add(value)
            elif key == "Fn::GetAtt":
                names.add(value[0] if isinstance(value, list) else str(value).split(".", 1)[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                local = set() if isinstance(value, str) else set(value[1])
                names.update(set(_SUB_NAME.findall(text)) - local)
            elif key == "Fn::If":
                conditions.add(value[0])
            elif key == "Condition" and isinstance(value, str):
                conditions.add(value)
            stack.append(value)
    return names, conditions


def bootstrap_template(template_path: Path) -> dict[str, Any]:
    """The closure of BOOTSTRAP_RESOURCES in the template, as a plain CloudFormation template."""
    template = load_yaml(template_path)
    resources, parameters = template["Resources"], template.get("Parameters", {})
    all_conditions = template.get("Conditions", {})
    wanted: dict[str, Any] = {}
    wanted_parameters: dict[str, Any] = {}
    wanted_conditions: dict[str, Any] = {}
    pending: list[tuple[str, Any]] = [("resource", name) for name in BOOTSTRAP_RESOURCES]
    while pending:
        kind, name = pending.pop()
        if kind == "condition":
            if name not in wanted_conditions:
                wanted_conditions[name] = all_conditions[name]
                refs, conditions = _names(all_conditions[name])
                pending += [("name", ref) for ref in refs] + [("condition", c) for c in conditions]
            continue
        if name in resources and name not in wanted:
            resource = resources[name]
            wanted[name] = resource
            depends = resource.get("DependsOn", [])
            refs, conditions = _names({k: v for k, v in resource.items() if k != "Metadata"})
            pending += [("name", ref) for ref in refs | set([depends] if isinstance(depends, str) else depends)]
            pending += [("condition", c) for c in conditions]
        elif name in parameters:
            wanted_parameters[name] = parameters[name]
    outputs = {name: output for name, output in template.get("Outputs", {}).items()
               if _names(output)[0] <= set(wanted) | set(wanted_parameters) and not _names(output)[1]}
    serverless = sorted(name for name, res in wanted.items() if res["Type"].startswith("AWS::Serverless::"))
    if serverless:
        raise DeployError(f"bootstrap resources refer to SAM resources {serverless}: keep them plain CloudFormation")
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{template.get('Description', '').strip()} (bootstrap: image repositories and builds)",
        "Parameters": wanted_parameters,
        "Conditions": wanted_conditions,
        "Resources": wanted,
        "Outputs": outputs,
    }


def bootstrap_body(template_path: Path) -> str:
    """The bootstrap template as CloudFormation JSON."""
    return json.dumps(bootstrap_template(template_path), indent=1, sort_keys=True)
