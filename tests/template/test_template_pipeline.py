"""Functions, layer, state machine, Neptune, alarms, parameters and outputs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

SUBSTITUTION_KEYS = {
    "LineageQueueUrl", "PlanResumeFunctionArn", "NotifySlackFunctionArn", "RunTableName",
    "SpotJobQueueArn", "OnDemandJobQueueArn", "GpuJobQueueArn", "GpuFallbackJobQueueArn",
    "PreprocessJobDefinitionArn", "AnalysisJobDefinitionArn", "PostprocessJobDefinitionArn",
    "IntermediateBucketName", "ResultsBucketName", "QuarantineBucketName",
    "MaxRejectShare", "Scenarios", "HorizonDays", "Seed", "AnalysisNodes",
    "JobTaskTimeoutSeconds", "AnalysisTaskTimeoutSeconds",
}
PARAMETER_DEFAULTS = {
    "Environment": None, "IncomingPrefix": "incoming/", "VpcId": None, "PrivateSubnetIds": None,
    "ExistingNeptuneEndpoint": "", "NeptunePort": 8182, "SlackWebhookUrl": "",
    "AnalysisNodes": 2, "AnalysisGpusPerNode": 1, "ImageTag": "latest", "MaxRejectShare": "0.05",
    "Scenarios": 20000, "HorizonDays": 10, "Seed": 20261121,
}
FUNCTIONS = {
    "StartRunFunction": ("functions/start_run/", {"STATE_MACHINE_ARN", "INCOMING_PREFIX", "MAX_INPUT_BYTES",
                                                  "TEAMS", "DEFAULT_TEAM"}),
    "RecordLineageFunction": ("functions/record_lineage/", {"NEPTUNE_ENDPOINT", "NEPTUNE_PORT", "PIPELINE_NAME",
                                                            "OPENLINEAGE_URL", "OPENLINEAGE_API_KEY_SECRET_ARN",
                                                            "RUN_TABLE", "INTERMEDIATE_BUCKET", "SPOT_PRICE_LOOKUP"}),
    "NotifySlackFunction": ("functions/notify_slack/", {"SLACK_WEBHOOK_SECRET_ARN", "PIPELINE_NAME"}),
    "FinaliseRunFunction": ("functions/finalise_run/", {"RUN_TABLE", "LINEAGE_QUEUE_URL", "NOTIFY_SLACK_FUNCTION"}),
    "BatchMetricsFunction": ("functions/batch_metrics/", {"JOB_QUEUES"}),
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement, those of a conditional policy (`Fn::If` [condition, policy, AWS::NoValue]) included."""
    policies = [p["Fn::If"][1] if "Fn::If" in p else p for p in _as_list(resource["Properties"]["Policies"])]
    return [s for policy in policies for s in policy["Statement"]]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements if s["Effect"] == "Allow" for a in _as_list(s["Action"])}


def _resources_for(statements: list[dict[str, Any]], action: str) -> list[Any]:
    return [
        r for s in statements if s["Effect"] == "Allow" and action in _as_list(s["Action"])
        for r in _as_list(s["Resource"])
    ]


def test_transform_and_globals(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    function = template["Globals"]["Function"]
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] in (["arm64"], ["x86_64"])
    assert function["Tracing"] == "Active"
    assert int(function["Timeout"]) > 0 and int(function["MemorySize"]) >= 128
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"} <= set(function["Environment"]["Variables"])


def test_parameters_and_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert set(PARAMETER_DEFAULTS) <= set(parameters)
    for name, default in PARAMETER_DEFAULTS.items():
        if default is not None:
            assert str(parameters[name]["Default"]) == str(default), name
    assert parameters["Environment"]["AllowedValues"] == ["dev", "prod"]
    assert parameters["VpcId"]["Type"] == "AWS::EC2::VPC::Id"
    assert parameters["PrivateSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert parameters["SlackWebhookUrl"]["NoEcho"] is True
    for name, spec in parameters.items():
        if "Default" not in spec:
            assert name in ("VpcId", "PrivateSubnetIds"), f"{name} needs a default (the twin fills only some)"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_code_layer_and_environment(resources: dict[str, Any], name: str) -> None:
    code_uri, variables = FUNCTIONS[name]
    props = resources[name]["Properties"]
    assert resources[name]["Type"] == "AWS::Serverless::Function"
    assert props["CodeUri"] == code_uri
    assert props["Handler"] == "app.handler"
    assert props["Layers"] == [{"Ref": "CommonLayer"}]
    assert set(props["Environment"]["Variables"]) == variables


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_logs_to_its_own_group_with_retention(resources: dict[str, Any], name: str) -> None:
    group = resources[name]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert resources[group]["Type"] == "AWS::Logs::LogGroup"
    retention = resources[group]["Properties"]["RetentionInDays"]
    assert retention == {"Fn::If": ["IsProd", 90, 14]}


def test_common_layer(resources: dict[str, Any]) -> None:
    layer = resources["CommonLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/common"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"  # layers/common/Makefile: packages plus bytecode


def test_start_run_listens_for_csv_objects(resources: dict[str, Any]) -> None:
    events = resources["StartRunFunction"]["Properties"]["Events"]
    assert len(events) == 1
    (event,) = events.values()
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "IncomingBucket"}]
    assert pattern["detail"]["object"]["key"] == [
        {"wildcard": {"Fn::Sub": "${IncomingPrefix}*.csv"}},
        {"wildcard": {"Fn::Sub": "${IncomingPrefix}*.csv.gz"}},
    ]


def test_start_run_permissions(resources: dict[str, Any]) -> None:
    function = resources["StartRunFunction"]
    assert function["Properties"]["Environment"]["Variables"]["STATE_MACHINE_ARN"] == {"Ref": "PipelineStateMachine"}
    statements = _statements(function)
    assert _resources_for(statements, "states:StartExecution") == [{"Ref": "PipelineStateMachine"}]
    assert _resources_for(statements, "s3:GetObject") == [{"Fn::Sub": "${IncomingBucket.Arn}/${IncomingPrefix}*"}]
    # A HEAD needs neither s3:ListBucket nor kms:Decrypt (functions/start_run/app.py, with_stored_key).
    assert _actions(statements) == {"states:StartExecution", "s3:GetObject", "s3:GetObjectVersion"}


def test_record_lineage_runs_in_the_vpc_and_reaches_neptune(resources: dict[str, Any]) -> None:
    props = resources["RecordLineageFunction"]["Properties"]
    assert props["VpcConfig"] == {"SecurityGroupIds": [{"Ref": "LambdaSecurityGroup"}],
                                  "SubnetIds": {"Ref": "PrivateSubnetIds"}}
    variables = props["Environment"]["Variables"]
    assert variables["NEPTUNE_ENDPOINT"] == {
        "Fn::If": ["CreateNeptune", {"Fn::GetAtt": ["NeptuneCluster", "Endpoint"]}, {"Ref": "ExistingNeptuneEndpoint"}]
    }
    assert variables["NEPTUNE_PORT"] == {"Ref": "NeptunePort"}
    statements = _statements(resources["RecordLineageFunction"])
    # Neptune, the lineage queue it consumes, and the run outputs it describes (tests/lineage/test_lineage_template.py).
    assert {"neptune-db:connect", "neptune-db:ReadDataViaQuery", "neptune-db:WriteDataViaQuery"} <= _actions(statements)
    (resource,) = _resources_for(statements, "neptune-db:connect")
    arn, values = resource["Fn::Sub"]
    assert arn.startswith("arn:${AWS::Partition}:neptune-db:${AWS::Region}:${AWS::AccountId}:") and arn.endswith("/*")
    assert "NeptuneCluster" in str(values) and "ClusterResourceId" in str(values)


def test_notify_slack_is_outside_the_vpc_and_reads_only_its_secret(resources: dict[str, Any]) -> None:
    props = resources["NotifySlackFunction"]["Properties"]
    assert "VpcConfig" not in props
    assert props["Environment"]["Variables"]["SLACK_WEBHOOK_SECRET_ARN"] == {"Ref": "SlackWebhookSecret"}
    statements = _statements(resources["NotifySlackFunction"])
    assert _resources_for(statements, "secretsmanager:GetSecretValue") == [{"Ref": "SlackWebhookSecret"}]
    assert _actions(statements) == {"secretsmanager:GetSecretValue", "kms:Decrypt"}
    sns = [e for e in props["Events"].values() if e["Type"] == "SNS"]
    assert [e["Properties"]["Topic"] for e in sns] == [{"Ref": "AlarmTopic"}]


def test_neptune_is_conditional_private_and_encrypted(resources: dict[str, Any], template: dict[str, Any]) -> None:
    assert template["Conditions"]["CreateNeptune"] == {"Fn::Equals": [{"Ref": "ExistingNeptuneEndpoint"}, ""]}
    for name in ("NeptuneSubnetGroup", "NeptuneSecurityGroup", "NeptuneCluster", "NeptuneInstance"):
        assert resources[name].get("Condition") == "CreateNeptune", name
    cluster = resources["NeptuneCluster"]["Properties"]
    assert cluster["IamAuthEnabled"] is True
    assert cluster["StorageEncrypted"] is True
    assert cluster["KmsKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert "ServerlessScalingConfiguration" in cluster
    assert resources["NeptuneInstance"]["Properties"]["DBInstanceClass"] == "db.serverless"
    assert resources["NeptuneSubnetGroup"]["Properties"]["SubnetIds"] == {"Ref": "PrivateSubnetIds"}
    ingress = resources["NeptuneSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert ingress == [
        {
            "Description": ingress[0].get("Description"),
            "IpProtocol": "tcp",
            "FromPort": {"Ref": "NeptunePort"},
            "ToPort": {"Ref": "NeptunePort"},
            "SourceSecurityGroupId": {"Ref": "LambdaSecurityGroup"},
        }
    ]


def test_state_machine_definition_and_observability(resources: dict[str, Any]) -> None:
    machine = resources["PipelineStateMachine"]
    assert machine["Type"] == "AWS::Serverless::StateMachine"
    props = machine["Properties"]
    assert props["Type"] == "STANDARD"
    assert props["DefinitionUri"] == "statemachines/pipeline.asl.json"
    assert set(props["DefinitionSubstitutions"]) == SUBSTITUTION_KEYS
    assert props["Tracing"] == {"Enabled": True}
    logging = props["Logging"]
    assert logging["Level"] == "ALL"
    assert isinstance(logging["IncludeExecutionData"], bool)
    (destination,) = logging["Destinations"]
    group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert int(resources[group]["Properties"]["RetentionInDays"]["Fn::If"][1]) > 0


def test_state_machine_permissions(resources: dict[str, Any]) -> None:
    statements = _statements(resources["PipelineStateMachine"])
    invoked = {str(r) for r in _resources_for(statements, "lambda:InvokeFunction")}
    assert str({"Fn::GetAtt": ["NotifySlackFunction", "Arn"]}) in invoked
    # Lineage events are queued, not invoked: a run never waits on Neptune.
    assert str({"Fn::GetAtt": ["RecordLineageFunction", "Arn"]}) not in invoked
    assert _resources_for(statements, "sqs:SendMessage") == [{"Fn::GetAtt": ["LineageQueue", "Arn"]}]
    assert _resources_for(statements, "dynamodb:PutItem") == [{"Fn::GetAtt": ["RunTable", "Arn"]}]
    assert _resources_for(statements, "dynamodb:UpdateItem") == [{"Fn::GetAtt": ["RunTable", "Arn"]}]
    submit = sorted(r["Ref"] for r in _resources_for(statements, "batch:SubmitJob"))
    assert submit == sorted(
        ["PreprocessJobDefinition", "AnalysisJobDefinition", "PostprocessJobDefinition",
         "SpotJobQueue", "OnDemandJobQueue", "GpuJobQueue", "GpuFallbackJobQueue"]
    )
    assert {"batch:DescribeJobs", "batch:TerminateJob"} <= _actions(statements)
    rule = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:"
                       "rule/StepFunctionsGetEventsForBatchJobsRule"}
    for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule"):
        assert _resources_for(statements, action) == [rule]
    assert {"logs:CreateLogDelivery", "logs:PutResourcePolicy", "logs:DescribeLogGroups"} <= _actions(statements)


@pytest.mark.parametrize("metric", ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"])
def test_execution_alarms(resources: dict[str, Any], metric: str) -> None:
    alarms = [
        r["Properties"] for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["MetricName"] == metric
    ]
    assert len(alarms) == 1
    assert alarms[0]["Namespace"] == "AWS/States"
    assert alarms[0]["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": "PipelineStateMachine"}}]
    assert alarms[0]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_function_error_alarms(resources: dict[str, Any], function: str) -> None:
    alarms = [
        r["Properties"] for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"]["MetricName"] == "Errors"
        and r["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    ]
    assert len(alarms) == 1
    assert alarms[0]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_outputs(template: dict[str, Any]) -> None:
    values = {str(o["Value"]) for o in template["Outputs"].values()}
    for name in ("IncomingBucket", "IntermediateBucket", "ResultsBucket", "QuarantineBucket",
                 "PipelineStateMachine", "RunTable", "AlarmTopic"):
        assert str({"Ref": name}) in values, f"no output for {name}"


def test_dashboard_body_is_json_once_substituted(resources: dict[str, Any]) -> None:
    body = resources["PipelineDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    metrics = {m[1] for w in widgets for m in w["properties"]["metrics"]}
    assert {"ExecutionsFailed", "Errors"} <= metrics
