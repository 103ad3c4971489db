"""moto's speed-ups change what calls cost, never what they answer."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from threadline.twin import moto_speedups

ROOT = Path(__file__).resolve().parents[2]


class Sent(Exception):
    """The hook saw the request."""


@pytest.fixture(autouse=True)
def installed():
    moto_speedups.install()
    yield
    moto_speedups.hook_interpreter_clients([])


def test_each_parse_gives_fresh_components_from_one_tree_and_a_bad_definition_still_fails():
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    definition = (ROOT / "statemachines" / "pipeline.asl.json").read_text(encoding="utf-8")
    first_program, first_tree = AmazonStateLanguageParser.parse(definition)
    second_program, second_tree = AmazonStateLanguageParser.parse(definition)
    assert first_tree is second_tree
    assert first_program is not second_program  # an execution's state lives in its components
    assert first_program.start_at.start_at_name == second_program.start_at.start_at_name == \
        json.loads(definition)["StartAt"]

    for _ in range(2):  # a failed parse is not remembered as a success
        with pytest.raises(ASLParserException):
            AmazonStateLanguageParser.parse('{"StartAt": "Missing", "States": {"Done": {"Type": "Nope"}}}')


def test_the_module_list_is_moto_own():
    import moto
    import moto.backends

    folder = Path(moto.__file__).parent
    expected = sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("__"))
    assert list(moto.backends.list_of_moto_modules()) == expected


def test_an_error_s_service_is_named_as_a_new_botocore_session_names_it():
    import botocore.session
    import moto.core.utils
    from moto.applicationautoscaling.exceptions import AWSValidationException
    from moto.core.errors import get_exception_service_model

    services = botocore.session.Session().get_available_services()
    for name in services:
        assert moto.core.utils.service_name_from_moto_package_name(name.replace("-", "")) == name
    assert moto.core.utils.service_name_from_moto_package_name("notaservice") == "notaservice"
    assert get_exception_service_model(AWSValidationException("bad")).service_name == "application-autoscaling"


class _Job:
    """A value that is not a plain dict: its members are attributes under snake_case names."""

    def __init__(self) -> None:
        self.job_id, self.job_name, self.status = "j-1", "preprocess", "RUNNING"
        self.created_at = 1764561171884


ANSWERS = [  # (service, operation, a result as moto's responses hand it to the serializer)
    ("stepfunctions", "GetExecutionHistory", {"events": [
        {"timestamp": "2026-12-01T04:52:51.884Z", "type": "ExecutionStarted", "id": 1, "previousEventId": 0,
         "executionStartedEventDetails": {"input": '{"run_id": "r-1"}', "inputDetails": {"truncated": False},
                                          "roleArn": "arn:aws:iam::123456789012:role/r"}},
        {"timestamp": datetime(2026, 12, 1, 4, 52, 52, tzinfo=UTC), "type": "TaskStateEntered", "id": 2,
         "previous_event_id": 1,  # found through the picker's snake_case alias
         "stateEnteredEventDetails": {"name": "Preprocess", "input": "{}", "inputDetails": None}},
        {"timestamp": "2026-12-01T04:52:53.5Z", "type": "TaskFailed", "id": 3, "previousEventId": 2,
         "taskFailedEventDetails": {"resourceType": "batch", "resource": "submitJob.sync", "error": "States.Timeout",
                                    "cause": None}, "unmodelled": "left out"},
    ], "nextToken": "3"}),
    ("batch", "DescribeJobs", {"jobs": [
        {"jobArn": "arn:aws:batch:us-east-1:123456789012:job/j-2", "jobName": "analysis", "job_id": "j-2",
         "jobQueue": "q", "status": "SUCCEEDED", "startedAt": 1764561171884, "jobDefinition": "d",
         "container": {"exitCode": 0, "command": ["python", "-m", "analysis"], "log_stream_name": "s"},
         "attempts": [{"container": {"exitCode": 0}, "startedAt": 1, "stoppedAt": 2, "statusReason": "ok"}]},
        _Job(),
    ]}),
    ("dynamodb", "GetItem", {"Item": {"run_id": {"S": "r-1"}, "steps": {"L": [{"M": {"n": {"N": "1"}}}]},
                                      "blob": {"B": b"\x00\x01"}, "done": {"BOOL": True}}}),
    ("s3", "ListObjectsV2", {"Name": "b", "Prefix": "runs/", "KeyCount": 1, "MaxKeys": 1000, "IsTruncated": False,
                             "Contents": [{"Key": "runs/r-1/report.html", "Size": 10, "ETag": '"e"',
                                           "LastModified": datetime(2026, 12, 1, tzinfo=UTC),
                                           "StorageClass": "STANDARD"}]}),
    ("iam", "ListRoles", {"Roles": [{"RoleName": "r", "Path": "/", "RoleId": "AROA1", "Arn": "arn:aws:iam::1:role/r",
                                     "CreateDate": datetime(2026, 12, 1, tzinfo=UTC),
                                     "assume_role_policy_document": "{}"}], "IsTruncated": False}),
]


@pytest.mark.parametrize(("service", "operation", "result"), ANSWERS, ids=[a[1] for a in ANSWERS])
def test_an_answer_serializes_byte_for_byte_as_through_moto_s_attribute_picker(service, operation, result):
    from moto.core.serialize import AttributePickerContext, XFormedAttributePicker, get_serializer_class
    from moto.core.utils import get_service_model

    model = get_service_model(service)
    serializer = get_serializer_class(service, model.protocol)

    class ThroughThePicker(serializer):  # type: ignore[misc, valid-type]
        def get_value(self, value, key, shape):  # moto's own, as it was before the speed-up
            return self._value_picker(AttributePickerContext(
                obj=value, key=key, shape=shape, operation_model=self.operation_model,
                service_model=self.operation_model.service_model, key_path=".".join(self.path)))

    def body(cls):
        return cls(operation_model=model.operation_model(operation), value_picker=XFormedAttributePicker()).serialize(
            result)["body"]

    for _ in range(2):  # the second time from the kept keys
        assert body(serializer) == body(ThroughThePicker)
    assert "left out" not in body(serializer)


@pytest.mark.parametrize("text", ["2026-12-01T04:52:51.884Z", "2026-12-01T04:52:53.5Z", "2026-12-01T04:52:53Z",
                                  "2026-12-01T04:52:53.123456Z", "2028-02-29T00:00:00Z", "2026-12-01 04:52:53",
                                  "2026-12-01T04:52:53+02:00", "1764561171.884", "1764561171"])
def test_a_timestamp_moto_keeps_as_text_is_the_instant_botocore_reads(text):
    from botocore.utils import parse_to_aware_datetime
    from moto.core import serialize

    ours, botocore_s = serialize.parse_to_aware_datetime(text), parse_to_aware_datetime(text)
    assert ours == botocore_s and ours.utcoffset() == botocore_s.utcoffset()
    for kind in ("unixtimestamp", "iso8601", "rfc822"):
        converter = serialize.TimestampSerializer(kind)._convert_timestamp_to_str
        assert converter(text, kind) == converter(botocore_s, kind)


def test_a_timestamp_that_names_no_day_fails_as_botocore_fails():
    from botocore.utils import parse_to_aware_datetime
    from moto.core import serialize

    for parse in (serialize.parse_to_aware_datetime, parse_to_aware_datetime):
        with pytest.raises(ValueError):
            parse("2026-02-29T00:00:00Z")


def test_interpreter_clients_are_made_once_per_endpoint_with_the_twins_hooks(monkeypatch):
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_batch
    from moto.stepfunctions.parser.asl.utils import boto_client

    seen: list[str] = []

    def hook(request, **kwargs):
        seen.append(request.url)
        raise Sent

    moto_speedups.hook_interpreter_clients([("before-send", hook)])
    monkeypatch.setitem(os.environ, "MOTO_PORT", "5123")
    batch = boto_client.boto_client_for(region="us-east-1", service="batch")
    assert state_task_service_batch.boto_client_for(region="us-east-1", service="batch") is batch
    assert boto_client.boto_client_for(region="us-east-1", service="sqs") is not batch
    assert batch.meta.endpoint_url == "http://localhost:5123"
    with pytest.raises(Sent):  # the twin's transport takes the call before any socket
        batch.describe_jobs(jobs=["job-1"])
    assert seen and seen[0].startswith("http://localhost:5123/")

    monkeypatch.setitem(os.environ, "MOTO_PORT", "5124")  # another twin's server
    assert boto_client.boto_client_for(region="us-east-1", service="batch").meta.endpoint_url == \
        "http://localhost:5124"
    moto_speedups.hook_interpreter_clients([])
    assert boto_client.boto_client_for(region="us-east-1", service="sqs").meta.endpoint_url == \
        "http://localhost:5124"


def _inner_nodes(tree):
    from antlr4.tree.Tree import TerminalNode

    stack, found = [tree], []
    while stack:
        node = stack.pop()
        if not isinstance(node, TerminalNode):
            found.append(node)
            stack.extend(node.children or ())
    return found


def _joined(node) -> str:
    """A node's text as ANTLR joins it from its leaves."""
    from antlr4.tree.Tree import TerminalNode

    return "".join(child.getText() if isinstance(child, TerminalNode) else _joined(child)
                   for child in (node.children or ()))


def test_a_kept_tree_answers_each_node_s_text_as_antlr_joins_it_and_other_trees_are_untouched():
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    definition = (ROOT / "statemachines" / "pipeline.asl.json").read_text(encoding="utf-8")
    _, tree = AmazonStateLanguageParser.parse(definition)
    nodes = _inner_nodes(tree)
    assert len(nodes) > 1000
    assert all(node.getText() == _joined(node) for node in nodes)

    from antlr4 import CommonTokenStream, InputStream
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser

    fresh = _inner_nodes(ASLParser(CommonTokenStream(ASLLexer(InputStream(definition)))).state_machine())  # not kept
    assert all("_threadline_text" not in vars(node) for node in fresh)
    assert [node.getText() for node in fresh] == [node.getText() for node in nodes]


def test_state_properties_land_under_the_unique_type_moto_would_pick_and_end_with_next_still_fails():
    from moto.stepfunctions.parser.asl.component.state import state_props
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    definition = json.loads((ROOT / "statemachines" / "pipeline.asl.json").read_text(encoding="utf-8"))
    program, _ = AmazonStateLanguageParser.parse(json.dumps(definition))
    task = program.states.states["Preprocess"]
    assert task.resource is not None and task.parargs is not None  # Resource and Parameters, unique types
    for unique in state_props.UNIQUE_SUBINSTANCES:
        assert not any(issubclass(unique, other) for other in state_props.UNIQUE_SUBINSTANCES if other is not unique)

    both = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B", "End": True}, "B": {"Type": "Succeed"}}}
    with pytest.raises((ASLParserException, ValueError), match="redefines"):
        AmazonStateLanguageParser.parse(json.dumps(both))


def test_a_kms_key_gets_its_private_key_at_first_use_and_signs_and_verifies_with_it(monkeypatch):
    import boto3
    from moto import mock_aws

    made: list[str] = []
    own = moto_speedups._PrivateKeyOnFirstUse.__init__

    def counting(self, make, key_spec):
        own(self, lambda spec: made.append(spec) or make(spec), key_spec)

    monkeypatch.setattr(moto_speedups._PrivateKeyOnFirstUse, "__init__", counting)
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
        signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        assert made == []  # no key made at creation
        blob = kms.encrypt(KeyId=symmetric, Plaintext=b"secret")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
        assert made == []  # symmetric use needs none
        signature = kms.sign(KeyId=signing, Message=b"report", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
        assert made == ["ECC_NIST_P256"]
        assert kms.verify(KeyId=signing, Message=b"report", Signature=signature,
                          SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]
        assert not kms.verify(KeyId=signing, Message=b"forged", Signature=signature,
                              SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]
        assert kms.get_public_key(KeyId=signing)["PublicKey"]
        assert made == ["ECC_NIST_P256"]  # made once


def test_a_jsonpath_is_parsed_once_and_answers_every_document_and_a_bad_one_still_fails():
    import jsonpath_ng.ext
    from jsonpath_ng.exceptions import JsonPathParserError
    from moto.events.utils import EventTemplateParser
    from moto.stepfunctions.parser.asl.utils.json_path import extract_json

    assert jsonpath_ng.ext.parse("$.detail.status") is jsonpath_ng.ext.parse("$.detail.status")
    assert extract_json("$.detail.status", {"detail": {"status": "RUNNING"}}) == "RUNNING"
    assert extract_json("$.detail.status", {"detail": {"status": "SUCCEEDED"}}) == "SUCCEEDED"  # not the first one
    transformed = EventTemplateParser.parse(input_template='{"queue": "<queue>", "status": "<status>"}',
                                            input_paths_map={"queue": "$.detail.jobQueue", "status": "$.detail.status"},
                                            event={"detail": {"jobQueue": "gpu", "status": "FAILED"},
                                                   "ingestion-time": "2026-11-30T00:00:00Z"})
    assert transformed == {"queue": "gpu", "status": "FAILED"}
    for _ in range(2):  # a failed parse is not remembered as a success
        with pytest.raises(JsonPathParserError):
            jsonpath_ng.ext.parse("$.[[")


OFFERINGS_CHECK = """
import json, os, sys
from threadline.twin import moto_speedups
moto_speedups.install()
import moto
from moto.ec2.models import instance_types
from moto.utilities.utils import load_resource

folder = os.path.join(os.path.dirname(moto.__file__), "ec2", "resources", "instance_type_offerings")
offerings = instance_types.INSTANCE_TYPE_OFFERINGS
report = {"location_types": sorted(offerings) == sorted(os.listdir(folder)), "unread_at_first": {}, "same": True}
for location_type in sorted(os.listdir(folder)):
    lazy = offerings[location_type]
    files = sorted(os.listdir(os.path.join(folder, location_type)))
    report["unread_at_first"][location_type] = dict.__len__(lazy)
    regions = sorted(name.split(".")[0] for name in files)
    report["same"] &= len(lazy) == len(regions) and "us-east-1" in lazy and "nowhere-1" not in lazy
    report["same"] &= lazy.get("nowhere-1", "absent") == "absent"
    for name in files:
        expected = load_resource(f"ec2/resources/instance_type_offerings/{location_type}/{name}")
        for offering in expected:
            offering["LocationType"] = location_type
        report["same"] &= lazy.get(name.split(".")[0]) == expected
    report["same"] &= sorted(lazy) == regions and sorted(dict(lazy.items())) == regions
print(json.dumps(report))
"""


def test_instance_type_offerings_are_read_at_first_use_with_moto_s_data():
    """In a fresh interpreter: moto's EC2 imports without reading them, and each region answers as the file says."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", OFFERINGS_CHECK], capture_output=True, text=True, check=True,
                         cwd=ROOT, timeout=120).stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert report["location_types"]
    assert report["unread_at_first"] and set(report["unread_at_first"].values()) == {0}
    assert report["same"]


def test_a_response_class_s_methods_are_listed_once_and_a_method_added_later_is_listed():
    import moto.core.responses as responses

    class Answers(responses.BaseResponse):
        def first_action(self) -> str:
            return "first"

    names = responses.method_names_from_class(Answers)
    assert "first_action" in names and "second_action" not in names
    assert responses.method_names_from_class(Answers) is names  # listed once

    def second_action(self: Answers) -> str:
        return "second"

    Answers.second_action = second_action  # type: ignore[attr-defined]
    assert "second_action" in responses.method_names_from_class(Answers)


def test_each_intrinsic_parse_gives_a_fresh_function_from_one_tree_that_reads_as_antlr_reads_it():
    from antlr4 import CommonTokenStream, InputStream
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLIntrinsicLexer import ASLIntrinsicLexer
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLIntrinsicParser import ASLIntrinsicParser
    from moto.stepfunctions.parser.asl.parse.intrinsic.intrinsic_parser import IntrinsicParser

    text = "States.Format('run {} of {}', $.run_id, States.ArrayLength($.steps))"
    first_function, first_tree = IntrinsicParser.parse(text)
    second_function, second_tree = IntrinsicParser.parse(text)
    assert first_tree is second_tree
    assert first_function is not second_function  # built afresh for every execution
    assert type(first_function) is type(second_function)
    fresh_tree = ASLIntrinsicParser(CommonTokenStream(ASLIntrinsicLexer(InputStream(text)))).func_decl()
    assert _inner_nodes(first_tree) and [_joined(node) for node in _inner_nodes(first_tree)] == \
        [node.getText() for node in _inner_nodes(first_tree)] == [_joined(node) for node in _inner_nodes(fresh_tree)]
