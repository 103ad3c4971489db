"""Speed-ups of moto that change none of its answers, only what they cost.

Unlike `moto_fixes.py`, nothing here corrects a behaviour: each patch caches work
moto repeats on every call, with a result that cannot differ between calls.

- Every StartExecution parses the state machine's definition again with the ANTLR
  grammar (about 0.3 s for the pipeline's on an idle core, the same again at
  CreateStateMachine). The parse tree depends on the definition text only and is
  never changed by the preprocessor that turns it into evaluation components, so
  it is kept per definition; the components, which hold an execution's state,
  are still built fresh for every execution.
- The same components hold the definition's intrinsic functions (`States.Format`,
  `States.StringToJson`, ...), each parsed again with its own ANTLR grammar for
  every execution: about 30 ms of the time from StartExecution to the first
  state. Their trees are kept per text in the same way, with a fresh function
  built from the tree at every call.
- Building those components walks the kept tree and asks its nodes for their text
  again and again (ANTLR joins a node's text from all its leaves on every call),
  and checks every property's type against each of the unique property types
  (14 `issubclass` calls on ABCs per property). The kept tree never changes, so
  each of its nodes remembers its text; the unique type of a property type is
  looked up once. Components build in about a quarter of the time (80 to 20 ms
  for the pipeline's, on a busy core), and every run waits for them before its
  first state.
- moto's server finds the backend for every request by listing its own package
  folder (about 150 `stat` calls a request); the list is fixed once installed.
  Then it lists the response class's methods (`inspect.getmembers`, about 0.3 ms)
  to see whether the action is one; they are listed once per class.
- The Step Functions interpreter makes a new boto3 client for every Task state
  (two for a `.sync` one), 20 to 50 ms each on a busy core. Its clients are all
  alike (same credentials and settings per region and service), so one per
  region, service and endpoint serves every task; the twin also hands them its
  in-process transport (`hook_interpreter_clients`).
- A `batch:submitJob.sync` task notices its job's end by polling DescribeJobs
  between sleeps. The twin's Batch runtime calls `batch_job_ended` when a job
  reaches SUCCEEDED or FAILED, which ends those sleeps at once (Step Functions
  learns of a job's end from Batch's own events, not from a timer). The poll
  still decides what the job's end was, and the sleeps keep their length for
  every other change.
- JSONPath expressions are parsed again at every use (jsonpath_ng builds its parser
  each time, about 0.9 ms a path): every EventBridge input transformer of every
  event (several paths each, some 20 Batch and Step Functions events a run), and
  every path of every state. A parsed expression is never changed by `find` or
  `update`, so one is kept per path text (a path that fails to parse is not kept).
- moto's EC2 reads the instance type offerings of every region at import (90
  files, about 0.2 s of every start); each region's are read at their first use.
- moto names the service of every error it answers (to find the error's shape)
  from a table of botocore's service names that it builds through a new
  botocore session, once per process and service: about 0.15 to 0.3 s at the
  twin's first error, on the start's path (Batch's service-linked role is looked
  up before it is made). The same list comes from the process's data loader,
  where a session would read it.
- moto's response serializer finds each member of an answer's structures through
  its attribute picker, which makes a context and six alias providers and works
  out a member's candidate keys again for every member of every value: about
  0.45 ms an event of a Step Functions history, whose event shape has some
  sixty members, and histories are read several times a run. For a plain dict,
  the keys depend only on the member's shape, its parent and its name, so they
  are worked out once (`pick_dict_members_by_kept_keys`); the value is still
  taken from the dict as the picker takes it, trying the keys in the same
  order. The serializer then reads each timestamp that moto keeps as text (Step
  Functions keeps its events' as ISO 8601 in UTC) with dateutil's general
  parser; one in exactly that form is read with `datetime.fromisoformat`, the
  same instant and offset (`read_utc_timestamps_directly`). A history
  serializes in a ninth of the time (0.05 ms an event).
- Every KMS key gets an RSA private key at creation (for asymmetric signing), about
  30 ms a key; the template's keys are symmetric and never sign. The key is made
  at its first use instead, from the same key spec.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

_lock = threading.Lock()
_installed = False
TREE_CACHE_SIZE = 32  # distinct definitions kept parsed (a twin has one or two)
INTRINSIC_CACHE_SIZE = 4096  # distinct intrinsic function texts kept parsed (the pipeline's has about 30)
MEMBER_KEYS_CACHE_SIZE = 16384  # (member shape, parent, name) kept: the services a twin answers have some thousands
JSONPATH_CACHE_SIZE = 4096  # distinct JSONPath texts kept parsed (the template and definition have some hundred)
Hook = tuple[str, Callable[..., Any]]  # (botocore event name, handler)
_client_hooks: list[Hook] = []
_clients: dict[tuple[str, str, str], Any] = {}
_job_ends = threading.Condition()
_job_end_count = 0  # Batch jobs ended in this process so far
_seen = threading.local()  # `count`: the job ends a polling thread had seen when it last slept


def install() -> None:
    """Install the speed-ups (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        read_instance_type_offerings_on_first_use()  # before anything imports moto's EC2
        cache_definition_parse()
        cache_intrinsic_function_parse()
        cache_state_props_unique_types()
        cache_module_list()
        cache_response_method_names()
        cache_interpreter_clients()
        wake_sync_polls_on_job_end()
        make_kms_private_keys_on_first_use()
        cache_jsonpath_parse()
        list_service_names_without_a_session()
        pick_dict_members_by_kept_keys()
        read_utc_timestamps_directly()
        _installed = True


def cache_jsonpath_parse() -> None:
    """`parse` of jsonpath_ng (and of its extensions), where moto's events and interpreter call it."""
    import jsonpath_ng
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    extended = functools.lru_cache(maxsize=JSONPATH_CACHE_SIZE)(jsonpath_ng.ext.parse)
    jsonpath_ng.ext.parse = extended  # moto's EventBridge input transformer imports it at each call
    json_path.parse = extended
    result_path.parse = functools.lru_cache(maxsize=JSONPATH_CACHE_SIZE)(jsonpath_ng.parse)


class _PrivateKeyOnFirstUse:
    """Stands for moto's private key of a KMS key until something uses it (sign, verify, public key)."""

    def __init__(self, make: Callable[[str], Any], key_spec: str) -> None:
        self._make = make
        self._key_spec = key_spec
        self._key: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._key is None:
                self._key = self._make(self._key_spec)
        return getattr(self._key, name)


def make_kms_private_keys_on_first_use() -> None:
    import moto.kms.models as kms_models

    make = kms_models.generate_private_key
    def on_first_use(key_spec: str) -> Any:
        return _PrivateKeyOnFirstUse(make, key_spec)

    kms_models.generate_private_key = on_first_use


_OFFERINGS_FOLDER = "ec2/resources/instance_type_offerings/"


class _OfferingsByRegion(dict[str, Any]):
    """One location type's instance type offerings, each region's file read when something first asks for it."""

    def __init__(self, location_type: str, files: dict[str, str], read: Callable[[str], Any]) -> None:
        super().__init__()
        self._location_type = location_type
        self._files = files  # region -> resource path, for the regions not read yet
        self._read = read
        self._lock = threading.Lock()

    def _load(self, region: str) -> None:
        with self._lock:
            path = self._files.pop(region, None)
            if path is not None:
                offerings = self._read(path)
                for offering in offerings:  # as moto marks each offering when it reads the file
                    offering["LocationType"] = self._location_type
                super().__setitem__(region, offerings)

    def _load_all(self) -> None:
        for region in list(self._files):
            self._load(region)

    def __missing__(self, region: str) -> Any:
        self._load(region)
        if not super().__contains__(region):
            raise KeyError(region)
        return super().__getitem__(region)

    def __contains__(self, region: object) -> bool:
        return region in self._files or super().__contains__(region)

    def get(self, region: str, default: Any = None) -> Any:
        try:
            return self[region]
        except KeyError:
            return default

    def __iter__(self) -> Any:
        self._load_all()
        return super().__iter__()

    def __len__(self) -> int:
        return len(self._files) + super().__len__()

    def keys(self) -> Any:
        self._load_all()
        return super().keys()

    def values(self) -> Any:
        self._load_all()
        return super().values()

    def items(self) -> Any:
        self._load_all()
        return super().items()


def read_instance_type_offerings_on_first_use() -> None:
    """moto's EC2 reads the instance type offerings of every region at import, 90 files (about 0.2 s).

    The twin asks for one region's at most. While moto's module imports, the
    offering files are not read; each location type's regions are then read at
    their first use, with the same data. Nothing changes where EC2 was imported
    already.
    """
    import sys

    import moto.utilities.utils as moto_utils

    if "moto.ec2.models.instance_types" in sys.modules:
        return
    read = moto_utils.load_resource
    skipped: dict[str, dict[str, str]] = {}  # location type -> region -> resource path

    def read_later(resource: str) -> Any:
        if not resource.startswith(_OFFERINGS_FOLDER):
            return read(resource)
        location_type, file_name = resource[len(_OFFERINGS_FOLDER):].split("/")
        skipped.setdefault(location_type, {})[file_name.split(".")[0]] = resource
        return []

    moto_utils.load_resource = read_later
    try:
        from moto.ec2.models import instance_types
    finally:
        moto_utils.load_resource = read
    for location_type, files in skipped.items():
        instance_types.INSTANCE_TYPE_OFFERINGS[location_type] = _OfferingsByRegion(location_type, files, read)


def hook_interpreter_clients(hooks: list[Hook]) -> None:
    """Register `hooks` on every interpreter client made from now on; the clients made so far are dropped."""
    with _lock:
        _clients.clear()
        _client_hooks[:] = hooks


def cache_definition_parse() -> None:
    """`AmazonStateLanguageParser.parse`: the ANTLR tree kept per definition, fresh components per call."""
    from moto.stepfunctions.parser.asl.parse import asl_parser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    _keep_parse_trees(asl_parser.AmazonStateLanguageParser, Preprocessor, TREE_CACHE_SIZE)
    _read_remembered_texts()


def cache_intrinsic_function_parse() -> None:
    """`IntrinsicParser.parse`: the ANTLR tree kept per intrinsic function's text, a fresh function per call."""
    from moto.stepfunctions.parser.asl.parse.intrinsic import intrinsic_parser
    from moto.stepfunctions.parser.asl.parse.intrinsic.preprocessor import Preprocessor

    _keep_parse_trees(intrinsic_parser.IntrinsicParser, Preprocessor, INTRINSIC_CACHE_SIZE)


def _keep_parse_trees(parser: Any, preprocessor: Callable[[], Any], size: int) -> None:
    """`parser.parse(text)` -> (components, tree): the tree kept per text, the components built from it each call."""
    parse: Callable[[str], tuple[Any, Any]] = parser.parse

    @functools.lru_cache(maxsize=size)
    def tree_of(text: str) -> Any:
        tree = parse(text)[1]  # a text that does not parse raises, and nothing is cached
        _remember_texts(tree)
        return tree

    def parse_cached(src: str) -> tuple[Any, Any]:
        tree = tree_of(src)
        return preprocessor().visit(tree), tree

    parser.parse = staticmethod(parse_cached)


_TEXT = "_threadline_text"  # where a node of a kept tree holds its text


def _remember_texts(tree: Any) -> None:
    """Give every inner node of a finished (kept, never changed) tree its text, leaves first."""
    from antlr4.tree.Tree import TerminalNode  # type: ignore[import-untyped]

    order: list[Any] = []
    stack = [tree]
    while stack:  # parents before children; reversed below, children before parents
        node = stack.pop()
        if not isinstance(node, TerminalNode):
            order.append(node)
            stack.extend(node.children or ())
    for node in reversed(order):
        setattr(node, _TEXT, "".join(vars(child).get(_TEXT) if not isinstance(child, TerminalNode)
                                     else child.getText() for child in (node.children or ())))


def _read_remembered_texts() -> None:
    """`RuleContext.getText`: a kept tree's node answers from memory; any other node as ANTLR does."""
    from antlr4.RuleContext import RuleContext  # type: ignore[import-untyped]

    joined: Callable[[Any], str] = RuleContext.getText

    def get_text(self: Any) -> str:
        remembered = vars(self).get(_TEXT)
        return joined(self) if remembered is None else remembered

    RuleContext.getText = get_text


def cache_state_props_unique_types() -> None:
    """`StateProps.add`: which unique property type (if any) a property's type falls under, looked up once per type.

    End and Next still go through moto's own `add`, which checks that a state has not both.
    """
    from moto.stepfunctions.parser.asl.component.common.flow.end import End
    from moto.stepfunctions.parser.asl.component.common.flow.next import Next
    from moto.stepfunctions.parser.asl.component.state import state_props
    from moto.stepfunctions.parser.asl.parse.typed_props import TypedProps

    props = state_props.StateProps
    moto_add: Callable[[Any, Any], None] = props.add

    @functools.cache
    def unique_type(kind: type) -> type | None:
        return next((unique for unique in state_props.UNIQUE_SUBINSTANCES if issubclass(kind, unique)), None)

    def add(self: Any, instance: Any) -> None:
        kind: Any = type(instance)
        if kind in (End, Next):
            moto_add(self, instance)
            return
        unique = unique_type(kind)
        if unique is None:
            TypedProps.add(self, instance)
        else:
            TypedProps._add(self, unique, instance)

    props.add = add  # type: ignore[method-assign]


def pick_dict_members_by_kept_keys() -> None:
    """`ResponseSerializer.get_value` for a plain dict, with the picker's candidate keys kept per member.

    Only the default picker's own lookups are kept: another picker, one with
    response transformers (which read the member's path) or a value that is not a
    plain dict (whose class and `Meta` name aliases) goes the picker's way.
    """
    from moto.core import serialize
    from moto.core.utils import MISSING, get_value

    original = serialize.ResponseSerializer.get_value
    picker = serialize.XFormedAttributePicker()
    a_dict: dict[str, Any] = {}  # what the providers read of a plain dict: no Meta, the class name "dict"

    @functools.lru_cache(maxsize=MEMBER_KEYS_CACHE_SIZE)
    def keys_to_try(shape: Any, parent: Any, key: str) -> tuple[str, ...]:
        return tuple(picker.get_possible_keys(serialize.AttributePickerContext(obj=a_dict, key=key, shape=shape)))

    def get_value_of(self: Any, value: Any, key: str, shape: Any) -> Any:
        chosen = self._value_picker
        if (type(value) is not dict or type(chosen) is not serialize.XFormedAttributePicker
                or chosen.response_transformers or chosen.alias_providers is not picker.alias_providers):
            return original(self, value, key, shape)
        for candidate in keys_to_try(shape, getattr(shape, "parent", None), key):
            # moto's get_value reads a dotted key as a path; a plain key of a dict is `dict[key]`, else missing.
            found = get_value(value, candidate, MISSING) if "." in candidate else value.get(candidate, MISSING)
            if found is not MISSING:
                return found
        return None

    serialize.ResponseSerializer.get_value = get_value_of  # type: ignore[method-assign]


def read_utc_timestamps_directly() -> None:
    """The serializer's `parse_to_aware_datetime`, without dateutil for "YYYY-MM-DDTHH:MM:SS[.f]Z"."""
    import re
    from datetime import datetime

    from moto.core import serialize

    original = serialize.parse_to_aware_datetime
    utc_text = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")

    def parse_to_aware_datetime(value: Any) -> datetime:
        if type(value) is str and utc_text.fullmatch(value):
            with contextlib.suppress(ValueError):  # a day past its month's end: botocore's own error
                return datetime.fromisoformat(value)
        return original(value)

    serialize.parse_to_aware_datetime = parse_to_aware_datetime


def list_service_names_without_a_session() -> None:
    """`service_name_from_moto_package_name`, from the data loader's service list instead of a new session's."""
    import botocore.session
    import moto.core.utils

    @functools.cache
    def service_name_from_moto_package_name(moto_package_name: str) -> str:
        services = botocore.session.create_loader().list_available_services(type_name="service-2")
        return {name.replace("-", ""): name for name in services}.get(moto_package_name, moto_package_name)

    moto.core.utils.service_name_from_moto_package_name = service_name_from_moto_package_name


def cache_module_list() -> None:
    """`moto.backends.list_of_moto_modules`, listed once."""
    import moto.backends

    listed: tuple[str, ...] = tuple(moto.backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterable[str]:
        return listed

    moto.backends.list_of_moto_modules = list_of_moto_modules


def cache_response_method_names() -> None:
    """`method_names_from_class`: a response class's methods, listed once per class and per set of names.

    The key holds how many names each class of the response class's MRO has, so
    that a method added later (a fix adding an action) is listed; one replaced
    in place keeps its name.
    """
    import moto.core.responses as responses

    list_names = responses.method_names_from_class
    listed: dict[tuple[Any, tuple[int, ...]], list[str]] = {}

    def names_per_class(response_class: Any) -> tuple[int, ...]:
        return tuple(len(vars(kind)) for kind in response_class.__mro__)

    def method_names_from_class(clazz: object) -> list[str]:
        names = listed.get((clazz, names_per_class(clazz)))
        if names is None:
            names = list_names(clazz)
            # Keyed after listing: the first listing may add a name (`__annotations__`) to the class.
            listed[(clazz, names_per_class(clazz))] = names
        return names

    responses.method_names_from_class = method_names_from_class


def cache_interpreter_clients() -> None:
    """`boto_client_for`, everywhere the interpreter imported it: one client per endpoint, region and service.

    moto's makes every client alike but for those three (it does not use `state_credentials`).
    """
    import sys

    from moto.stepfunctions.parser.asl.utils import boto_client

    original: Callable[..., Any] = boto_client.boto_client_for

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (os.environ.get("MOTO_PORT", ""), region, service)  # the endpoint moto's original would use
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = original(region=region, service=service, state_credentials=state_credentials)
                for event, handler in _client_hooks:
                    client.meta.events.register(event, handler)
                _clients[key] = client
        return client

    for module in list(sys.modules.values()):  # the interpreter's modules import it by name
        if getattr(module, "boto_client_for", None) is original:
            vars(module)["boto_client_for"] = boto_client_for


def batch_job_ended() -> None:
    """A Batch job reached SUCCEEDED or FAILED: the `.sync` tasks waiting between polls poll now."""
    global _job_end_count
    with _job_ends:
        _job_end_count += 1
        _job_ends.notify_all()


def sleep_until_job_end(seconds: float) -> None:
    """Sleep `seconds`, or less when a Batch job ends meanwhile or ended since this thread last slept.

    The second case covers a job that ended between the thread's last poll and
    this sleep, whose wake-up would otherwise be missed.
    """
    with _job_ends:
        seen = getattr(_seen, "count", None)
        if seen == _job_end_count:
            _job_ends.wait_for(lambda: _job_end_count != seen, timeout=seconds)
        _seen.count = _job_end_count


class _WakeableTime:
    """What the `.sync` loop's module reads as `time`: its one call, `sleep`, ends early at a job's end."""

    sleep = staticmethod(sleep_until_job_end)


def wake_sync_polls_on_job_end() -> None:
    """The `.sync` loop's sleep between polls, woken by `batch_job_ended`."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_module,
    )

    vars(callback_module)["time"] = _WakeableTime
