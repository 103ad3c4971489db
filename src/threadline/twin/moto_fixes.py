"""Every workaround of a moto 5.2.5 gap, in one place.

Each fix is a small function with a docstring naming the gap; `apply()` installs
them all and is idempotent. `tests/twin/test_moto_fixes.py` holds one regression
test per gap, each of which fails when its fix is left out (`apply(skip=...)`).

The twin's executors (Lambda handlers, Batch jobs) plug in through the seams
moto leaves for Docker: `LambdaFunction._invoke_lambda` and `batch.Job.run`.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import botocore.session

FIXES: tuple[str, ...] = (
    "batch_sync_parameters",
    "sync_stale_token_listener",
    "sync_poll_interval",
    "batch_describe_exit_code",
    "batch_environment_mutation",
    "eventbridge_lambda_targets",
    "context_start_time_iso",
    "sdk_streaming_body",
    "sqs_event_source_inline_delivery",
    "sqs_message_move_task",
    "batch_describe_container_image",
    "batch_describe_node_properties",
)

SYNC_POLL_SECONDS = 0.05

_applied: set[str] = set()
_lock = threading.Lock()


class LambdaExecutor(Protocol):
    def invoke(self, function_name: str, event: Any) -> tuple[str, bool, str]:
        """Run a handler; return (payload JSON, errored, log text)."""


class BatchExecutor(Protocol):
    def run(self, job: Any) -> None:
        """Run a moto `batch.models.Job` to a terminal state."""


def fix_batch_sync_parameters() -> None:
    """`batch:submitJob.sync` reaches botocore with PascalCase keys (`JobName`).

    moto's `StateTaskService._normalise_parameters/_normalise_response` are empty,
    so the call fails with States.Runtime, cause 'JobName'. Convert request and
    response by the botocore shapes, as Step Functions does: the `.sync` output
    and the failure Cause are then PascalCase job descriptions as on AWS.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_batch as batch_module,
    )

    service_model = botocore.session.get_session().get_service_model("batch")
    operations = {_snake(name): name for name in service_model.operation_names}

    def operation(self: Any, service_action_name: str | None) -> Any:
        action = service_action_name or self._get_boto_service_action()
        return service_model.operation_model(operations[action])

    def normalise_parameters(self: Any, parameters: dict, boto_service_name: str | None = None,
                             service_action_name: str | None = None) -> None:
        self._to_boto_request(parameters, operation(self, service_action_name).input_shape)

    def normalise_response(self: Any, response: Any, boto_service_name: str | None = None,
                           service_action_name: str | None = None) -> None:
        self._from_boto_response(response, operation(self, service_action_name).output_shape)

    batch_module.StateTaskServiceBatch._normalise_parameters = normalise_parameters
    batch_module.StateTaskServiceBatch._normalise_response = normalise_response


def fix_sync_stale_token_listener() -> None:
    """A retried `.sync` task spuriously ends in States.Timeout.

    moto starts a task-token listener for every `.sync` call of a service that
    also supports `.waitForTaskToken`; the listener of an earlier attempt outlives
    it and times the retry out. Only `.waitForTaskToken` tasks need the listener.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_module,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )

    original = callback_module.StateTaskServiceCallback._eval_sync

    def eval_sync(self: Any, env: Any, sync_resolver: Any, timeout_seconds: Any,
                  callback_endpoint: Any, heartbeat_endpoint: Any) -> Any:
        if self.resource.condition != ResourceCondition.WaitForTaskToken:
            callback_endpoint = None
        return original(self, env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint)

    callback_module.StateTaskServiceCallback._eval_sync = eval_sync


def fix_sync_poll_interval(seconds: float = SYNC_POLL_SECONDS) -> None:
    """`.sync` polls every 0.5 s (a module global); the twin polls every 50 ms."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_module,
    )

    callback_module._DELAY_SECONDS_SYNC_CONDITION_CHECK = seconds


def fix_batch_describe_exit_code() -> None:
    """`describe_jobs` drops `container.exitCode` (and multi-node jobs lose it too).

    Step Functions' failure Cause and the state machine's Choice on the exit code
    need it, as does a `statusReason` on every terminal job.
    """
    from moto.batch import models as batch_models

    original = batch_models.Job.describe

    def describe(self: Any) -> dict[str, Any]:
        result = original(self)
        if self.job_stopped and self.exit_code is not None:
            result.setdefault("container", {})["exitCode"] = self.exit_code
        extra = getattr(self, "twin_container_reason", None)
        if extra:
            result.setdefault("container", {})["reason"] = extra
        return result

    batch_models.Job.describe = describe


def fix_batch_describe_container_image() -> None:
    """`describe_jobs` of a container job has no `container.image`.

    AWS reports the image the job ran (the job definition's); lineage records it
    and it is part of every step's cache key.
    """
    from moto.batch import models as batch_models

    original = batch_models.Job.describe

    def describe(self: Any) -> dict[str, Any]:
        result = original(self)
        properties = self.job_definition.container_properties or {}
        container = result.get("container")
        if isinstance(container, dict) and "image" not in container and properties.get("image"):
            container["image"] = properties["image"]
        return result

    batch_models.Job.describe = describe


def fix_batch_describe_node_properties() -> None:
    """`describe_job_definitions` of a multi-node job definition has no `nodeProperties`.

    The definition's image, command and node count are in it; resuming a run
    reads the image of the analysis job definition to compute its cache key.
    """
    from moto.batch import models as batch_models

    original = batch_models.JobDefinition.describe

    def describe(self: Any) -> dict[str, Any]:
        result = original(self)
        if getattr(self, "node_properties", None) and "nodeProperties" not in result:
            result["nodeProperties"] = copy.deepcopy(self.node_properties)
        return result

    batch_models.JobDefinition.describe = describe


def fix_batch_environment_mutation() -> None:
    """`_get_container_property("environment")` appends to the overrides list itself.

    Every describe adds another `AWS_BATCH_JOB_ID`; work on a copy instead.
    """
    from moto.batch import models as batch_models

    original = batch_models.Job._get_container_property

    def get_container_property(self: Any, p: str, default: Any) -> Any:
        if p == "environment":
            saved = self.container_overrides.get("environment")
            if saved is not None:
                self.container_overrides["environment"] = [dict(item) for item in saved]
            try:
                return original(self, p, [] if default is None else list(default))
            finally:
                if saved is not None:
                    self.container_overrides["environment"] = saved
        return original(self, p, default)

    batch_models.Job._get_container_property = get_container_property


def fix_eventbridge_lambda_targets(lambda_invoker: Callable[[str, dict[str, Any]], None]) -> None:
    """EventBridge rules cannot deliver to Lambda targets in moto.

    `Rule.send_to_targets` raises NotImplementedError for a Lambda target: on the
    S3 path the event is dropped silently, `PutEvents` answers 500. Deliver
    asynchronously, as EventBridge does (an `Event` invocation), and hand the
    other targets to moto.
    """
    from moto.events import models as events_models
    from moto.events.models import EventTemplateParser
    from moto.utilities.arns import parse_arn

    original = events_models.Rule.send_to_targets

    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        lambda_targets = [t for t in self.targets if parse_arn(t["Arn"]).service == "lambda"]
        other_targets = [t for t in self.targets if t not in lambda_targets]
        if other_targets:
            others = copy.copy(self)
            others.targets = other_targets
            original(others, original_event, transform_input)
        if not lambda_targets or not self.event_pattern.matches_event(original_event):
            return
        for target in lambda_targets:
            if "Input" in target:
                event = json.loads(target["Input"])
            elif transform_input and "InputTransformer" in target:
                transformer = target["InputTransformer"]
                event = EventTemplateParser.parse(
                    input_template=transformer.get("InputTemplate"),
                    input_paths_map=transformer.get("InputPathsMap", {}),
                    event=original_event,
                )
            else:
                event = dict(original_event)
            threading.Thread(
                target=lambda_invoker, args=(target["Arn"], event), name="eventbridge-lambda", daemon=True
            ).start()

    events_models.Rule.send_to_targets = send_to_targets


def fix_context_start_time_iso() -> None:
    """`$$.Execution.StartTime` is a Python datetime, not an ISO 8601 string.

    Passing it to a service integration (DynamoDB putItem) fails with "Object
    of type datetime is not JSON serializable"; on AWS it is a string.
    """
    from datetime import datetime

    from moto.stepfunctions.parser.backend import execution_worker

    original = execution_worker.ExecutionWorker._get_evaluation_environment

    def get_evaluation_environment(self: Any) -> Any:
        env = original(self)
        execution = env.states.context_object.context_object_data["Execution"]
        if isinstance(execution.get("StartTime"), datetime):
            execution["StartTime"] = execution["StartTime"].isoformat()
        return env

    execution_worker.ExecutionWorker._get_evaluation_environment = get_evaluation_environment


def fix_sdk_streaming_body() -> None:
    """`aws-sdk:s3:getObject` leaves `Body` a botocore stream; on AWS it is the text.

    `States.StringToJson($.Body)` then fails with States.Runtime
    ("'StreamingChecksumBody' object has no attribute 'strip'").
    """
    from botocore.response import StreamingBody
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as sdk_module,
    )

    original = sdk_module.StateTaskServiceAwsSdk._eval_service_task

    def eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original(self, env, *args, **kwargs)
        response = env.stack[-1]
        if isinstance(response, dict):
            for key, value in list(response.items()):
                if isinstance(value, StreamingBody):
                    response[key] = value.read().decode("utf-8", errors="replace")

    sdk_module.StateTaskServiceAwsSdk._eval_service_task = eval_service_task


def fix_sqs_event_source_inline_delivery() -> None:
    """SendMessage to a queue with a Lambda event source runs the function inside the call.

    moto receives the new message and invokes the function synchronously within
    SendMessage, one message per invocation, deletes it whatever
    `batchItemFailures` says (ReportBatchItemFailures is ignored) and never polls
    again: a message that failed stays in the queue until the next send, and the
    sender waits on the function. Lambda polls the queue instead. The twin's
    poller (`event_sources.py`) does that; moto must not deliver on its own.
    """
    from moto.sqs import models as sqs_models

    original = sqs_models.Queue.add_message
    hiding = threading.Lock()

    def add_message(self: Any, message: Any) -> None:
        with hiding:
            mappings = self.lambda_event_source_mappings
            self.lambda_event_source_mappings = {}
            try:
                original(self, message)
            finally:
                self.lambda_event_source_mappings = mappings

    sqs_models.Queue.add_message = add_message


def fix_sqs_message_move_task() -> None:
    """`StartMessageMoveTask` (redrive from a dead-letter queue) answers 500 NotImplemented.

    Move every message of the dead-letter queue to its source queue (the only
    queue whose redrive policy names it, or `DestinationArn`), as SQS's redrive
    does, and report the finished task to `ListMessageMoveTasks`.
    """
    import base64
    import time

    from moto.core.responses import ActionResult
    from moto.sqs.exceptions import QueueDoesNotExist, SQSException
    from moto.sqs.responses import SQSResponse

    tasks: list[dict[str, Any]] = []

    def queue_by_arn(backend: Any, arn: str) -> Any:
        for queue in backend.queues.values():
            if queue.queue_arn == arn:
                return queue
        raise QueueDoesNotExist()

    def start_message_move_task(self: Any) -> ActionResult:
        backend = self.sqs_backend
        source = queue_by_arn(backend, self._get_param("SourceArn"))
        destination_arn = self._get_param("DestinationArn")
        if destination_arn:
            destination = queue_by_arn(backend, destination_arn)
        else:
            origins = backend.list_dead_letter_source_queues(source.name)
            if len(origins) != 1:
                raise SQSException("InvalidParameterValue",
                                   f"{source.name} is the dead-letter queue of {len(origins)} queues; name DestinationArn")
            destination = origins[0]
        with source._messages_lock:
            messages = list(source._messages)
            source._messages = []
        for message in messages:
            backend.send_message(destination.name, message.body, message_attributes=message.message_attributes)
        started = int(time.time() * 1000)
        handle = base64.b64encode(json.dumps({"source": source.queue_arn, "at": started}).encode()).decode()
        tasks.append({"TaskHandle": handle, "Status": "COMPLETED", "SourceArn": source.queue_arn,
                      "DestinationArn": destination.queue_arn, "ApproximateNumberOfMessagesMoved": len(messages),
                      "ApproximateNumberOfMessagesToMove": len(messages), "StartedTimestamp": started})
        return ActionResult({"TaskHandle": handle})

    def list_message_move_tasks(self: Any) -> ActionResult:
        source_arn = self._get_param("SourceArn")
        found = [dict(task) for task in reversed(tasks) if task["SourceArn"] == source_arn]
        return ActionResult({"Results": found[: int(self._get_param("MaxResults") or 1)]})

    SQSResponse.start_message_move_task = start_message_move_task
    SQSResponse.list_message_move_tasks = list_message_move_tasks


def route_lambda_invoke(executor: LambdaExecutor) -> None:
    """Seam: moto runs Lambda handlers in Docker; the twin runs them as local processes."""
    from moto.awslambda import models as lambda_models

    def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        return executor.invoke(self.function_name, event if event is not None else {})

    lambda_models.LambdaFunction._invoke_lambda = invoke_lambda


def route_batch_jobs(executor: BatchExecutor) -> None:
    """Seam: moto runs Batch jobs in Docker; the twin runs the job's command locally."""
    from moto.batch import models as batch_models

    def run(self: Any) -> None:
        executor.run(self)

    batch_models.Job.run = run


def invoke_lambda_by_arn(function_arn: str, event: dict[str, Any]) -> None:
    """Deliver an event to a Lambda function in the moto backend (async, errors logged)."""
    import logging

    from moto.awslambda.utils import get_backend
    from moto.utilities.arns import parse_arn

    arn = parse_arn(function_arn)
    try:
        function = get_backend(arn.account, arn.region).get_function(function_arn)
        function.invoke(json.dumps(event), {"x-amz-invocation-type": "Event"}, {})
    except Exception:  # an async delivery never fails its sender, as in AWS
        logging.getLogger("threadline.twin").exception("EventBridge delivery to %s failed", function_arn)


def apply(lambda_executor: LambdaExecutor, batch_executor: BatchExecutor,
          skip: Iterable[str] = ()) -> None:
    """Install every fix (except those named in `skip`) and route the executors."""
    skipped = set(skip)
    unknown = skipped - set(FIXES)
    if unknown:
        raise ValueError(f"unknown moto fixes: {sorted(unknown)}")
    with _lock:
        route_lambda_invoke(lambda_executor)
        route_batch_jobs(batch_executor)
        installers: dict[str, Callable[[], None]] = {
            "batch_sync_parameters": fix_batch_sync_parameters,
            "sync_stale_token_listener": fix_sync_stale_token_listener,
            "sync_poll_interval": fix_sync_poll_interval,
            "batch_describe_exit_code": fix_batch_describe_exit_code,
            "batch_environment_mutation": fix_batch_environment_mutation,
            "eventbridge_lambda_targets": lambda: fix_eventbridge_lambda_targets(invoke_lambda_by_arn),
            "context_start_time_iso": fix_context_start_time_iso,
            "sdk_streaming_body": fix_sdk_streaming_body,
            "sqs_event_source_inline_delivery": fix_sqs_event_source_inline_delivery,
            "sqs_message_move_task": fix_sqs_message_move_task,
            "batch_describe_container_image": fix_batch_describe_container_image,
            "batch_describe_node_properties": fix_batch_describe_node_properties,
        }
        for name in FIXES:
            if name in skipped or name in _applied:
                continue
            installers[name]()
            _applied.add(name)


def _snake(name: str) -> str:
    out = []
    for index, char in enumerate(name):
        if char.isupper() and index:
            out.append("_")
        out.append(char.lower())
    return "".join(out)
