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
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

import botocore.model
import botocore.session

from . import moto_speedups
from .lambda_async import LambdaThrottled

if TYPE_CHECKING:
    from moto.events.utils import EventMessageType

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
    "lambda_async_invocation",
    "stepfunctions_status_events",
    "batch_sync_terminate_on_stop",
    "batch_sync_poll_resilience",
    "retry_wait_scale",
    "lambda_invocation_type",
    "schedule_rules_ignore_bus_events",
    "batch_concurrent_describe",
    "states_all_terminal_errors",
    "payload_size_limit",
    "context_entered_time_format",
    "s3_eventbridge_etag",
    "batch_share_identifier",
    "batch_ecs_properties",
    "stop_before_interpreter_starts",
    "timed_out_stop_date",
)

INTERPRETER_START_WAIT_S = 10.0  # how long StopExecution waits for an execution's interpreter to start
SYNC_POLL_SECONDS = 0.15  # a job's end wakes the poll at once (moto_speedups.batch_job_ended)
RETRY_WAIT_SCALE = 0.02  # a state's Retry interval of 60 s lasts 1.2 s in the twin

_applied: set[str] = set()
_lock = threading.Lock()


class LambdaExecutor(Protocol):
    def invoke(self, function_name: str, event: Any) -> tuple[str, bool, str]:
        """Run a handler; return (payload JSON, errored, log text)."""

    def invoke_async(self, function_name: str, event: Any) -> str:
        """Queue an async invocation (retries, dead letters); return its request id."""


# The executors of the twin now running; fixes installed once per process look them up here.
_executors: dict[str, Any] = {}


class BatchExecutor(Protocol):
    faults: Any  # the twin's FaultPlan

    def run(self, job: Any) -> None:
        """Run a moto `batch.models.Job` to a terminal state."""

    def queue_aliases(self, queue_name: str) -> tuple[str, ...]:
        """Other names of a queue that faults may use (its logical id)."""


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

    # The process's data loader (the twin's shared one) rather than a new session: nothing handles
    # `service-data-loaded` for Batch, so the model is the one a session would give.
    service_model = botocore.model.ServiceModel(botocore.session.create_loader().load_service_model(
        "batch", "service-2", api_version=None), "batch")
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
    """`.sync` polls every 0.5 s (a module global); the twin polls every 0.15 s, and at once when a job ends."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_module,
    )

    callback_module._DELAY_SECONDS_SYNC_CONDITION_CHECK = seconds  # type: ignore[misc]  # moto declares it Final


def fix_lambda_invocation_type() -> None:
    """`arn:aws:states:::lambda:invoke` drops `InvocationType` from its Parameters.

    Step Functions passes it to Lambda (`"InvocationType": "Event"` invokes
    asynchronously and the task ends at once with StatusCode 202); moto's list of
    the integration's parameters lacks it, so every invocation ran synchronously
    and a failing notice failed the task instead of reaching Lambda's retries and
    dead-letter queue.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_lambda as lambda_module,
    )

    lambda_module._SUPPORTED_API_PARAM_BINDINGS["invoke"].add("InvocationType")


def fix_schedule_rules_ignore_bus_events() -> None:
    """A rule with a schedule and no event pattern matches every event put on the bus.

    On AWS it matches none: its targets get only the scheduled events. In moto the
    Batch metrics function's schedule rule also received every S3, Step Functions
    and Batch event, and would have counted failures twice. Installed around
    whatever `Rule.send_to_targets` is at that point (the Lambda-target fix wraps it).
    """
    from moto.events import models as events_models

    current = events_models.Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, *args: Any, **kwargs: Any) -> None:
        if self.scheduled_expression and not self.event_pattern.get_pattern():
            return
        current(self, original_event, *args, **kwargs)

    events_models.Rule.send_to_targets = send_to_targets


def fix_retry_wait_scale(scale: float = RETRY_WAIT_SCALE) -> None:
    """A state's Retry waits are real sleeps: six backed-off SubmitJob retries take two minutes.

    The twin scales them (like its capacity waits and visibility timeouts) so
    that a fault test exhausting a Retrier finishes in seconds; the count of
    attempts, the backoff and the jitter are moto's, unchanged.
    """
    import time as real_time

    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class ScaledTime:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            real_time.sleep(seconds * scale)

    retrier_decl.time = ScaledTime()  # type: ignore[assignment]  # stands in for the module


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

    def send_to_targets(self: Any, original_event: EventMessageType, transform_input: bool = True) -> None:
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
            lambda_invoker(target["Arn"], event)  # an `Event` invocation: queued, the call returns at once

    events_models.Rule.send_to_targets = send_to_targets


def fix_context_start_time_iso() -> None:
    """`$$.Execution.StartTime` is a Python datetime, not an ISO 8601 string.

    Passing it to a service integration (DynamoDB putItem) fails with "Object
    of type datetime is not JSON serializable"; on AWS it is a string in UTC with
    milliseconds and `Z` (`2026-11-30T11:05:12.123Z`).
    """
    from datetime import datetime

    from moto.stepfunctions.parser.backend import execution_worker

    original = execution_worker.ExecutionWorker._get_evaluation_environment

    def get_evaluation_environment(self: Any) -> Any:
        env = original(self)
        execution = env.states.context_object.context_object_data["Execution"]
        if isinstance(execution.get("StartTime"), datetime):
            execution["StartTime"] = _aws_timestamp(execution["StartTime"])
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
                                   f"{source.name} is the dead-letter queue of {len(origins)} queues; "
                                   "name DestinationArn")
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

    # Actions moto's SQS lacks, added to its response class:
    SQSResponse.start_message_move_task = start_message_move_task  # type: ignore[attr-defined]
    SQSResponse.list_message_move_tasks = list_message_move_tasks  # type: ignore[attr-defined]


def fix_lambda_async_invocation() -> None:
    """Async invocations (`InvocationType: Event`, SNS) run inside the caller's request, once.

    moto runs the function synchronously whatever the invocation type and has no
    retries, no DeadLetterConfig and no on-failure destination, so a failing
    start function or Slack notice vanished. Lambda queues the event, retries it
    twice and then dead-letters it; the twin's `AsyncInvoker` does that.
    """
    from moto.awslambda import models as lambda_models

    original = lambda_models.LambdaFunction.invoke

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        if (request_headers or {}).get("x-amz-invocation-type") != "Event":
            return original(self, body, request_headers, response_headers)
        event = json.loads(body) if body else {}
        response_headers["x-amzn-requestid"] = _executors["lambda"].invoke_async(self.function_name, event)
        return ""

    def send_sns_message(self: Any, function_name: str, message: str, subject: str | None = None,
                         qualifier: str | None = None) -> None:
        import uuid
        from datetime import UTC, datetime

        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record = {"EventVersion": "1.0", "EventSource": "aws:sns",
                  "Sns": {"Type": "Notification", "MessageId": str(uuid.uuid4()), "Message": message,
                          "Subject": subject, "Timestamp": now, "MessageAttributes": {}}}
        _executors["lambda"].invoke_async(function_name, {"Records": [record]})

    lambda_models.LambdaFunction.invoke = invoke
    lambda_models.LambdaBackend.send_sns_message = send_sns_message


def fix_stepfunctions_status_events() -> None:
    """Executions never send "Step Functions Execution Status Change" events to EventBridge.

    On AWS every status change of a STANDARD execution (RUNNING, SUCCEEDED,
    FAILED, TIMED_OUT, ABORTED) reaches the default event bus; threadline's
    finaliser rule depends on it to close runs that ended outside the state
    machine's own failure path. Send them from the moment moto records the status.
    """
    from moto.stepfunctions.parser.backend import execution as execution_module

    original_start = execution_module.Execution.start
    original_terminated = execution_module.BaseExecutionWorkerCommunication.terminated

    def start(self: Any) -> None:
        _put_status_event(self, "RUNNING")  # before the worker starts: a quick run cannot overtake it
        original_start(self)

    def terminated(self: Any) -> None:
        with _status_events:
            _status_events.in_flight += 1
        try:
            original_terminated(self)  # from here on, DescribeExecution answers the end
            _put_status_event(self.execution)
        finally:
            with _status_events:
                _status_events.in_flight -= 1
                _status_events.ended += 1
                _status_events.notify_all()

    execution_module.Execution.start = start
    execution_module.BaseExecutionWorkerCommunication.terminated = terminated


def fix_stop_before_interpreter_starts() -> None:
    """StopExecution just after StartExecution answers 500, and the execution runs on.

    moto starts an execution's interpreter on a thread of its own. Until it has
    made the execution's environment and entered the first state, moto's
    `ExecutionWorker.stop` reads an environment that is None (an AttributeError,
    answered as a 500), or finds no running program to stop. Step Functions stops
    such an execution as any other. The stop now waits for the interpreter to
    enter its first state (milliseconds), then stops it; an interpreter that has
    not started within INTERPRETER_START_WAIT_S is left to moto's own answer.
    """
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original: Callable[..., Any] = ExecutionWorker.stop

    def interpreting(worker: Any) -> bool:
        env = worker.env
        return env is not None and env.program_state() is not None

    def stop(self: Any, stop_date: Any, error: str | None, cause: str | None) -> None:
        deadline = time.monotonic() + INTERPRETER_START_WAIT_S
        while not interpreting(self) and time.monotonic() < deadline:
            time.sleep(0.005)
        original(self, stop_date=stop_date, error=error, cause=cause)

    ExecutionWorker.stop = stop


def fix_timed_out_stop_date() -> None:
    """DescribeExecution of a TIMED_OUT execution has no stopDate.

    moto answers stopDate for SUCCEEDED, FAILED and ABORTED executions only,
    although it records when a timed-out one ended; Step Functions gives every
    execution that has ended its stopDate. Without it, a timed-out run has no
    duration, in `threadline runs` or in the file the twin keeps of it.
    """
    from moto.stepfunctions import responses

    original: Callable[..., Any] = responses.StepFunctionResponse.describe_execution

    def describe_execution(self: Any) -> Any:
        answer = original(self)
        described = answer.result
        if str(getattr(described.get("status"), "value", described.get("status"))) == "TIMED_OUT" \
                and "stopDate" not in described:
            stopped = self.stepfunction_backend.describe_execution(self._get_param("executionArn")).stop_date
            if stopped is not None:
                described["stopDate"] = stopped
        return answer

    responses.StepFunctionResponse.describe_execution = describe_execution


def fix_batch_sync_terminate_on_stop() -> None:
    """A `.sync` Batch task that times out, or whose execution is stopped, leaves its job running.

    Step Functions calls TerminateJob when a `batch:submitJob.sync` task ends
    without the job (its TimeoutSeconds, or StopExecution); that is why the
    role needs `batch:TerminateJob`. moto stops polling and forgets the job,
    which then holds its queue for as long as it runs. Terminate it.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_batch as batch_module,
    )
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    service = batch_module.StateTaskServiceBatch
    original_build: Callable[..., Any] = service._build_sync_resolver  # Batch's always builds a resolver

    def build_sync_resolver(self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict,
                            state_credentials: Any) -> Any:
        job_id = env.stack[-1]["JobId"]
        resolver = original_build(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        client = boto_client_for(service="batch", region=resource_runtime_part.region,
                                 state_credentials=state_credentials)

        def resolve() -> Any:
            return resolver()

        resolve.terminate = lambda reason: client.terminate_job(jobId=job_id, reason=reason)  # type: ignore[attr-defined]
        return resolve

    def eval_sync(self: Any, env: Any, sync_resolver: Any, timeout_seconds: Any, callback_endpoint: Any,
                  heartbeat_endpoint: Any) -> Any:
        outcome = super(service, self)._eval_sync(env, sync_resolver, timeout_seconds, callback_endpoint,
                                                  heartbeat_endpoint)
        if not outcome and not env.is_running() and hasattr(sync_resolver, "terminate"):
            sync_resolver.terminate("Step Functions task ended before the job: timed out or execution stopped")
        return outcome

    service._build_sync_resolver = build_sync_resolver
    service._eval_sync = eval_sync


def put_batch_job_state_event(job: Any) -> None:
    """A "Batch Job State Change" event for the job's new status, as Batch sends to EventBridge.

    moto's Batch sends none (its jobs run in Docker, or not at all); the twin's
    executor calls this on every status change, of a job and of each node
    `<jobId>#<N>` of a multi-node job (`batch_node_jobs.NodeJob`, which
    describes itself as Batch does). The detail is the job's DescribeJobs
    description (camelCase), as on AWS.
    """
    import logging

    from moto.events.models import events_backends

    try:
        detail = job.describe()
        detail["status"] = job.status
        events_backends[job.backend.account_id][job.backend.region_name].put_events([{
            "Source": "aws.batch", "DetailType": "Batch Job State Change",
            "Detail": json.dumps(detail, default=str), "Resources": [job.arn]}])
    except Exception:  # delivery never fails the job, as on AWS
        logging.getLogger("threadline.twin").exception("job state event of %s not sent", job.job_id)


def fix_batch_sync_poll_resilience() -> None:
    """One failed DescribeJobs poll of a `.sync` Batch task fails the whole execution.

    moto's poll lets any error escape; Step Functions' own poller of the job never
    shows its callers a transient failure (a timeout, a throttle, a 5xx). Under a
    hundred concurrent runs the twin's endpoint answers slowly and every such poll
    ended its run in `States.Runtime`. A transient error now means "poll again";
    the interval also backs off towards 1 s for long jobs, so that many waiting
    tasks do not flood the endpoint. The back-off is a sleep that a job's end
    ends, as the poll's own sleep is (`moto_speedups.sleep_until_job_end`).
    """
    from botocore.exceptions import BotoCoreError, ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_batch as batch_module,
    )

    service = batch_module.StateTaskServiceBatch
    built: Callable[..., Any] = service._build_sync_resolver  # Batch's always builds a resolver

    def build_sync_resolver(self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict,
                            state_credentials: Any) -> Any:
        resolver = built(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        polls = 0

        def resolve() -> Any:
            nonlocal polls
            polls += 1
            if polls > 7:  # after about a second of polls
                moto_speedups.sleep_until_job_end(min(0.85, 0.03 * (polls - 7)))
            try:
                return resolver()
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if status >= 500 or status == 429 or "Throttl" in str(exc.response.get("Error", {}).get("Code")):
                    return None
                raise
            except BotoCoreError:  # connection refused or timed out: the endpoint is busy, not the job
                return None

        if hasattr(resolver, "terminate"):
            resolve.terminate = resolver.terminate  # type: ignore[attr-defined]
        return resolve

    service._build_sync_resolver = build_sync_resolver


class _InFlight(threading.Condition):
    in_flight = 0  # executions whose end is visible and whose status event is not on the bus yet
    ended = 0  # executions ended in this process so far


_status_events = _InFlight()


def status_events_sent(timeout: float) -> bool:
    """Wait until every execution whose end can be seen has had its status event put on the bus.

    moto shows an execution's end a moment before the status event leaves
    (the event carries the end's status, date and output), so a caller that saw
    the end and then waits for what the event starts (the finaliser) waits here
    first. False on timeout.
    """
    with _status_events:
        return _status_events.wait_for(lambda: _status_events.in_flight == 0, timeout)


def executions_ended() -> int:
    """How many executions have ended in this process so far (for `wait_for_execution_end`)."""
    with _status_events:
        return _status_events.ended


def wait_for_execution_end(seen: int, timeout: float) -> int:
    """Until some execution ends after `seen` ends were counted, or `timeout`; the count then.

    What a waiter for one execution sleeps on between its DescribeExecution calls,
    instead of polling: its end, or any other, wakes it at once.
    """
    with _status_events:
        _status_events.wait_for(lambda: _status_events.ended != seen, timeout)
        return _status_events.ended


def _put_status_event(execution: Any, status: str | None = None) -> None:
    """One EventBridge event for the execution's status (its current one by default), shaped as AWS sends it."""
    import logging

    from moto.events.models import events_backends

    def millis(moment: Any) -> int | None:
        return int(moment.timestamp() * 1000) if moment is not None else None

    def text(value: Any) -> str | None:
        return value if value is None or isinstance(value, str) else json.dumps(value)

    status = status or (execution.exec_status.value if execution.exec_status is not None else "RUNNING")
    detail = {
        "executionArn": execution.exec_arn, "stateMachineArn": execution.state_machine.arn,
        "name": execution.name, "status": status, "startDate": millis(execution.start_date),
        "stopDate": millis(getattr(execution, "stop_date", None)) if status != "RUNNING" else None,
        "input": text(execution.input_data), "inputDetails": {"included": True},
        "output": text(execution.output) if status == "SUCCEEDED" else None,
        "outputDetails": {"included": True} if status == "SUCCEEDED" else None,
        "error": text(execution.error), "cause": text(execution.cause),
    }
    try:
        events_backends[execution.account_id][execution.region_name].put_events([{
            "Source": "aws.states", "DetailType": "Step Functions Execution Status Change",
            "Detail": json.dumps(detail), "Resources": [execution.exec_arn]}])
    except Exception:  # delivery never fails the execution, as on AWS
        logging.getLogger("threadline.twin").exception("status event of %s not sent", execution.exec_arn)


def fix_batch_concurrent_describe() -> None:
    """`describe_jobs` iterates the backend's live dict of jobs while other requests add to it.

    With a few dozen executions at once, a `.sync` poll's `DescribeJobs` meets a
    concurrent `SubmitJob` and fails with "dictionary changed size during
    iteration" (HTTP 500); Step Functions then ends the run in States.Runtime
    (KeyError 'RequestId'). Describe from a snapshot of the jobs, one job at a
    time, so that the environment copy of `batch_environment_mutation` is never
    interleaved. (`list_jobs` already copies the queue's list in one step.)
    """
    from moto.batch import models as batch_models

    from .batch_node_jobs import describe_node

    describing = threading.Lock()

    def describe_jobs(self: Any, jobs: list[str] | None) -> list[dict[str, Any]]:
        wanted = set(jobs or ())
        result = []
        known = self._jobs.copy()
        for job_id, job in known.items():
            if wanted and job_id not in wanted and job.arn not in wanted:
                continue
            with describing:
                result.append(job.describe())
        for node_id in sorted(w for w in wanted if "#" in w):  # a multi-node job's node `<jobId>#<N>`
            parent = known.get(node_id.rsplit("/", 1)[-1].partition("#")[0])
            with describing:
                node = describe_node(parent, node_id) if parent is not None else None
            if node is not None:
                result.append(node)
        return result

    batch_models.BatchBackend.describe_jobs = describe_jobs


_TERMINAL_ERRORS = frozenset({"States.Runtime", "States.DataLimitExceeded"})


def fix_states_all_terminal_errors() -> None:
    """`States.ALL` catches and retries States.Runtime and States.DataLimitExceeded.

    On AWS the wildcard matches neither: both end the execution unless a Retry or
    Catch names them. moto's `ErrorEqualsDecl` matches any error for States.ALL,
    so a failing intrinsic or an oversized result quietly took the Catch path.
    """
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl

    original = ErrorEqualsDecl._eval_body
    wildcard = ErrorEqualsDecl._STATE_ALL_ERROR

    def eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        if wildcard in self.error_names and getattr(error_name, "error_name", None) in _TERMINAL_ERRORS:
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)

    ErrorEqualsDecl._eval_body = eval_body


MAX_PAYLOAD_BYTES = 262_144


def _payload_bytes(value: Any) -> int:
    """The size Step Functions' 256 KiB quota counts: the UTF-8 bytes of the value's JSON."""
    from moto.stepfunctions.parser.asl.utils.encoding import _DateTimeEncoder

    text = json.dumps(value, cls=_DateTimeEncoder, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8", "surrogatepass"))


def fix_payload_size_limit() -> None:
    """The 256 KiB payload quota is measured wrongly and not checked after `Parameters`.

    moto counts a value's JSON with blanks after separators and non-ASCII text as
    `\\uXXXX` escapes (a string it counts without its JSON quotes), and fails at
    exactly 262,144 bytes; a state's input after `Parameters` is never checked, so
    a Task whose Parameters build a 300 KB request runs. AWS reports
    States.DataLimitExceeded when a state's input after Parameters, its output or
    a task's result exceeds 262,144 bytes of UTF-8 JSON.
    """
    from moto.stepfunctions.parser import quotas
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common import parargs as parargs_module
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state import state as state_module
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    def is_within_size_quota(value: Any) -> bool:
        return _payload_bytes(value) <= MAX_PAYLOAD_BYTES

    importers: tuple[Any, ...] = (quotas, state_module, state_task_service, state_task_lambda)
    for module in importers:
        module.is_within_size_quota = is_within_size_quota

    original = parargs_module.Parargs._eval_body

    def eval_body(self: Any, env: Any) -> None:
        original(self, env)
        if is_within_size_quota(env.stack[-1]):
            return
        error = StatesErrorNameType.StatesStatesDataLimitExceeded
        raise FailureEventException(failure_event=FailureEvent(
            env=env, error_name=StatesErrorName(typ=error), event_type=HistoryEventType.TaskFailed,
            # moto declares EventDetails total, yet builds each with the one key that applies, as here.
            event_details=EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails(  # type: ignore[typeddict-item]
                error=error.to_name(),
                cause=f"The state input after Parameters processing has a size exceeding "
                      f"the maximum number of bytes service limit ({MAX_PAYLOAD_BYTES}).",
            ))))

    parargs_module.Parargs._eval_body = eval_body


def _aws_timestamp(moment: Any) -> str:
    """A datetime (or an ISO 8601 string) as Step Functions writes one: `2026-11-30T11:05:12.123Z`."""
    from datetime import UTC, datetime

    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fix_context_entered_time_format() -> None:
    """`$$.State.EnteredTime` has microseconds and `+00:00` (`.isoformat()`).

    AWS writes milliseconds and `Z`; code that parses or compares the text (or
    stores it next to AWS-written times) sees the difference.
    """
    from moto.stepfunctions.parser.asl.component.state import state as state_module

    original = state_module.CommonStateField._eval_state_input

    def eval_state_input(self: Any, env: Any) -> None:
        data = env.states.context_object.context_object_data.get("State")
        if data and data.get("EnteredTime"):
            data["EnteredTime"] = _aws_timestamp(data["EnteredTime"])
        original(self, env)

    state_module.CommonStateField._eval_state_input = eval_state_input


def fix_s3_eventbridge_etag() -> None:
    """S3's EventBridge events spell the object's ETag `eTag`.

    AWS writes `detail.object.etag` in the EventBridge events of S3 (`eTag` is the
    spelling of S3's direct notifications to SQS, SNS and Lambda, which moto gets
    right); a rule pattern or a function reading `etag` found nothing. Every
    `aws.s3` event reaches the rules through `Rule.send_to_targets`, so the key is
    renamed there, before the pattern is matched. (Only AWS services may put
    events with an `aws.` source, so no event of a user's is rewritten.)
    """
    from moto.events import models as events_models

    original = events_models.Rule.send_to_targets

    def send_to_targets(self: Any, original_event: EventMessageType, transform_input: bool = True) -> None:
        detail = original_event.get("detail") if original_event.get("source") == "aws.s3" else None
        obj = detail.get("object") if isinstance(detail, dict) else None
        if isinstance(detail, dict) and isinstance(obj, dict) and "eTag" in obj and "etag" not in obj:
            renamed = {("etag" if key == "eTag" else key): value for key, value in obj.items()}
            original_event = {**original_event, "detail": {**detail, "object": renamed}}
        original(self, original_event, transform_input)

    events_models.Rule.send_to_targets = send_to_targets


def fix_batch_share_identifier() -> None:
    """SubmitJob drops `shareIdentifier` and `schedulingPriorityOverride`; DescribeJobs never shows them.

    On AWS a job on a queue with a fair-share scheduling policy must name its
    share and a job on a FIFO queue must not (ClientException); the scheduler
    orders the queue's jobs by share and priority, and DescribeJobs reports both.
    Keep them on the job (the twin's scheduler reads `share_identifier` and
    `scheduling_priority`), refuse what Batch refuses, and describe them. The
    ASL interpreter also drops a `batch:submitJob` Task's `ShareIdentifier` and
    `SchedulingPriorityOverride` (its list of Task parameters predates them): pass them.
    """
    from moto.batch import models as batch_models, responses as batch_responses
    from moto.batch.exceptions import ClientException
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_batch as batch_task,
    )

    batch_task._SUPPORTED_API_PARAM_BINDINGS["submitjob"] |= {"ShareIdentifier", "SchedulingPriorityOverride"}

    submitting = threading.local()  # the job that the SubmitJob now being handled creates
    original_submit = batch_responses.BatchResponse.submitjob
    original_init = batch_models.Job.__init__
    original_describe = batch_models.Job.describe

    def submitjob(self: Any) -> str:
        share, priority = self._get_param("shareIdentifier"), self._get_param("schedulingPriorityOverride")
        queue = self.batch_backend.get_job_queue(self._get_param("jobQueue"))
        if queue is not None and queue.schedule_policy and not share:
            raise ClientException(f"Job queue {queue.name} has a fair-share scheduling policy: "
                                  "shareIdentifier is required")
        if queue is not None and not queue.schedule_policy and (share or priority is not None):
            raise ClientException(f"Job queue {queue.name} has no scheduling policy: "
                                  "shareIdentifier and schedulingPriorityOverride are not allowed")
        submitting.share = (share, priority)
        try:
            return original_submit(self)
        finally:
            submitting.share = None

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        share, priority = getattr(submitting, "share", None) or (None, None)
        self.share_identifier = share
        self.scheduling_priority = int(priority) if priority is not None else None

    def describe(self: Any) -> dict[str, Any]:
        result = original_describe(self)
        if getattr(self, "share_identifier", None):
            result["shareIdentifier"] = self.share_identifier
        if getattr(self, "scheduling_priority", None) is not None:
            result["schedulingPriority"] = self.scheduling_priority
        return result

    batch_responses.BatchResponse.submitjob = submitjob
    batch_models.Job.__init__ = init
    batch_models.Job.describe = describe


def fix_batch_ecs_properties() -> None:
    """RegisterJobDefinition drops `ecsProperties`: a multi-container `container` job is refused.

    moto knows `containerProperties` and `eksProperties` only, so it answers
    "containerProperties or eksProperties must be provided" (a multi-node job's
    node ranges keep theirs: moto stores `nodeProperties` as given). Keep the
    task on the job definition (`ecs_properties`, which the twin's runtime runs),
    check it as Batch does, describe it, and describe a job's containers with
    the exit codes and reasons of its latest attempt (`ecsProperties.taskProperties`).
    """
    from moto.batch import models as batch_models, responses as batch_responses
    from moto.batch.exceptions import ClientException

    from .batch_node_jobs import described_ecs_properties

    registering = threading.local()  # the ecsProperties of the RegisterJobDefinition now being handled
    original_register = batch_responses.BatchResponse.registerjobdefinition
    original_init = batch_models.JobDefinition.__init__
    original_validate = batch_models.JobDefinition._validate
    original_definition_describe = batch_models.JobDefinition.describe
    original_container_details = batch_models.Job._container_details
    original_job_describe = batch_models.Job.describe

    def registerjobdefinition(self: Any) -> str:
        registering.ecs = self._get_param("ecsProperties")
        try:
            return original_register(self)
        finally:
            registering.ecs = None

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        ecs = getattr(registering, "ecs", None)
        self.ecs_properties = copy.deepcopy(ecs) if ecs else None
        original_init(self, *args, **kwargs)

    def validate(self: Any) -> None:
        if self.type == "container" and self.container_properties is None and self.ecs_properties:
            tasks = self.ecs_properties.get("taskProperties") or []
            if len(tasks) != 1 or not tasks[0].get("containers"):
                raise ClientException("ecsProperties must hold one taskProperties entry with containers")
            if any("image" not in container or "name" not in container for container in tasks[0]["containers"]):
                raise ClientException("every container of ecsProperties.taskProperties must have a name and an image")
            return
        original_validate(self)

    def definition_describe(self: Any) -> dict[str, Any]:
        result = original_definition_describe(self)
        if getattr(self, "ecs_properties", None):
            result["ecsProperties"] = copy.deepcopy(self.ecs_properties)
        return result

    def container_details(self: Any) -> dict[str, Any]:
        if self.job_definition.container_properties is None:  # multi-container: see ecsProperties
            return {"logStreamName": self.log_stream_name} if self.log_stream_name else {}
        return original_container_details(self)

    def job_describe(self: Any) -> dict[str, Any]:
        result = original_job_describe(self)
        ecs = getattr(self.job_definition, "ecs_properties", None)
        if ecs and self.job_definition.type == "container":
            tasks = self.attempts[-1].get("taskProperties") if self.attempts else None
            result["ecsProperties"] = described_ecs_properties(ecs, tasks)
        return result

    batch_responses.BatchResponse.registerjobdefinition = registerjobdefinition
    batch_models.JobDefinition.__init__ = init
    batch_models.JobDefinition._validate = validate
    batch_models.JobDefinition.describe = definition_describe
    batch_models.Job._container_details = container_details
    batch_models.Job.describe = job_describe


def _too_many_requests_error() -> type:
    from moto.core.exceptions import JsonRESTError

    class TooManyRequests(JsonRESTError):
        code = 429

        def __init__(self, message: str) -> None:
            super().__init__("TooManyRequestsException", message)

    return TooManyRequests


_TooManyRequests = _too_many_requests_error()


def _submit_errors() -> dict[str, Callable[[], Exception]]:
    """What SubmitJob answers under each submit fault: the error codes and texts of Batch's API."""
    from moto.core.exceptions import JsonRESTError

    def error(code: str, status: int, message: str) -> Callable[[], Exception]:
        def make() -> Exception:
            exc = JsonRESTError(code, message)
            exc.code = status
            return exc
        return make

    return {
        "submit-throttle": error("TooManyRequestsException", 429, "Too Many Requests"),
        "submit-server-error": error("ServerException", 500, "An internal error occurred; try again later."),
        "submit-client-error": error("ClientException", 400,
                                     "Job queue is not in a VALID state and cannot accept jobs."),
    }


SUBMIT_ERRORS = _submit_errors()


def route_lambda_invoke(executor: LambdaExecutor) -> None:
    """Seam: moto runs Lambda handlers in Docker; the twin runs them as local processes."""
    from moto.awslambda import models as lambda_models

    def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        try:
            return executor.invoke(self.function_name, event if event is not None else {})
        except LambdaThrottled as exc:  # the API answers 429, as Lambda does when throttling
            raise _TooManyRequests(str(exc)) from None

    lambda_models.LambdaFunction._invoke_lambda = invoke_lambda


def route_batch_jobs(executor: BatchExecutor) -> None:
    """Seam: moto runs Batch jobs in Docker; the twin runs the job's command locally."""
    from moto.batch import models as batch_models

    def run(self: Any) -> None:
        executor.run(self)

    batch_models.Job.run = run
    if not hasattr(batch_models.BatchBackend, "_threadline_submit_job"):
        # moto's own submit_job, kept on the class so that a second apply() wraps it, not the wrapper
        batch_models.BatchBackend._threadline_submit_job = batch_models.BatchBackend.submit_job  # type: ignore[attr-defined]
    submits: dict[str, int] = {}
    counting = threading.Lock()

    def submit_job(self: Any, job_name: str, job_def_id: str, job_queue: str, *args: Any, **kwargs: Any) -> Any:
        """Submit faults: SubmitJob itself answers an error, as Batch's API does under load or misuse."""
        with counting:
            submits[job_name] = attempt = submits.get(job_name, 0) + 1
        definition = job_def_id.rsplit("/", 1)[-1].split(":")[0]
        queue = job_queue.rsplit("/", 1)[-1]
        parameters = kwargs.get("parameters") or {}
        fault = executor.faults.find((definition, job_name), (queue, *executor.queue_aliases(queue)), attempt,
                                     parameters.get("run_id"))
        if fault is not None and fault.kind in SUBMIT_ERRORS:
            raise SUBMIT_ERRORS[fault.kind]()
        return batch_models.BatchBackend._threadline_submit_job(self, job_name, job_def_id, job_queue,  # type: ignore[attr-defined]
                                                                *args, **kwargs)

    batch_models.BatchBackend.submit_job = submit_job


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
        _executors["lambda"] = lambda_executor
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
            "lambda_async_invocation": fix_lambda_async_invocation,
            "stepfunctions_status_events": fix_stepfunctions_status_events,
            "batch_sync_terminate_on_stop": fix_batch_sync_terminate_on_stop,
            "batch_sync_poll_resilience": fix_batch_sync_poll_resilience,
            "retry_wait_scale": fix_retry_wait_scale,
            "lambda_invocation_type": fix_lambda_invocation_type,
            "schedule_rules_ignore_bus_events": fix_schedule_rules_ignore_bus_events,
            "batch_concurrent_describe": fix_batch_concurrent_describe,
            "states_all_terminal_errors": fix_states_all_terminal_errors,
            "payload_size_limit": fix_payload_size_limit,
            "context_entered_time_format": fix_context_entered_time_format,
            "s3_eventbridge_etag": fix_s3_eventbridge_etag,
            "batch_share_identifier": fix_batch_share_identifier,
            "batch_ecs_properties": fix_batch_ecs_properties,
            "stop_before_interpreter_starts": fix_stop_before_interpreter_starts,
            "timed_out_stop_date": fix_timed_out_stop_date,
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
