"""Multi-container Batch jobs (`ecsProperties`) in the twin: ECS's rules for essential containers,
`dependsOn`, shared volumes and stops, and Batch's per-container record of each attempt."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from threadline.twin.batch_capacity import Resources, job_needs
from threadline.twin.batch_containers import MIN_STOP_S, TASK_STOPPED_REASON, TaskDefinitionError, ecs_containers
from threadline.twin.batch_runtime import EXITED_REASON, LocalBatchRuntime
from threadline.twin.faults import Fault, FaultPlan, FaultSpecError

SHARED = "/threadline/shared"


def _container(name: str, script: str, *, essential: bool = True, depends: dict[str, str] | None = None,
               mounts: dict[str, str] | None = None, env: dict[str, str] | None = None,
               health: str | None = None, **extra: Any) -> dict[str, Any]:
    """A container running `python -c script`; `depends` maps container -> condition, `mounts` path -> volume."""
    container: dict[str, Any] = {
        "name": name, "image": "local", "essential": essential, "command": ["python", "-c", script],
        "dependsOn": [{"containerName": c, "condition": k} for c, k in (depends or {}).items()],
        "mountPoints": [{"containerPath": p, "sourceVolume": v} for p, v in (mounts or {}).items()],
        "environment": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
        **extra,
    }
    if health is not None:
        container["healthCheck"] = {"command": ["CMD", "python", "-c", health], "interval": 5}
    return container


def _ecs(*containers: dict[str, Any], volumes: tuple[str, ...] = ("shared",)) -> dict[str, Any]:
    return {"taskProperties": [{"containers": list(containers), "volumes": [{"name": v} for v in volumes]}]}


def _job(ecs: dict[str, Any] | None = None, nodes: int = 0, retry: dict[str, Any] | None = None) -> Any:
    """What the runtime reads of a moto Batch job: a multi-container job, or a multi-node one of `nodes` tasks."""
    node_properties = ({"numNodes": nodes, "mainNode": 0,
                        "nodeRangeProperties": [{"targetNodes": "0:", "ecsProperties": ecs}]} if nodes else None)
    definition = SimpleNamespace(name="tasked", type="multinode" if nodes else "container",
                                 arn="arn:aws:batch:us-east-1:123456789012:job-definition/tasked:1",
                                 container_properties=None, ecs_properties=None if nodes else ecs,
                                 node_properties=node_properties, parameters={}, retry_strategy=retry or {},
                                 timeout=None)
    return SimpleNamespace(job_id="job-0001", job_name="tasked", job_definition=definition,
                           job_queue=SimpleNamespace(name="q"), parameters={}, container_overrides={},
                           timeout=None, stop=False, job_stopped_reason=None, attempts=[], status="SUBMITTED")


def _run(tmp_path: Path, job: Any, faults: FaultPlan | None = None) -> LocalBatchRuntime:
    runtime = LocalBatchRuntime(tmp_path, {}, tmp_path / "logs", faults or FaultPlan())
    runtime.definition_dirs["tasked"] = tmp_path
    runtime.run(job)
    return runtime


def _containers(job: Any, attempt: int = -1, node: int | None = None) -> dict[str, dict[str, Any]]:
    """The attempt's per-container record, by container name: the job's own task, or node `node`'s
    (a multi-node job's node is a child job with its own attempts, as on Batch)."""
    attempts = job.attempts if node is None else job.twin_nodes[node].attempts
    [task] = attempts[attempt]["taskProperties"]
    return {container["name"]: container for container in task["containers"]}


def _exists(path: Path) -> str:
    """A script that exits 0 when `path` exists, else 9."""
    return f"import os, sys; sys.exit(0 if os.path.exists({str(path)!r}) else 9)"


def _touch_then_sleep(path: Path, prelude: str = "") -> str:
    return f"import pathlib, time\n{prelude}\npathlib.Path({str(path)!r}).touch()\ntime.sleep(60)"


# --- essential and non-essential containers ---------------------------------------------------------------


def test_a_failing_sidecar_does_not_fail_the_job(tmp_path) -> None:
    job = _job(_ecs(_container("analysis", "print('done')", depends={"progress": "COMPLETE"}),
                    _container("progress", "import sys; sys.exit(3)", essential=False)))

    _run(tmp_path, job)

    assert job.status == "SUCCEEDED" and job.exit_code == 0
    records = _containers(job)
    assert records["progress"]["exitCode"] == 3 and records["analysis"]["exitCode"] == 0
    assert records["analysis"]["logStreamName"] == "tasked/analysis/job-0001"
    log = tmp_path / "logs" / "tasked" / "job-0001" / "attempt-1-analysis.log"
    assert log.read_text().strip() == "done"  # each container has its own log file


def test_a_failing_main_container_fails_the_job_and_stops_the_sidecar(tmp_path) -> None:
    """The sidecar traps SIGTERM and flushes: its handler runs, and it exits 0 on its own terms."""
    ready, flushed = tmp_path / "ready", tmp_path / "flushed"
    trap = ("import signal, sys, pathlib\n"
            f"def flush(*_): pathlib.Path({str(flushed)!r}).write_text('flushed'); sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, flush)")
    job = _job(_ecs(_container("analysis", "import sys; sys.exit(5)", depends={"progress": "HEALTHY"}),
                    _container("progress", _touch_then_sleep(ready, trap), essential=False, health=_exists(ready))))

    _run(tmp_path, job)

    assert job.status == "FAILED" and job.exit_code == 5
    assert job.attempts[-1]["container"]["exitCode"] == 5
    assert job.attempts[-1]["statusReason"] == EXITED_REASON
    records = _containers(job)
    assert records["analysis"]["exitCode"] == 5
    assert records["progress"] == {**records["progress"], "exitCode": 0, "reason": TASK_STOPPED_REASON}
    assert flushed.read_text() == "flushed"


def test_a_sidecar_that_ignores_sigterm_is_killed_after_the_stop_timeout(tmp_path) -> None:
    ready = tmp_path / "ready"
    ignore = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)"
    job = _job(_ecs(_container("analysis", "pass", depends={"progress": "HEALTHY"}),
                    _container("progress", _touch_then_sleep(ready, ignore), essential=False,
                               health=_exists(ready), stopTimeout=2)))

    started = time.monotonic()
    _run(tmp_path, job)

    assert job.status == "SUCCEEDED"
    assert _containers(job)["progress"]["exitCode"] == 137  # SIGKILL
    assert time.monotonic() - started >= MIN_STOP_S  # it had its (scaled, floored) stop timeout first


def test_a_sidecar_stopped_by_the_task_end_reports_sigterm(tmp_path) -> None:
    job = _job(_ecs(_container("analysis", "pass", depends={"progress": "START"}),
                    _container("progress", "import time; time.sleep(60)", essential=False)))

    _run(tmp_path, job)

    assert job.status == "SUCCEEDED"
    assert _containers(job)["progress"] == {**_containers(job)["progress"], "exitCode": 143,
                                            "reason": TASK_STOPPED_REASON}


# --- dependsOn -----------------------------------------------------------------------------------------------


def test_success_dependency_runs_first_and_the_dependent_sees_its_work(tmp_path) -> None:
    marker = tmp_path / "prepared"
    job = _job(_ecs(_container("analysis", _exists(marker), depends={"prepare": "SUCCESS"}),
                    _container("prepare", f"import pathlib; pathlib.Path({str(marker)!r}).touch()",
                               essential=False)))

    _run(tmp_path, job)

    assert job.status == "SUCCEEDED"
    assert {name: r["exitCode"] for name, r in _containers(job).items()} == {"analysis": 0, "prepare": 0}


def test_a_failed_success_dependency_means_the_dependent_never_starts(tmp_path) -> None:
    job = _job(_ecs(_container("analysis", "print('ran')", depends={"prepare": "SUCCESS"}),
                    _container("prepare", "import sys; sys.exit(4)", essential=False)))

    _run(tmp_path, job)

    assert job.status == "FAILED"
    analysis = _containers(job)["analysis"]
    assert "exitCode" not in analysis
    assert analysis["reason"] == "Dependency prepare did not reach condition SUCCESS"
    assert job.twin_container_reason == analysis["reason"]  # what evaluateOnExit's onReason sees
    assert not (tmp_path / "logs" / "tasked" / "job-0001" / "attempt-1-analysis.log").exists()


def test_start_dependency_waits_for_the_process_and_healthy_for_its_check(tmp_path) -> None:
    """`late` starts only once `watcher` is healthy, and `watcher` only turns healthy once `late`'s
    START dependency `first` has run: the chain first -> watcher (HEALTHY) -> late holds in order."""
    first_ran, healthy_flag = tmp_path / "first", tmp_path / "healthy"
    job = _job(_ecs(
        _container("late", _exists(healthy_flag), depends={"watcher": "HEALTHY", "first": "START"}),
        _container("watcher", f"import os, pathlib, time\nwhile not os.path.exists({str(first_ran)!r}): "
                              f"time.sleep(0.01)\npathlib.Path({str(healthy_flag)!r}).touch()\ntime.sleep(60)",
                   essential=False, health=_exists(healthy_flag)),
        _container("first", _touch_then_sleep(first_ran), essential=False, depends={"watcher": "START"})))

    _run(tmp_path, job)

    assert job.status == "SUCCEEDED"
    records = _containers(job)
    assert records["late"]["exitCode"] == 0
    assert records["watcher"]["exitCode"] == records["first"]["exitCode"] == 143  # stopped when `late` ended


@pytest.mark.parametrize(("containers", "message"), [
    ([_container("a", "pass", depends={"b": "START"}), _container("b", "pass", depends={"a": "START"})], "cycle"),
    ([_container("a", "pass", essential=False)], "essential"),
    ([_container("a", "pass", depends={"b": "SUCCESS"}), _container("b", "pass")], "cannot name essential"),
    ([_container("a", "pass", depends={"b": "HEALTHY"}), _container("b", "pass", essential=False)], "healthCheck"),
    ([_container("a", "pass", mounts={"/data": "missing"})], "undeclared volumes"),
])
def test_a_task_ecs_would_refuse_fails_the_job_with_a_clear_reason(tmp_path, containers, message) -> None:
    job = _job(_ecs(*containers))

    _run(tmp_path, job)

    assert job.status == "FAILED" and message in job.job_stopped_reason
    with pytest.raises(TaskDefinitionError):
        ecs_containers(_ecs(*containers)["taskProperties"][0], lambda command: command)


# --- volumes -------------------------------------------------------------------------------------------------


def test_containers_share_a_volume_through_their_own_mount_paths(tmp_path) -> None:
    write = ("import os, pathlib\n"
             "pathlib.Path(os.environ['THREADLINE_SHARED_DIR'], 'note.txt').write_text('from the writer')")
    read = "import sys\nsys.exit(0 if open(sys.argv[1]).read() == 'from the writer' else 8)"
    reader = _container("reader", read, depends={"writer": "SUCCESS"}, mounts={"/mnt/in": "shared"})
    reader["command"] += ["/mnt/in/note.txt"]
    job = _job(_ecs(reader, _container("writer", write, essential=False, mounts={SHARED: "shared"},
                                       env={"THREADLINE_SHARED_DIR": SHARED})))

    _run(tmp_path, job)

    assert job.status == "SUCCEEDED"
    assert {name: r["exitCode"] for name, r in _containers(job).items()} == {"reader": 0, "writer": 0}
    volume = tmp_path / "logs" / "tasked" / "job-0001" / "volumes" / "attempt-1" / "shared"
    assert (volume / "note.txt").read_text() == "from the writer"  # a fresh folder per attempt


def test_a_shell_health_check_sees_the_mount_paths_rewritten(tmp_path) -> None:
    ready = ("import pathlib, sys, time\npathlib.Path(sys.argv[1]).touch()\ntime.sleep(60)")
    watcher = _container("watcher", ready, essential=False, mounts={"/work/shared": "shared"},
                         healthCheck={"command": ["CMD-SHELL", "test -f /work/shared/ready"], "interval": 5})
    watcher["command"] += ["/work/shared/ready"]
    job = _job(_ecs(_container("analysis", "pass", depends={"watcher": "HEALTHY"}), watcher))

    _run(tmp_path, job)

    assert job.status == "SUCCEEDED"
    assert _containers(job)["watcher"]["exitCode"] == 143  # it became healthy, then the task's end stopped it


# --- multi-node ----------------------------------------------------------------------------------------------


def _node_task(main_exit: str = "0") -> dict[str, Any]:
    """Each node: `side` writes the node index into the node's shared volume, `main` checks it is its own."""
    side = "import os, pathlib, sys; pathlib.Path(sys.argv[1]).write_text(os.environ['AWS_BATCH_JOB_NODE_INDEX'])"
    main = ("import os, sys\nmine = os.environ['AWS_BATCH_JOB_NODE_INDEX']\n"
            f"sys.exit({main_exit} if open(sys.argv[1]).read() == mine else 8)")
    main_container = _container("main", main, depends={"side": "SUCCESS"}, mounts={"/data": "shared"})
    side_container = _container("side", side, essential=False, mounts={"/data": "shared"})
    for container in (main_container, side_container):
        container["command"] += ["/data/node"]  # the twin rewrites a mounted path given as an argument
    return _ecs(main_container, side_container)


def test_a_multi_node_job_runs_a_task_of_two_containers_on_each_node(tmp_path) -> None:
    job = _job(_node_task(), nodes=2)

    _run(tmp_path, job)

    assert job.status == "SUCCEEDED"
    assert "taskProperties" not in job.attempts[-1]  # the nodes' tasks are in the nodes' own attempts
    for node in (0, 1):
        records = _containers(job, node=node)
        assert {name: r["exitCode"] for name, r in records.items()} == {"main": 0, "side": 0}
        assert records["main"]["logStreamName"] == f"tasked/main/job-0001#{node}"
        assert (tmp_path / "logs" / "tasked" / "job-0001" / f"attempt-1-node-{node}-side.log").exists()


def test_a_failed_node_container_decides_the_job_and_its_retry_rule(tmp_path) -> None:
    retry = {"attempts": 3, "evaluateOnExit": [{"onExitCode": "7", "action": "EXIT"}]}
    job = _job(_node_task(main_exit="7 if mine == '1' else 0"), nodes=2, retry=retry)

    _run(tmp_path, job)

    assert job.status == "FAILED" and job.exit_code == 7
    assert len(job.attempts) == 1  # onExitCode 7: EXIT, not the default RETRY
    assert job.attempts[-1]["container"]["reason"] == "node 1: container main exited with code 7"
    assert _containers(job, node=0)["main"]["exitCode"] == 0


# --- faults --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["tasked/progress:exit=3", "tasked.progress:exit=3:1"])
def test_a_container_fault_fails_only_that_container(tmp_path, text: str) -> None:
    faults = FaultPlan()
    faults.add(Fault.parse(text))
    job = _job(_ecs(_container("analysis", "pass", depends={"progress": "COMPLETE"}),
                    _container("progress", "pass", essential=False)))

    _run(tmp_path, job, faults)

    assert job.status == "SUCCEEDED"
    assert _containers(job)["progress"]["exitCode"] == 3


def test_a_hanging_sidecar_is_stopped_with_the_task(tmp_path) -> None:
    faults = FaultPlan()
    faults.add(Fault.parse("tasked/progress:hang"))
    job = _job(_ecs(_container("analysis", "pass", depends={"progress": "START"}),
                    _container("progress", "pass", essential=False)))

    _run(tmp_path, job, faults)

    assert job.status == "SUCCEEDED"
    assert _containers(job)["progress"]["exitCode"] == 143  # it never ended on its own: the task's SIGTERM did it


def test_a_container_fault_on_the_essential_container_fails_the_job(tmp_path) -> None:
    faults = FaultPlan()
    faults.add(Fault.parse("tasked/analysis:kill"))
    job = _job(_ecs(_container("analysis", "import time; time.sleep(60)")))

    _run(tmp_path, job, faults)

    assert job.status == "FAILED" and job.exit_code == 137


def test_container_faults_parse_and_stay_out_of_job_level_lookups() -> None:
    fault = Fault.parse("analysis/progress:exit=3:2")
    assert (fault.target, fault.container, fault.kind, fault.exit_code) == ("analysis", "progress", "exit", 3)
    plan = FaultPlan()
    plan.add(fault)
    assert plan.find(("threadline-analysis",), (), 2, None) is None  # the whole job is not hit
    assert plan.find(("threadline-analysis",), (), 2, None, "progress") is fault
    assert plan.find(("threadline-analysis",), (), 2, None, "analysis") is None
    with pytest.raises(FaultSpecError, match="container fault"):
        Fault.parse("analysis/progress:spot")
    with pytest.raises(FaultSpecError, match="JOB/CONTAINER"):
        Fault.parse("analysis/:exit=1")


# --- capacity ------------------------------------------------------------------------------------------------


def test_a_task_needs_the_sum_of_its_containers(tmp_path) -> None:
    gpu = _container("analysis", "pass")
    gpu["resourceRequirements"] = [{"type": "VCPU", "value": "4"}, {"type": "MEMORY", "value": "14336"},
                                   {"type": "GPU", "value": "1"}]
    task = _ecs(gpu, _container("progress", "pass", essential=False))

    assert job_needs(_job(task)) == Resources(5, 14848, 1)
    assert job_needs(_job(task, nodes=2)) == Resources(10, 29696, 2)
