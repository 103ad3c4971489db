"""The offline twin: moto on 127.0.0.1, the template provisioned, executors plugged in.

One twin per process (moto's Step Functions interpreter finds the server
through the process-wide `MOTO_PORT`).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from threadline_common.slack_backoff import BACKOFF_SCALE_ENV

from ..deploy.images import BUILD_CONTEXT, twin_digest_parameters
from . import heap, moto_fixes, moto_speedups
from .alarms import SqsAlarmEvaluator
from .batch_runtime import LocalBatchRuntime
from .event_sources import VISIBILITY_SCALE, EventSourcePoller
from .execution_store import ExecutionStore
from .faults import FaultPlan
from .in_process import InProcessTransport
from .lambda_async import RETRY_DELAYS_S
from .lambda_runtime import LocalLambdaRuntime
from .moto_dispatch import MotoDispatch
from .provisioning import Provisioned, Provisioner
from .queue_store import QueueStore
from .readiness import ReadinessGate
from .s3_store import S3Store
from .schedules import ScheduleRunner
from .table_store import TableStore
from .template_cache import translated_template
from .twin_state import TwinState

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
PROJECT_ROOT = Path(__file__).resolve().parents[3]


TWIN_USER_AGENT = "threadline-twin"  # of the twin's own calls (`_shared_session`)


@functools.cache
def _shared_loader() -> Any:
    """One botocore data loader for the whole process (made once, then handed to every new session).

    moto, the Step Functions interpreter and the twin's own clients would each
    parse the same multi-megabyte service models again: moto's EC2 alone makes
    four throwaway sessions at import, each parsing EC2's model and the endpoint
    list. Sharing the loader saves seconds at start-up. A session given its own
    data path (AWS_DATA_PATH) still gets a loader of its own. The shared loader
    reads the files it has decoded before from the start cache (botocore_data.py).
    """
    import botocore.loaders
    import botocore.session
    import moto.core.utils

    from .botocore_data import CachedJSONFileLoader

    loader = botocore.loaders.create_loader()
    loader.file_loader = CachedJSONFileLoader()
    own_loader = botocore.session.create_loader

    def create_loader(search_path_string: str | None = None) -> Any:
        return own_loader(search_path_string) if search_path_string else loader

    botocore.session.create_loader = create_loader
    moto.core.utils.create_loader = lambda *args, **kwargs: loader
    return loader


def _shared_session() -> boto3.Session:
    """A session of the twin's own, on the process's one data loader (`_shared_loader`).

    Its clients send a fixed User-Agent: botocore builds its default one for every
    request from a dozen parts (about 0.5 ms a call, a tenth of the twin's own
    calls' client side), and moto reads no more from it than the region, which
    it then takes from the signature, as from botocore's default.
    """
    import botocore.session
    from botocore.config import Config

    loader = _shared_loader()

    def core_session() -> botocore.session.Session:
        core = botocore.session.get_session()
        core.register_component("data_loader", loader)
        core.set_default_client_config(Config(user_agent=TWIN_USER_AGENT))
        return core

    boto3.setup_default_session(botocore_session=core_session())
    return boto3.Session(botocore_session=core_session(), aws_access_key_id="testing",
                         aws_secret_access_key="testing", region_name=REGION)


def _all_at_once(steps: list[Callable[[], None] | None]) -> None:
    """Run each step on a thread of its own and wait for all; then raise the first step's error, if any."""
    errors: list[BaseException] = []

    def run(step: Callable[[], None]) -> None:
        try:
            step()
        except BaseException as exc:  # raised below, once every step has ended
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(step,), name="twin-stop", daemon=True) for step in steps if step]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _wait_until_ended(sfn: Any, execution_arns: list[str], timeout: float) -> None:
    """Until each stopped execution shows its end: its worker ends it a moment after StopExecution returns."""
    deadline = time.monotonic() + timeout
    ends_seen = moto_fixes.executions_ended()
    for arn in execution_arns:
        while (sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
               and time.monotonic() < deadline):
            ends_seen = moto_fixes.wait_for_execution_end(ends_seen, max(0.0, deadline - time.monotonic()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVER_POLL_S = 0.05  # how often moto's server loop looks for a stop (socketserver's default: 0.5 s)


def _moto_server(port: int) -> Any:
    """moto's threaded server on 127.0.0.1, whose loop notices a stop within SERVER_POLL_S."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class TwinMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            self._server = make_server(self._ip_address, self._port, DomainDispatcherApplication(create_backend_app),
                                       True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=SERVER_POLL_S)

    return TwinMotoServer(ip_address="127.0.0.1", port=port, verbose=False)


@dataclass
class TwinConfig:
    root: Path = PROJECT_ROOT
    workdir: Path = field(default_factory=lambda: Path.cwd() / ".threadline")
    port: int = 0
    stack_name: str = "threadline"
    parameters: dict[str, Any] = field(default_factory=dict)
    slack_webhook_url: str = ""  # empty: the local Slack stand-in, which writes each message to the outbox
    warm_job_processes: bool = True  # fork job processes from a warm interpreter (False: start each cold)
    async_retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S  # waits before Lambda's async retries
    slack_backoff_scale: float = 1.0  # the Slack function's waits between webhook retries (1: as deployed)
    sqs_visibility_scale: float = VISIBILITY_SCALE  # event-source queues' visibility timeouts


class Twin:
    """Start with `Twin(config).start()`; use `client()`; `stop()` when done."""

    def __init__(self, config: TwinConfig | None = None) -> None:
        self.config = config or TwinConfig()
        self.faults = FaultPlan()
        self.port = self.config.port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.workdir = self.config.workdir
        self.outbox = self.workdir / "slack-outbox"
        self.provisioned = Provisioned()
        self._server: Any = None
        self._neptune: Any = None
        self._slack: Any = None
        self._openlineage: Any = None
        self.session = _shared_session()
        self._clients: dict[str, Any] = {}
        self.lambda_runtime: LocalLambdaRuntime | None = None
        self.batch_runtime: LocalBatchRuntime | None = None
        self.event_sources: EventSourcePoller | None = None
        self.alarms: SqsAlarmEvaluator | None = None
        self.schedules: ScheduleRunner | None = None
        self.gate: ReadinessGate | None = None
        self._warm_up: threading.Thread | None = None
        self.state: TwinState | None = None
        self.executions: ExecutionStore | None = None
        self.s3_store = S3Store(self.workdir, ACCOUNT_ID)
        self.restored: dict[str, int] = {}  # what the workdir gave back at start: objects, items, messages
        self.state_problems: list[str] = []  # state files that could not be restored, and why

    # -- life cycle --------------------------------------------------------------

    def start(self, skip_fixes: tuple[str, ...] = ()) -> Twin:
        with heap.start_without_collections():
            return self._start(skip_fixes)

    def _start(self, skip_fixes: tuple[str, ...]) -> Twin:
        from .graph_store import GraphStore, graph_path
        from .neptune_standin import NeptuneStandin
        from .openlineage_receiver import OpenLineageReceiver
        from .slack_standin import SlackStandin

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per API call
        # The interpreter logs every failed state as an exception; the history has it already.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.outbox.mkdir(parents=True, exist_ok=True)
        os.environ["MOTO_PORT"] = str(self.port)
        # Nothing in the twin reads EC2's ~1,300 default AMIs, which moto makes on EC2's first call
        # (about 0.1 s of every start): docs/twin.md, "Differences from AWS". "true" keeps them.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        moto_speedups.install()
        heap.exit_without_final_collection()
        self._server = _moto_server(self.port)
        self._server.start()
        self.gate = ReadinessGate(self._server._server.app)
        self._server._server.app = self.gate  # nothing but the twin's own calls until `gate.open()`
        self.session.events.register("request-created", self.gate.sign)
        # The twin's own calls (provisioning, pollers, run helpers) and its Step Functions
        # interpreter's skip the socket: in_process.py.
        transport = InProcessTransport(self.gate, self.endpoint_url, MotoDispatch(self.gate.app), self.gate.admits)
        self.session.events.register("before-send", transport)
        moto_speedups.hook_interpreter_clients([("request-created", self.gate.sign), ("before-send", transport)])
        self._configure_moto({"stepfunctions": {"execute_state_machine": True}})
        self._graph = GraphStore(graph_path(self.workdir))
        self._neptune = NeptuneStandin(self._graph).start()
        self._slack = SlackStandin(self.outbox).start()
        self._openlineage = OpenLineageReceiver(self.workdir / "openlineage").start()
        executor_env = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_NEPTUNEDATA": self._neptune.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
        function_env = {**executor_env, BACKOFF_SCALE_ENV: repr(self.config.slack_backoff_scale)}
        self.lambda_runtime = LocalLambdaRuntime(function_env, self.workdir / "logs" / "lambda", self.faults,
                                                 region=REGION)
        # The analysis's progress sidecar ships every 10 s on AWS; a twin analysis lasts about a second.
        job_env = {**executor_env, "THREADLINE_SIDECAR_INTERVAL_S": "0.5"}
        self.batch_runtime = LocalBatchRuntime(self.config.root, job_env,
                                               self.workdir / "logs" / "batch", self.faults)
        self.batch_runtime.start(warm=self.config.warm_job_processes)  # the zygote imports while we provision
        self.lambda_runtime.enable_async(self._send_to_queue).retry_delays_s = self.config.async_retry_delays_s
        self.batch_runtime.state_events = moto_fixes.put_batch_job_state_event
        moto_fixes.apply(self.lambda_runtime, self.batch_runtime, skip=skip_fixes)
        self._provision()
        self._restore_state()
        self.event_sources = EventSourcePoller(self.session, self.endpoint_url, REGION,
                                               visibility_scale=self.config.sqs_visibility_scale).start()
        self.alarms = SqsAlarmEvaluator(self.session, self.endpoint_url, REGION).start()
        self.schedules = ScheduleRunner(self.session, self.endpoint_url, REGION).start()
        self.gate.open()  # everything is wired: an upload from now on starts a run
        # What only a run needs (the definition's parse), while the first upload's event is on its way.
        self._warm_up = threading.Thread(target=self.provisioned.warm_up, name="twin-warm-up", daemon=True)
        self._warm_up.start()
        return self

    def _restore_state(self) -> None:
        """Put back what the workdir kept (S3 objects, DynamoDB items, messages, execution names) and keep it."""
        self.executions = ExecutionStore(self.workdir, self.client("stepfunctions"), self.state_machine_arn)
        tables = TableStore(self.workdir / "state" / "dynamodb.json", self.client("dynamodb"), ACCOUNT_ID, REGION)
        queues = QueueStore(self.workdir / "state" / "sqs.json", ACCOUNT_ID, REGION)
        self.restored = {"objects": self.s3_store.restore(self.state_problems),
                         "items": tables.restore(self.state_problems),
                         "messages": queues.restore(self.state_problems),
                         "executions": self.executions.restore(self.state_problems)}
        self.state = TwinState([self.s3_store, tables, self.executions, queues]).start()

    def stop(self) -> None:
        if self._warm_up is not None:
            self._warm_up.join()  # before moto's state goes
            self._warm_up = None
        if self.schedules is not None:  # no scheduled invocations while the runs close
            self.schedules.stop()
            self.schedules = None
        self.close_running_runs()
        if self.state is not None:
            self.state.stop()  # the last save, with the runs just closed
            self.state = None
        if self.executions is not None:
            self.executions.forget()  # moto forgets too: a later twin here remembers its own workdir's
        if self.alarms is not None:
            self.alarms.stop()
            self.alarms = None
        if self.event_sources is not None:
            self.event_sources.stop()
            self.event_sources = None
        # The rest shut down independently, each waiting for its own threads or processes to notice: at once.
        _all_at_once([self.lambda_runtime.close if self.lambda_runtime is not None else None,
                      self.batch_runtime.close if self.batch_runtime is not None else None,
                      self._stop_neptune if self._neptune is not None else None,
                      self._slack.stop if self._slack is not None else None,
                      self._openlineage.stop if self._openlineage is not None else None])
        self._neptune = self._slack = self._openlineage = None
        moto_speedups.hook_interpreter_clients([])  # a later twin in this process gets clients of its own
        if self._server is not None:
            self._reset_moto()  # moto's backends are per process: a later twin here starts empty
            self._server.stop()
            self._server = None
        heap.thaw()

    def _stop_neptune(self) -> None:
        assert self._neptune is not None
        self._neptune.stop()
        self._graph.close()  # once no request can reach it

    def __enter__(self) -> Twin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def close_running_runs(self, timeout: float = 60.0) -> list[str]:
        """Stop every running execution and let the safety net close its run before the twin goes down.

        The twin's executions live in memory: stopped with the twin, a run would stay
        RUNNING in the lineage graph (which outlives it) and Slack would never hear of
        it. Each is stopped as a person would stop it (StopExecution); the finaliser
        then marks the record, records lineage and tells Slack, as for any abort.
        A twin killed outright (SIGKILL, a crash) cannot do this.
        """
        if self._server is None or not self.provisioned.physical_ids.get("PipelineStateMachine"):
            return []
        sfn = self.client("stepfunctions")
        stopped: dict[str, str] = {}  # name: ARN
        try:
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=self.state_machine_arn,
                                                                      statusFilter="RUNNING"):
                for execution in page["executions"]:
                    # moto_fixes.fix_stop_before_interpreter_starts: one just started is stopped too.
                    sfn.stop_execution(executionArn=execution["executionArn"], error="Twin.Stopped",
                                       cause="the offline twin was stopped while the run was going")
                    stopped[execution["name"]] = execution["executionArn"]
        except Exception:  # a twin that cannot answer any more cannot close its runs either
            logging.getLogger("threadline.twin").exception("could not stop the running executions")
            return list(stopped)
        if stopped:
            _wait_until_ended(sfn, list(stopped.values()), timeout)
            self.wait_for_async(timeout)
            if self.event_sources is not None:
                self.event_sources.wait_idle(timeout)
        return list(stopped)

    def _send_to_queue(self, queue_arn: str, body: str, attributes: dict[str, Any]) -> None:
        """Deliver to an SQS queue by ARN (Lambda's dead-letter queues and on-failure destinations)."""
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=body, **({"MessageAttributes": attributes} if attributes else {}))

    def wait_for_async(self, timeout: float = 30.0) -> bool:
        """True once every async Lambda invocation (notices, the finaliser) has finished or dead-lettered.

        Ended executions' status events are waited for first: an execution seen
        to have ended may not have sent the event that starts its finaliser yet.
        """
        invoker = self.lambda_runtime.async_invoker if self.lambda_runtime else None
        if invoker is None:
            return True
        deadline = time.monotonic() + timeout
        if not moto_fixes.status_events_sent(timeout):
            return False
        return invoker.wait_idle(max(0.0, deadline - time.monotonic()))

    def _reset_moto(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST")
        try:
            urllib.request.urlopen(request, timeout=10).read()
        except OSError:
            logging.getLogger("threadline.twin").warning("could not reset moto's state at stop")

    @staticmethod
    def _configure_moto(config: dict[str, Any]) -> None:
        """moto's own settings, set as its `/moto-api/config` endpoint sets them (the twin's process is moto's)."""
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.set_config(config)

    def _provision(self) -> None:
        assert self.lambda_runtime is not None and self.batch_runtime is not None
        template, artifacts = translated_template(self.config.root, REGION, ACCOUNT_ID)
        parameters = {**self._network_parameters(),
                      "SlackWebhookUrl": self.config.slack_webhook_url or self._slack.url,
                      "OpenLineageUrl": self._openlineage.url,
                      "SpotPriceLookup": "false",  # moto's Spot price history is made up: price from the table
                      # Job definitions name their images by digest, as `threadline deploy` pins them.
                      **twin_digest_parameters(self.config.root / BUILD_CONTEXT),
                      **self.config.parameters}
        provisioner = Provisioner(self.client, REGION, self.config.root, self.config.stack_name,
                                  self.lambda_runtime, self.batch_runtime,
                                  neptune_host="127.0.0.1",
                                  neptune_port=int(self._neptune.url.rsplit(":", 1)[1]))
        self.provisioned = provisioner.provision(template, artifacts, parameters)

    def _network_parameters(self) -> dict[str, Any]:
        """The VPC the template is wired into by parameter, made in the twin's EC2."""
        ec2 = self.client("ec2")
        vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.42.{i}.0/24",
                                     AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
                   for i, zone in enumerate("ab")]
        return {"VpcId": vpc_id, "PrivateSubnetIds": subnets}

    # -- access ------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """A boto3 client for the twin (cached; boto3 clients are thread-safe)."""
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url)
        return self._clients[service]

    def save_state(self) -> None:
        """Write the workdir's state now (objects, items, executions, queues), e.g. before printing paths."""
        if self.state is not None:
            self.state.save()

    def local_path(self, uri: str) -> Path | None:
        """The workdir file that holds `s3://bucket/key` (saved by `save_state`), or None for other URIs."""
        return self.s3_store.local_path(uri)

    def physical_id(self, logical_id: str) -> Any:
        return self.provisioned.physical_ids[logical_id]

    @property
    def state_machine_arn(self) -> str:
        return self.physical_id("PipelineStateMachine")

    @property
    def neptune(self) -> Any:
        """The local openCypher endpoint (`set_down()` takes it down for tests)."""
        return self._neptune

    @property
    def slack(self) -> Any:
        """The local Slack webhook (`fail_next()` makes it answer errors for tests)."""
        return self._slack

    @property
    def openlineage(self) -> Any:
        """The local OpenLineage endpoint standing in for Marquez (`events()` reads what it took)."""
        return self._openlineage
