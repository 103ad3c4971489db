"""Load `template.yaml`, translate SAM to CloudFormation, resolve intrinsics.

The twin provisions from the translated template rather than from a copy of it,
so a resource added to the template appears in the twin (or is named as
cloud-only by the provisioner).
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

LOCAL_ARTIFACT_BUCKET = "threadline-twin-artifacts"


class TemplateError(Exception):
    """The template cannot be loaded, translated or resolved."""


# libyaml's parser where PyYAML was built with it: template.yaml loads in a tenth of the time.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):  # type: ignore[valid-type,misc]  # a base chosen at import
    """YAML loader that understands CloudFormation short-form tags (!Ref, !Sub, ...)."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(cast(yaml.MappingNode, node), deep=True)  # YAML's third kind of node
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # safe: _CfnLoader is a SafeLoader subclass


@dataclass
class LocalArtifacts:
    """Local folders behind the template's CodeUri/ContentUri/DefinitionUri values."""

    code_dirs: dict[str, Path] = field(default_factory=dict)  # function logical id -> folder
    layer_dirs: dict[str, Path] = field(default_factory=dict)  # layer logical id -> folder
    definitions: dict[str, Path] = field(default_factory=dict)  # state machine logical id -> ASL file


class _NoManagedPolicies:
    """aws-sam-translator asks for AWS managed policy ARNs by name; the template names ARNs directly."""

    def load(self) -> dict[str, str]:
        return {}


def translate(sam_template: dict[str, Any], root: Path, region: str = "us-east-1",
              account_id: str = "123456789012") -> tuple[dict[str, Any], LocalArtifacts]:
    """Translate SAM to CloudFormation as `sam build` would, remembering local folders."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(sam_template)
    artifacts = LocalArtifacts()
    globals_function = template.get("Globals", {}).get("Function", {})
    for logical_id, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function":
            code_uri = props.get("CodeUri", globals_function.get("CodeUri"))
            if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
                artifacts.code_dirs[logical_id] = (root / code_uri).resolve()
                props["CodeUri"] = f"s3://{LOCAL_ARTIFACT_BUCKET}/{logical_id}.zip"
        elif kind == "AWS::Serverless::LayerVersion":
            content_uri = props.get("ContentUri")
            if isinstance(content_uri, str) and not content_uri.startswith("s3://"):
                artifacts.layer_dirs[logical_id] = (root / content_uri).resolve()
                props["ContentUri"] = f"s3://{LOCAL_ARTIFACT_BUCKET}/{logical_id}.zip"
        elif kind == "AWS::Serverless::StateMachine":
            definition_uri = props.get("DefinitionUri")
            if isinstance(definition_uri, str) and not definition_uri.startswith("s3://"):
                artifacts.definitions[logical_id] = (root / definition_uri).resolve()
                props["DefinitionUri"] = f"s3://{LOCAL_ARTIFACT_BUCKET}/{logical_id}.asl.json"
    try:
        translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region))
        cfn = translator.translate(template, parameter_values={"AWS::AccountId": account_id},
                                   get_managed_policy_map=_NoManagedPolicies().load)
    except Exception as exc:  # the translator raises several unrelated exception types
        raise TemplateError(f"aws-sam-translator rejected template.yaml: {exc}") from exc
    return cfn, artifacts


@dataclass
class Resolver:
    """Resolves CloudFormation intrinsic functions against provisioned values."""

    parameters: dict[str, Any]
    pseudo: dict[str, Any]
    conditions: dict[str, Any]
    refs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[tuple[str, str], Any] = field(default_factory=dict)
    attr_fallback: Callable[[str, str], Any] | None = None
    _condition_cache: dict[str, bool] = field(default_factory=dict)

    def condition(self, name: str) -> bool:
        if name not in self._condition_cache:
            if name not in self.conditions:
                raise TemplateError(f"unknown Condition {name!r}")
            self._condition_cache[name] = bool(self.resolve(self.conditions[name]))
        return self._condition_cache[name]

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(f"Ref to {name!r} before it was provisioned or defined")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        key = (logical_id, attribute)
        if key in self.attrs:
            return self.attrs[key]
        if self.attr_fallback is not None:
            value = self.attr_fallback(logical_id, attribute)
            if value is not None:
                return value
        raise TemplateError(f"GetAtt {logical_id}.{attribute} is not available in the twin")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, arg)
        out = {}
        for key, item in value.items():
            resolved = self.resolve(item)
            if resolved is not _NO_VALUE:
                out[key] = resolved
        return out


_NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def _sub(resolver: Resolver, arg: Any) -> str:
    if isinstance(arg, list):
        text, variables = arg[0], resolver.resolve(arg[1])
    else:
        text, variables = arg, {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name in variables:
            return str(variables[name])
        if "." in name and name.split(".", 1)[0] not in resolver.parameters:
            logical_id, attribute = name.split(".", 1)
            return str(resolver.get_att(logical_id, attribute))
        value = resolver.ref(name)
        return ",".join(value) if isinstance(value, list) else str(value)

    return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")


def _ref(resolver: Resolver, arg: Any) -> Any:
    if arg == "AWS::NoValue":
        return _NO_VALUE
    return resolver.ref(arg)


def _get_att(resolver: Resolver, arg: Any) -> Any:
    if isinstance(arg, str):
        arg = arg.split(".", 1)
    return resolver.get_att(arg[0], resolver.resolve(arg[1]))


def _if(resolver: Resolver, arg: Any) -> Any:
    name, when_true, when_false = arg
    return resolver.resolve(when_true if resolver.condition(name) else when_false)


def _join(resolver: Resolver, arg: Any) -> str:
    delimiter, items = arg
    items = resolver.resolve(items)
    return delimiter.join(str(item) for item in items)


def _select(resolver: Resolver, arg: Any) -> Any:
    index, items = resolver.resolve(arg[0]), resolver.resolve(arg[1])
    return items[int(index)]


def _split(resolver: Resolver, arg: Any) -> list[str]:
    delimiter, text = arg[0], resolver.resolve(arg[1])
    return str(text).split(delimiter)


def _equals(resolver: Resolver, arg: Any) -> bool:
    left, right = resolver.resolve(arg[0]), resolver.resolve(arg[1])
    return str(left) == str(right)


def _get_azs(resolver: Resolver, arg: Any) -> list[str]:
    region = resolver.pseudo["AWS::Region"]
    return [f"{region}a", f"{region}b", f"{region}c"]


_INTRINSICS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Ref": _ref,
    "Fn::Sub": _sub,
    "Fn::GetAtt": _get_att,
    "Fn::If": _if,
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::Equals": _equals,
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Fn::And": lambda r, a: all(r.resolve(item) for item in a),
    "Fn::Or": lambda r, a: any(r.resolve(item) for item in a),
    "Condition": lambda r, a: r.condition(a),
    "Fn::GetAZs": _get_azs,
    "Fn::Base64": lambda r, a: base64.b64encode(str(r.resolve(a)).encode("utf-8")).decode("ascii"),
}


def dependencies(resource: dict[str, Any]) -> set[str]:
    """Logical ids a resource refers to (Ref, GetAtt, Sub variables, DependsOn)."""
    found: set[str] = set()
    depends_on = resource.get("DependsOn", [])
    found.update([depends_on] if isinstance(depends_on, str) else depends_on)

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "Ref" and isinstance(item, str):
                    found.add(item)
                elif key == "Fn::GetAtt":
                    target = item.split(".", 1)[0] if isinstance(item, str) else item[0]
                    found.add(target)
                elif key == "Fn::Sub":
                    text = item[0] if isinstance(item, list) else item
                    for name in _SUB_VARIABLE.findall(text):
                        found.add(name.split(".", 1)[0].strip())
                    if isinstance(item, list):
                        walk(item[1])
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(resource.get("Properties", {}))
    return found


def creation_order(resources: dict[str, Any]) -> list[str]:
    """Topological order of resources, as CloudFormation creates them."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(logical_id: str, chain: tuple[str, ...]) -> None:
        if state.get(logical_id) == 2:
            return
        if state.get(logical_id) == 1:
            raise TemplateError(f"circular dependency: {' -> '.join(chain + (logical_id,))}")
        state[logical_id] = 1
        for dep in sorted(dependencies(resources[logical_id])):
            if dep in resources:
                visit(dep, chain + (logical_id,))
        state[logical_id] = 2
        order.append(logical_id)

    for logical_id in resources:
        visit(logical_id, ())
    return order
