"""Small scenarios that show each moto gap, each run in a fresh process.

`python tests/twin/moto_gap_scenarios.py SCENARIO [--without-fix]` prints one
JSON line. A fresh process is needed because the fixes patch moto globally;
`moto_gap_runner.py` forks one per scenario from a process that ran `preload()`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from threadline.twin import moto_fixes
from threadline.twin.batch_runtime import LocalBatchRuntime, QueueSpec
from threadline.twin.faults import FaultPlan
from threadline.twin.lambda_runtime import FunctionSpec, LocalLambdaRuntime
from threadline.twin.server import _shared_loader, free_port

REGION = "us-east-1"
MOTO_SETTINGS = {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}  # no scenario runs instances from an AMI
POLL_S = 0.05  # between looks at something awaited: often enough to see it soon, rarely enough to cost little CPU
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


class Scene:
    def __init__(self, skip: tuple[str, ...]) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        self.tmp = Path(tempfile.mkdtemp())
        port = free_port()
        os.environ["MOTO_PORT"] = str(port)
        os.environ.update(MOTO_SETTINGS)
        _shared_loader()
        self.url = f"http://127.0.0.1:{port}"
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.server.start()
        from moto.moto_api._internal.models import moto_api_backend
        moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})  # as /moto-api/config does
        self.session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                     region_name=REGION)
        env = {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
        self.faults = FaultPlan()
        # The scenes' handlers import nothing heavy: fresh interpreters start them sooner than a warm parent
        # importing the functions' libraries would.
        self.lambdas = LocalLambdaRuntime(env, self.tmp / "lambda-logs", self.faults, region=REGION, warm_start=False)
        self.batch = LocalBatchRuntime(self.tmp, env, self.tmp / "batch-logs", self.faults)
        self.lambdas.enable_async(self.send_to_queue)
        moto_fixes.apply(self.lambdas, self.batch, skip=skip)
        self.clients: dict[str, Any] = {}
        self.role = self.client("iam").create_role(RoleName="scene", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]

    def client(self, service: str) -> Any:
        """One client per service (botocore clients are thread-safe; making one costs milliseconds)."""
        if service not in self.clients:
            self.clients[service] = self.session.client(service, endpoint_url=self.url)
        return self.clients[service]

    def send_to_queue(self, queue_arn: str, body: str, attributes: dict) -> None:
        """Where async invocations dead-letter: the SQS queue named by the ARN's last part."""
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=body, **({"MessageAttributes": attributes} if attributes else {}))

    def job_queue(self, name: str = "queue", time_limit_actions: list | None = None) -> str:
        batch = self.client("batch")
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName=f"sg-{name}", Description="d", VpcId=vpc)["GroupId"]
        profile = self.client("iam").create_instance_profile(InstanceProfileName=f"p-{name}")["InstanceProfile"]["Arn"]
        environment = batch.create_compute_environment(
            computeEnvironmentName=f"ce-{name}", type="MANAGED", serviceRole=self.role,
            computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": 4, "instanceTypes": ["optimal"],
                              "subnets": [subnet], "securityGroupIds": [group], "instanceRole": profile})
        arn = batch.create_job_queue(jobQueueName=name, state="ENABLED", priority=1, computeEnvironmentOrder=[
            {"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}])["jobQueueArn"]
        self.batch.queues[name] = QueueSpec(name, name, [f"ce-{name}"], time_limit_actions or [])
        return arn

    def job_definition(self, name: str, script: str, attempts: int = 1) -> str:
        folder = self.tmp / name
        folder.mkdir()
        (folder / "job.py").write_text(script)
        self.batch.definition_dirs[name] = folder
        return self.client("batch").register_job_definition(
            jobDefinitionName=name, type="container",
            retryStrategy={"attempts": attempts},
            containerProperties={"image": "local", "command": ["python", "job.py", "Ref::word"],
                                 "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                          {"type": "MEMORY", "value": "512"}]},
        )["jobDefinitionArn"]

    def run_state_machine(self, definition: dict, timeout: float = 30, execution_input: dict | None = None) -> dict:
        sfn = self.client("stepfunctions")
        machine = sfn.create_state_machine(name=f"m{time.time_ns()}", definition=json.dumps(definition),
                                           roleArn=self.role)["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, name="scene", input=json.dumps(
            execution_input or {}, ensure_ascii=False))["executionArn"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return described
            time.sleep(POLL_S)
        return {"status": "STILL_RUNNING"}

    def wait_job(self, job_id: str, statuses=("SUCCEEDED", "FAILED"), timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]
            if job["status"] in statuses:
                return job
            time.sleep(POLL_S)
        return job


def _sync_task(queue: str, definition: str, **extra) -> dict:
    return {"Type": "Task", "Resource": "arn:aws:states:::batch:submitJob.sync",
            "Parameters": {"JobName": "scene", "JobQueue": queue, "JobDefinition": definition,
                           "Parameters": {"word": "hello"}}, "End": True, **extra}


def batch_sync_parameters(scene: Scene) -> dict:
    queue = scene.job_queue()
    definition = scene.job_definition("ok", "import sys; print(sys.argv[1])")
    described = scene.run_state_machine({"StartAt": "Job", "States": {"Job": _sync_task(queue, definition)}})
    output = json.loads(described.get("output") or "{}")
    return {"status": described["status"], "error": described.get("error"), "cause": described.get("cause"),
            "output_keys": sorted(output)}


def sync_stale_token_listener(scene: Scene) -> dict:
    queue = scene.job_queue()
    # Fails on attempt 1 of each job, succeeds later: the state machine retries the task.
    definition = scene.job_definition(
        "flaky",
        "import os, sys; sys.exit(0 if os.environ.get('AWS_BATCH_JOB_ATTEMPT') != '1' or os.path.exists('marker') "
        "else (open('marker', 'w').close() or 1))")
    task = _sync_task(queue, definition, TimeoutSeconds=3,
                      Retry=[{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 2}])
    outcomes: list[str] = []
    while len(outcomes) < 3 and "States.Timeout" not in outcomes:  # one spurious timeout shows the gap
        (scene.batch.definition_dirs["flaky"] / "marker").unlink(missing_ok=True)
        described = scene.run_state_machine({"StartAt": "Job", "States": {"Job": task}}, timeout=30)
        outcomes.append(described.get("error") or described["status"])
    return {"outcomes": outcomes}


def sync_poll_interval(scene: Scene) -> dict:
    """The gaps between the state machine's own `describe_jobs` polls while a 1.2 s job runs."""
    from moto.batch import models as batch_models

    polls: list[float] = []
    original = batch_models.BatchBackend.describe_jobs

    def describe_jobs(self, jobs):
        polls.append(time.monotonic())
        return original(self, jobs)

    batch_models.BatchBackend.describe_jobs = describe_jobs
    queue = scene.job_queue()
    definition = scene.job_definition("slow", "import time; time.sleep(1.2)")
    described = scene.run_state_machine({"StartAt": "Job", "States": {"Job": _sync_task(queue, definition)}})
    gaps = sorted(later - earlier for earlier, later in pairwise(polls))
    return {"status": described["status"], "polls": len(polls),
            "median_gap": gaps[len(gaps) // 2] if gaps else None}


def _run_one_job(scene: Scene, name: str, script: str) -> dict:
    """Submit one container job running `script` and describe it once it has ended."""
    queue = scene.job_queue()
    definition = scene.job_definition(name, script)
    job_id = scene.client("batch").submit_job(jobName="scene-job", jobQueue=queue, jobDefinition=definition)["jobId"]
    return scene.wait_job(job_id)


def batch_describe_exit_code(scene: Scene) -> dict:
    job = _run_one_job(scene, "exit3", "import sys; sys.exit(3)")
    return {"status": job["status"], "exit_code": job.get("container", {}).get("exitCode")}


def batch_environment_mutation(scene: Scene) -> dict:
    queue = scene.job_queue()
    definition = scene.job_definition("env", "pass")
    job_id = scene.client("batch").submit_job(
        jobName="scene-job", jobQueue=queue, jobDefinition=definition,
        containerOverrides={"environment": [{"name": "A", "value": "1"}]})["jobId"]
    scene.wait_job(job_id)
    counts = []
    for _ in range(3):
        job = scene.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]
        counts.append(sum(1 for e in job["container"]["environment"] if e["name"] == "AWS_BATCH_JOB_ID"))
    return {"job_id_counts": counts}


def eventbridge_lambda_targets(scene: Scene) -> dict:
    folder = scene.tmp / "fn"
    folder.mkdir()
    (folder / "app.py").write_text("def handler(event, context):\n    return {'source': event['source']}\n")
    lam = scene.client("lambda")
    import io
    import zipfile
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "")
    arn = lam.create_function(FunctionName="fn", Runtime="python3.13", Role=scene.role, Handler="app.handler",
                              Code={"ZipFile": buffer.getvalue()})["FunctionArn"]
    scene.lambdas.register(FunctionSpec("Fn", "fn", arn, folder, "app.handler", [], {}, timeout=30))
    events = scene.client("events")
    events.put_rule(Name="r", EventPattern=json.dumps({"source": ["threadline.test"]}))
    events.put_targets(Rule="r", Targets=[{"Id": "fn", "Arn": arn}])
    try:
        events.put_events(Entries=[{"Source": "threadline.test", "DetailType": "t", "Detail": "{}"}])
    except Exception as exc:  # moto answers 500 when a rule has a Lambda target
        return {"payloads": [], "put_events_error": str(exc)[:200]}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not scene.lambdas.invocations:
        time.sleep(POLL_S)
    return {"payloads": [i.payload for i in scene.lambdas.invocations]}


def context_start_time_iso(scene: Scene) -> dict:
    table = scene.client("dynamodb").create_table(
        TableName="runs", KeySchema=[{"AttributeName": "run_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "run_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")["TableDescription"]["TableName"]
    described = scene.run_state_machine({"StartAt": "Put", "States": {"Put": {
        "Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "End": True,
        "Parameters": {"TableName": table, "Item": {"run_id": {"S": "r1"},
                                                    "started_at": {"S.$": "$$.Execution.StartTime"}}}}}})
    item = scene.client("dynamodb").get_item(TableName=table, Key={"run_id": {"S": "r1"}}).get("Item", {})
    return {"status": described["status"], "cause": described.get("cause"),
            "started_at": item.get("started_at", {}).get("S")}


def sdk_streaming_body(scene: Scene) -> dict:
    s3 = scene.client("s3")
    s3.create_bucket(Bucket="reports")
    s3.put_object(Bucket="reports", Key="r.json", Body=b'{"summary": "3 rows rejected"}')
    described = scene.run_state_machine({"StartAt": "Read", "States": {"Read": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject", "End": True,
        "Parameters": {"Bucket": "reports", "Key": "r.json"},
        "ResultSelector": {"report.$": "States.StringToJson($.Body)"}}}})
    return {"status": described["status"], "cause": described.get("cause"),
            "output": json.loads(described.get("output") or "null")}


def _consumer(scene: Scene, name: str, body: str) -> str:
    """A Lambda function in the twin's runtime whose app.py is `body`; returns its ARN."""
    import io
    import zipfile

    folder = scene.tmp / name
    folder.mkdir()
    (folder / "app.py").write_text(body)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "")
    arn = scene.client("lambda").create_function(
        FunctionName=name, Runtime="python3.13", Role=scene.role, Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()})["FunctionArn"]
    scene.lambdas.register(FunctionSpec(name, name, arn, folder, "app.handler", [], {}, timeout=30))
    return arn


def _queue_with_dead_letters(scene: Scene, max_receive_count: int = 2) -> tuple[str, str, str]:
    """(queue URL, queue ARN, dead-letter queue ARN)."""
    sqs = scene.client("sqs")
    dead = sqs.create_queue(QueueName="dead")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="events", Attributes={"VisibilityTimeout": "1", "RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dead_arn, "maxReceiveCount": max_receive_count})})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, dead_arn


def _in_queue(scene: Scene, url: str) -> int:
    attributes = scene.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attributes["Attributes"].values())


def sqs_event_source_inline_delivery(scene: Scene) -> dict:
    fails_everything = ("def handler(event, context):\n"
                        "    return {'batchItemFailures': [{'itemIdentifier': r['messageId']} "
                        "for r in event['Records']]}\n")
    _consumer(scene, "consumer", fails_everything)
    url, arn, _ = _queue_with_dead_letters(scene)
    scene.client("lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName="consumer", BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    scene.client("sqs").send_message(QueueUrl=url, MessageBody='{"n": 1}')
    # The function failed the message: it must still be in the queue, for a later delivery.
    return {"invoked_during_send": len(scene.lambdas.invocations), "left_in_queue": _in_queue(scene, url)}


def sqs_message_move_task(scene: Scene) -> dict:
    url, _, dead_arn = _queue_with_dead_letters(scene)
    sqs = scene.client("sqs")
    dead_url = sqs.get_queue_url(QueueName="dead")["QueueUrl"]
    sqs.send_message(QueueUrl=dead_url, MessageBody='{"n": 1}')
    try:
        sqs.start_message_move_task(SourceArn=dead_arn)
    except Exception as exc:
        return {"error": str(exc)[:200], "moved": _in_queue(scene, url)}
    tasks = sqs.list_message_move_tasks(SourceArn=dead_arn)["Results"]
    return {"moved": _in_queue(scene, url), "left_in_dead_letters": _in_queue(scene, dead_url),
            "task": {k: tasks[0][k] for k in ("Status", "ApproximateNumberOfMessagesMoved")}}


def batch_describe_container_image(scene: Scene) -> dict:
    job = _run_one_job(scene, "imaged", "pass")
    return {"status": job["status"], "image": job.get("container", {}).get("image")}


def batch_describe_node_properties(scene: Scene) -> dict:
    container = {"image": "gpu:1", "command": ["python", "job.py"],
                 "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]}
    arn = scene.client("batch").register_job_definition(
        jobDefinitionName="multi", type="multinode",
        nodeProperties={"numNodes": 2, "mainNode": 0,
                        "nodeRangeProperties": [{"targetNodes": "0:", "container": container}]},
    )["jobDefinitionArn"]
    [definition] = scene.client("batch").describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
    nodes = definition.get("nodeProperties")
    return {"num_nodes": nodes["numNodes"] if nodes else None,
            "image": nodes["nodeRangeProperties"][0]["container"]["image"] if nodes else None}


def batch_concurrent_describe(scene: Scene) -> dict:
    """Submitters and describers hammer moto's Batch backend at once, for at most 10 s."""
    import threading

    from moto.batch import models as batch_models
    from moto.core import DEFAULT_ACCOUNT_ID

    batch_models.Job.run = lambda job: None  # the jobs never run: only the backend's bookkeeping is under test
    queue = scene.job_queue()
    definition = scene.job_definition("idle", "pass")
    backend = batch_models.batch_backends[DEFAULT_ACCOUNT_ID][REGION]
    ids = [backend.submit_job("seed", definition, queue, {})[1]]
    errors: list[str] = []
    done: list[tuple[str, int]] = []
    stop = threading.Event()
    deadline = time.monotonic() + 10

    def hammer(kind: str, call) -> None:
        count = 0
        while count < 200 and not stop.is_set() and time.monotonic() < deadline:
            try:
                call()
            except Exception as exc:  # the race: "dictionary changed size during iteration"
                errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                stop.set()
            count += 1
        done.append((kind, count))

    def submit() -> None:
        ids.append(backend.submit_job("race", definition, queue, {})[1])

    def describe() -> None:
        backend.describe_jobs([ids[-1]])
        backend.list_jobs(queue, None)

    sys.setswitchinterval(1e-4)  # switch threads often, so the race shows within seconds
    threads = [threading.Thread(target=hammer, args=(kind, call)) for kind, call in
               [("submit", submit)] * 8 + [("describe", describe)] * 8]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"errors": sorted(set(errors)), "jobs": len(ids),
            "describes": sum(count for kind, count in done if kind == "describe")}


def _sfn_outcome(described: dict) -> dict:
    output = json.loads(described.get("output") or "null")
    return {"status": described["status"], "error": described.get("error"),
            "caught": output.get("Error") if isinstance(output, dict) else None}


def _catching(task: dict, errors: tuple[str, ...] = ("States.ALL",)) -> dict:
    """A state machine running `task`, whose Catch on `errors` leads to a Pass state."""
    return {"StartAt": "Task", "States": {
        "Task": {**task, "Next": "Done", "Catch": [{"ErrorEquals": list(errors), "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": True}, "Done": {"Type": "Pass", "End": True}}}


def states_all_terminal_errors(scene: Scene) -> dict:
    s3 = scene.client("s3")
    s3.create_bucket(Bucket="reports")
    s3.put_object(Bucket="reports", Key="bad.json", Body=b"not json")
    s3.put_object(Bucket="reports", Key="big.txt", Body=b"x" * 300_000)
    get = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject"}
    bad = {**get, "Parameters": {"Bucket": "reports", "Key": "bad.json"},
           "ResultSelector": {"report.$": "States.StringToJson($.Body)"}}  # States.Runtime
    big = {**get, "Parameters": {"Bucket": "reports", "Key": "big.txt"}}  # States.DataLimitExceeded
    return {"runtime": _sfn_outcome(scene.run_state_machine(_catching(bad))),
            "data_limit": _sfn_outcome(scene.run_state_machine(_catching(big))),
            "runtime_named": _sfn_outcome(scene.run_state_machine(_catching(bad, ("States.Runtime",))))}


def payload_size_limit(scene: Scene) -> dict:
    s3 = scene.client("s3")
    s3.create_bucket(Bucket="reports")
    half = {"s": "x" * 150_000, "small": 1}  # 150 KB in, 300 KB after Parameters
    put = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
           "Parameters": {"Bucket": "reports", "Key": "doubled.txt", "Body.$": "States.Format('{}{}', $.s, $.s)"}}
    task = scene.run_state_machine(_catching(put), execution_input=half)
    written = s3.list_objects_v2(Bucket="reports").get("KeyCount", 0)
    pass_state = scene.run_state_machine({"StartAt": "Copy", "States": {"Copy": {
        "Type": "Pass", "Parameters": {"a.$": "$.s", "b.$": "$.s"}, "ResultPath": "$.copy",
        "OutputPath": "$.small", "End": True}}}, execution_input=half)
    # 100,000 "é": 200,000 bytes of UTF-8, within the quota (moto counted 600,000 escaped bytes).
    accents = scene.run_state_machine({"StartAt": "Keep", "States": {"Keep": {"Type": "Pass", "End": True}}},
                                      execution_input={"t": "\u00e9" * 100_000})
    return {"task_parameters": {**_sfn_outcome(task), "objects_written": written},
            "pass_parameters": _sfn_outcome(pass_state), "non_ascii_within_quota": accents["status"]}


def context_entered_time_format(scene: Scene) -> dict:
    described = scene.run_state_machine({"StartAt": "Stamp", "States": {"Stamp": {
        "Type": "Pass", "End": True,
        "Parameters": {"entered.$": "$$.State.EnteredTime", "started.$": "$$.Execution.StartTime"}}}})
    return {"status": described["status"], **json.loads(described.get("output") or "{}")}


def _queue(scene: Scene, name: str) -> tuple[str, str]:
    """(URL, ARN) of a new SQS queue."""
    sqs = scene.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _receive_all(scene: Scene, url: str) -> list[dict]:
    """Receive (and delete) every message now in the queue, waiting for none."""
    sqs = scene.client("sqs")
    messages: list[dict] = []
    while received := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                          WaitTimeSeconds=0).get("Messages", []):
        for message in received:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        messages.extend(received)
    return messages


def _drain(scene: Scene, url: str, until, timeout: float) -> list[dict]:
    """Receive (and delete) the queue's messages until `until(messages)` holds or `timeout` passes."""
    sqs = scene.client("sqs")
    messages: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(messages):
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                       WaitTimeSeconds=0).get("Messages", [])
        for message in received:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        messages.extend(received)
        if not received:
            time.sleep(POLL_S)
    return messages


def _failing_function(scene: Scene) -> str:
    """A function "failing" that always raises, with a dead-letter queue; returns the queue URL.

    Its first run takes 1 s (long enough to tell an answer before the run's end from one after
    it); the retries raise at once. Its runs start in its code folder, where the first leaves a mark.
    """
    from threadline.twin.lambda_async import AsyncConfig

    dead_url, dead_arn = _queue(scene, "async-dead")
    _consumer(scene, "failing", "import os, time\n\ndef handler(event, context):\n"
                                "    if not os.path.exists('ran-once'):\n"
                                "        open('ran-once', 'w').close()\n        time.sleep(1)\n"
                                "    raise ValueError('always fails: ' + event['n'])\n")
    scene.lambdas.functions["failing"].async_config = AsyncConfig(dead_letter_arn=dead_arn)
    scene.lambdas.async_invoker.retry_delays_s = (0.1, 0.1)
    return dead_url


def _async_aftermath(scene: Scene, dead_url: str) -> dict:
    """Once the async invocations are over: the function's runs and what reached its dead-letter queue."""
    finished = scene.lambdas.async_invoker.wait_idle(20)
    # The invoker sends an event's dead letter before it counts the event done: all are in the queue.
    messages = _receive_all(scene, dead_url)
    runs = sorted((i for i in scene.lambdas.invocations if i.function == "failing"), key=lambda i: i.started_at)
    dead_letters = [{"body": json.loads(m["Body"]),
                     "attributes": {k: v.get("StringValue") for k, v in m.get("MessageAttributes", {}).items()}}
                    for m in messages]
    return {"finished": finished, "runs": len(runs), "errored": [i.errored for i in runs],
            "first_run_ended": runs[0].started_at + runs[0].duration_s if runs else None,
            "dead_letters": dead_letters}


def lambda_async_invocation(scene: Scene) -> dict:
    """An `Event` invocation of a function that always fails, with a dead-letter queue."""
    dead_url = _failing_function(scene)
    started = time.monotonic()
    response = scene.client("lambda").invoke(FunctionName="failing", InvocationType="Event",
                                             Payload=json.dumps({"n": "one"}))
    answered_in, answered_at = time.monotonic() - started, time.time()
    aftermath = _async_aftermath(scene, dead_url)
    return {"status_code": response["StatusCode"], "answered_in_s": round(answered_in, 3),
            "answered_before_the_run_ended": bool(aftermath["first_run_ended"])
            and answered_at < aftermath["first_run_ended"], **aftermath}


def lambda_invocation_type(scene: Scene) -> dict:
    """A state machine's `lambda:invoke` task with `InvocationType: Event` on a function that always fails."""
    dead_url = _failing_function(scene)
    described = scene.run_state_machine({"StartAt": "Notify", "States": {"Notify": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
        "Parameters": {"FunctionName": "failing", "InvocationType": "Event", "Payload": {"n": "two"}}}}})
    took = (described["stopDate"] - described["startDate"]).total_seconds() if "stopDate" in described else None
    output = json.loads(described.get("output") or "null")
    aftermath = _async_aftermath(scene, dead_url)
    ended = described["stopDate"].timestamp() if "stopDate" in described else None
    return {"status": described["status"], "error": described.get("error"), "took_s": took,
            "status_code": output.get("StatusCode") if isinstance(output, dict) else None,
            "ended_before_the_run_ended": bool(ended and aftermath["first_run_ended"])
            and ended < aftermath["first_run_ended"], **aftermath}


STATUS_MARKER = {"marker": "every status event put before this one has been delivered"}


def _status_events_settled(messages: list[dict]) -> bool:
    """The marker has come, and so has the end of every execution whose RUNNING event came."""
    details = [json.loads(m["Body"]).get("detail", {}) for m in messages]
    started = {d.get("executionArn") for d in details if d.get("status") == "RUNNING"}
    ended = {d.get("executionArn") for d in details if d.get("status") not in (None, "RUNNING")}
    return STATUS_MARKER in details and started <= ended


def stepfunctions_status_events(scene: Scene) -> dict:
    """Executions' status changes reach a rule on the default bus (delivered to an SQS target)."""
    url, arn = _queue(scene, "status-events")
    events = scene.client("events")
    events.put_rule(Name="status", EventPattern=json.dumps(
        {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"]}))
    events.put_targets(Rule="status", Targets=[{"Id": "queue", "Arn": arn}])
    # Instant executions: the RUNNING event must still come first, before the end.
    failed = scene.run_state_machine({"StartAt": "Fail", "States": {
        "Fail": {"Type": "Fail", "Error": "Scene.Broken", "Cause": "it had to fail"}}}, execution_input={"n": 1})
    succeeded = scene.run_state_machine({"StartAt": "Done", "States": {
        "Done": {"Type": "Pass", "Result": {"ok": True}, "End": True}}}, execution_input={"n": 2})
    # Then a marker on the same rule: events already put reach the queue before it, and each
    # execution's end event follows its RUNNING one (put when moto records the end).
    events.put_events(Entries=[{"Source": "aws.states", "DetailType": "Step Functions Execution Status Change",
                                "Detail": json.dumps(STATUS_MARKER)}])
    messages = _drain(scene, url, _status_events_settled, timeout=3)
    received = [body for body in (json.loads(m["Body"]) for m in messages) if body.get("detail") != STATUS_MARKER]
    # Each execution's events, as received (expected: RUNNING, then how it ended).
    return {"statuses": [failed["status"], succeeded["status"]],
            "failed": [e for e in received if e.get("detail", {}).get("executionArn") == failed.get("executionArn")],
            "succeeded": [e for e in received
                          if e.get("detail", {}).get("executionArn") == succeeded.get("executionArn")],
            "received": len(received)}


def schedule_rules_ignore_bus_events(scene: Scene) -> dict:
    """A schedule-only rule with an SQS target, and an event put on the bus: does the queue get it?"""
    url, arn = _queue(scene, "scheduled")
    events = scene.client("events")
    events.put_rule(Name="every-minute", ScheduleExpression="rate(1 minute)")
    events.put_targets(Rule="every-minute", Targets=[{"Id": "queue", "Arn": arn}])
    pattern_url, pattern_arn = _queue(scene, "patterned")
    events.put_rule(Name="patterned", EventPattern=json.dumps({"source": ["threadline.test"]}))
    events.put_targets(Rule="patterned", Targets=[{"Id": "queue", "Arn": pattern_arn}])
    events.put_events(Entries=[{"Source": "threadline.test", "DetailType": "t", "Detail": "{}"}])
    # PutEvents hands the event to every matching rule's targets before it answers: once the
    # patterned queue has it, the scheduled queue holds whatever the bus gave it.
    patterned = _drain(scene, pattern_url, lambda found: len(found) >= 1, timeout=5)
    return {"scheduled": len(_receive_all(scene, url)), "patterned": len(patterned)}


def batch_sync_poll_resilience(scene: Scene) -> dict:
    """DescribeJobs answers 500 three times while a `.sync` task polls its 1 s job: does the run survive?"""
    from moto.batch import models as batch_models
    from moto.core.exceptions import JsonRESTError

    queue = scene.job_queue()
    definition = scene.job_definition("slow", "import time; time.sleep(1)")
    original = batch_models.BatchBackend.describe_jobs
    failures = {"left": 3, "answered": 0}

    def describe_jobs(self, jobs):
        if failures["left"] > 0:
            failures["left"] -= 1
            failures["answered"] += 1
            error = JsonRESTError("ServerException", "Internal error, try again")
            error.code = 500
            raise error
        return original(self, jobs)

    batch_models.BatchBackend.describe_jobs = describe_jobs
    try:
        described = scene.run_state_machine({"StartAt": "Job", "States": {"Job": _sync_task(queue, definition)}},
                                            timeout=60)
    finally:
        batch_models.BatchBackend.describe_jobs = original
    return {"status": described["status"], "error": described.get("error"), "errors_answered": failures["answered"]}


def batch_sync_terminate_on_stop(scene: Scene) -> dict:
    """A `.sync` task times out after 2 s on a 30 s job: is the job terminated?"""
    queue = scene.job_queue()
    definition = scene.job_definition("long", "import time; time.sleep(30)")
    described = scene.run_state_machine(
        {"StartAt": "Job", "States": {"Job": _sync_task(queue, definition, TimeoutSeconds=2)}}, timeout=20)
    ended = time.monotonic()  # the execution has ended: how long does its job outlive it?
    batch = scene.client("batch")
    job_ids = [job_id for job_id, record in scene.batch.jobs.items() if record.definition == "long"]
    job = scene.wait_job(job_ids[0], timeout=4) if job_ids else {}
    result = {"status": described["status"], "error": described.get("error"), "jobs": len(job_ids),
              "job_status": job.get("status"), "status_reason": job.get("statusReason"),
              "waited_s": round(time.monotonic() - ended, 2)}
    for job_id in job_ids:  # leave no 30 s process behind
        batch.terminate_job(jobId=job_id, reason="scene over")
        scene.wait_job(job_id, timeout=5)
    return result


def stop_before_interpreter_starts(scene: Scene) -> dict:
    """StopExecution at once after StartExecution, the interpreter slowed to start 0.3 s later: stopped?"""
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original = ExecutionWorker._get_evaluation_entrypoint

    def slow_to_start(self: Any) -> Any:
        time.sleep(0.3)
        return original(self)

    ExecutionWorker._get_evaluation_entrypoint = slow_to_start
    sfn = scene.client("stepfunctions")
    machine = sfn.create_state_machine(name="slow-start", roleArn=scene.role, definition=json.dumps(
        {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 30, "End": True}}}))["stateMachineArn"]
    try:
        arn = sfn.start_execution(stateMachineArn=machine, name="stopped-at-once", input="{}")["executionArn"]
        try:
            sfn.stop_execution(executionArn=arn, error="Stopped", cause="at once")
            stop_error = None
        except ClientError as exc:
            stop_error = exc.response["ResponseMetadata"]["HTTPStatusCode"]
    finally:
        ExecutionWorker._get_evaluation_entrypoint = original
    deadline = time.monotonic() + 3
    while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING" and time.monotonic() < deadline:
        time.sleep(POLL_S)
    return {"stop_error": stop_error, "status": status}


def timed_out_stop_date(scene: Scene) -> dict:
    """An execution past its state machine's TimeoutSeconds: does DescribeExecution say when it stopped?"""
    described = scene.run_state_machine(
        {"StartAt": "Hold", "TimeoutSeconds": 1, "States": {"Hold": {"Type": "Wait", "Seconds": 30, "End": True}}},
        timeout=10)
    stopped = described.get("stopDate")
    return {"status": described["status"],
            "ran_s": (stopped - described["startDate"]).total_seconds() if stopped else None}


RETRY_INTERVAL_S = 1  # long enough to tell a real wait from a scaled one on a busy machine


def retry_wait_scale(scene: Scene) -> dict:
    """A task that always fails, retried twice `RETRY_INTERVAL_S` apart: how long, and how many attempts?"""
    scene.client("s3").create_bucket(Bucket="reports")
    described = scene.run_state_machine({"StartAt": "Read", "States": {"Read": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject", "End": True,
        "Parameters": {"Bucket": "reports", "Key": "missing.json"},
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": RETRY_INTERVAL_S, "MaxAttempts": 2,
                   "BackoffRate": 1}]}}}, timeout=30)
    took = (described["stopDate"] - described["startDate"]).total_seconds() if "stopDate" in described else None
    history = scene.client("stepfunctions").get_execution_history(
        executionArn=described["executionArn"], maxResults=1000)["events"] if "executionArn" in described else []
    failures = [e["timestamp"] for e in history if e["type"] == "TaskFailed"]
    starts = [e["timestamp"] for e in history if e["type"] == "TaskScheduled"]
    # The Retry waits alone: from each failure to the next attempt (the execution's length also counts
    # the S3 calls, which a busy machine slows down).
    waits = [(later - failed).total_seconds() for failed, later in zip(failures, starts[1:], strict=False)]
    return {"status": described["status"], "error": described.get("error"), "took_s": took,
            "interval_s": RETRY_INTERVAL_S, "waits_s": waits, "task_failures": len(failures),
            "task_starts": len(starts)}



def s3_eventbridge_etag(scene: Scene) -> dict:
    """An upload to a bucket that notifies EventBridge, caught by a rule with a queue target: the object's keys."""
    url, arn = _queue(scene, "s3-events")
    events = scene.client("events")
    events.put_rule(Name="uploads", EventPattern=json.dumps({"source": ["aws.s3"], "detail-type": ["Object Created"]}))
    events.put_targets(Rule="uploads", Targets=[{"Id": "queue", "Arn": arn}])
    s3 = scene.client("s3")
    s3.create_bucket(Bucket="incoming")
    s3.put_bucket_notification_configuration(Bucket="incoming",
                                             NotificationConfiguration={"EventBridgeConfiguration": {}})
    put = s3.put_object(Bucket="incoming", Key="in/a.csv", Body=b"a,b\n1,2\n")
    messages = _drain(scene, url, lambda found: bool(found), timeout=10)
    objects = [json.loads(m["Body"])["detail"]["object"] for m in messages]
    return {"object_keys": [sorted(o) for o in objects], "etags": [o.get("etag") for o in objects],
            "put_etag": put["ETag"].strip('"')}

def batch_share_identifier(scene: Scene) -> dict:
    """A fair-share queue: SubmitJob without a share, then with one and a priority override."""
    batch = scene.client("batch")
    queue = scene.job_queue("shared")
    policy = batch.create_scheduling_policy(name="teams", fairsharePolicy={
        "shareDistribution": [{"shareIdentifier": "risk", "weightFactor": 0.5}]})["arn"]
    batch.update_job_queue(jobQueue=queue, schedulingPolicyArn=policy)
    definition = scene.job_definition("shared", "pass")
    try:
        batch.submit_job(jobName="no-share", jobQueue=queue, jobDefinition=definition)
        refused = None
    except batch.exceptions.ClientException as exc:
        refused = exc.response["Error"]["Message"]
    job_id = batch.submit_job(jobName="shared", jobQueue=queue, jobDefinition=definition,
                              shareIdentifier="risk", schedulingPriorityOverride=7)["jobId"]
    job = scene.wait_job(job_id)
    task = _sync_task(queue, definition)
    task["Parameters"].update({"JobName": "from-a-task", "ShareIdentifier": "research"})
    execution = scene.run_state_machine({"StartAt": "Submit", "States": {"Submit": task}})
    ended = [job for status in ("SUCCEEDED", "FAILED")
             for job in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]]
    [from_task] = [job for job in ended if job["jobName"] == "from-a-task"]
    [task_job] = batch.describe_jobs(jobs=[from_task["jobId"]])["jobs"]
    return {"refused": refused, "share": job.get("shareIdentifier"), "priority": job.get("schedulingPriority"),
            "status": job["status"], "task_status": execution["status"], "task_share": task_job.get("shareIdentifier")}


def batch_ecs_properties(scene: Scene) -> dict:
    """A multi-container `container` job definition (`ecsProperties`): registered, described, run."""
    batch = scene.client("batch")
    queue = scene.job_queue()
    folder = scene.tmp / "tasked"
    folder.mkdir()
    scene.batch.definition_dirs["tasked"] = folder
    containers = [{"name": "main", "image": "local", "essential": True, "command": ["python", "-c", "pass"],
                   "dependsOn": [{"containerName": "side", "condition": "COMPLETE"}]},
                  {"name": "side", "image": "local", "essential": False,
                   "command": ["python", "-c", "raise SystemExit(3)"]}]
    try:
        arn = batch.register_job_definition(jobDefinitionName="tasked", type="container",
                                            ecsProperties={"taskProperties": [{"containers": containers}]},
                                            )["jobDefinitionArn"]
    except batch.exceptions.ClientException as exc:
        return {"refused": exc.response["Error"]["Message"]}
    [definition] = batch.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
    job = scene.wait_job(batch.submit_job(jobName="tasked", jobQueue=queue, jobDefinition=arn)["jobId"])
    ran = job.get("ecsProperties", {}).get("taskProperties", [{}])[0].get("containers", [])
    described = definition["ecsProperties"]["taskProperties"][0]["containers"]
    return {"refused": None, "described": [c["name"] for c in described],
            "status": job["status"], "exit_codes": {c["name"]: c.get("exitCode") for c in ran}}


SCENARIOS = {name: globals()[name] for name in moto_fixes.FIXES if name in globals()}


# The services the scenarios call (botocore's names; moto's package is named in MOTO_PACKAGES where it differs).
SERVICES = ("batch", "dynamodb", "ec2", "events", "iam", "lambda", "logs", "s3", "sqs", "stepfunctions", "sts")
MOTO_PACKAGES = {"lambda": "awslambda"}
# moto's ASL interpreter: its backend, parser, and the state and service-task classes it builds.
INTERPRETER = ("models", "asl.parse.preprocessor",
               "asl.component.state.exec.state_task.service.state_task_service_factory")


def preload() -> None:
    """Do once what every scenario would do on first use, so that processes forked from this one need not.

    It imports moto's server, services and ASL interpreter, parses the services' botocore models into
    the process's one loader (as the twin does), and makes each service's backend where the scenarios
    use it, in its initial state (EC2's alone takes half a second); the fixes patch moto's classes, so
    backends made before them are patched too. No server, connection or thread is created: processes
    forked afterwards start clean, each with its own copy of the untouched backends.
    """
    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.base_backend import BackendDict
    from moto.core.utils import get_service_model

    os.environ.update(MOTO_SETTINGS)  # read when the backends are made
    importlib.import_module("moto.server")
    _shared_loader()
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    for service in SERVICES:
        for part in ("models", "responses", "urls"):
            importlib.import_module(f"moto.{MOTO_PACKAGES.get(service, service)}.{part}")
        session.client(service, endpoint_url="http://127.0.0.1:9")  # never called: only built
        get_service_model(service)
        backends = get_backend(service)
        if isinstance(backends, BackendDict):  # as moto's server looks the backend up: the region, or the partition
            account = backends[DEFAULT_ACCOUNT_ID]
            account[REGION if REGION in account else "aws"]
    for module in INTERPRETER:
        importlib.import_module(f"moto.stepfunctions.parser.{module}")


def run(name: str, with_fix: bool) -> dict:
    """Run one scenario on a moto server of its own, with every fix or with all but its own.

    The server and moto's threads are left running (stopping the server alone takes up to 0.5 s):
    each caller ends its process right after, with `os._exit`.
    """
    scenario = SCENARIOS[name]
    scene = Scene(skip=() if with_fix else (name,))
    try:
        return scenario(scene)
    finally:
        shutil.rmtree(scene.tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--without-fix", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.scenario, not args.without_fix), default=str))
    sys.stdout.flush()
    os._exit(0)  # daemon threads of moto's interpreter must not keep the process alive


if __name__ == "__main__":
    main()
