"""The state machine, the template and the Batch jobs agree with the pipeline manifest.

`threadline_common/pipeline.py` says which steps there are, the job definition and
the Batch jobs of each, which job parameters name what a step reads and writes,
and what it writes. Lineage and resume read those facts from it; these tests
check that `statemachines/pipeline.asl.json`, `template.yaml` and the jobs' own
constants say the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from threadline_common import pipeline
from threadline_common.lineage.batch import derive_capacity, job_key_for, split_job_key
from threadline_common.lineage.resume import DONE

REPO_ROOT = Path(__file__).resolve().parents[2]

ASL_PATH = REPO_ROOT / "statemachines" / "pipeline.asl.json"
BATCH_SUBMIT = "arn:aws:states:::batch:submitJob"
TASK_FAILED = "States.TaskFailed"
RUN_ID = "sample-positions-4f1c2a9e0b7d3c15"
STEP_IDS = [step.name for step in pipeline.STEPS]
JOB_IDS = [job.key for _, job in pipeline.jobs()]


def _all_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, at any depth (Parallel branches, Map processors)."""
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _all_states(branch["States"])
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _all_states(processor["States"])


@pytest.fixture(scope="module")
def states() -> dict[str, dict[str, Any]]:
    return dict(_all_states(json.loads(ASL_PATH.read_text())["States"]))


@pytest.fixture(scope="module")
def batch_tasks(states: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in states.items()
            if state["Type"] == "Task" and str(state.get("Resource", "")).startswith(BATCH_SUBMIT)}


def _parameter_names(parameters: dict[str, Any]) -> set[str]:
    return {name.removesuffix(".$") for name in parameters}


def _commands(definition: dict[str, Any]) -> list[list[Any]]:
    """The Command of a container job definition, or of every node range of a multi-node one.

    A node range of several containers (`EcsProperties`) gives its essential container's command: the
    step's own work, which the state machine's parameters feed.
    """
    properties = definition["Properties"]
    if "ContainerProperties" in properties:
        return [properties["ContainerProperties"]["Command"]]
    commands = []
    for node in properties["NodeProperties"]["NodeRangeProperties"]:
        if "EcsProperties" in node:
            containers = node["EcsProperties"]["TaskProperties"][0]["Containers"]
            commands.extend(c["Command"] for c in containers if c.get("Essential", True))
        else:
            commands.append(node["Container"]["Command"])
    return commands


def _ref_parameters(command: list[Any]) -> set[str]:
    return {item.removeprefix("Ref::") for item in command if isinstance(item, str) and item.startswith("Ref::")}


def _job_definitions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["Type"] == "AWS::Batch::JobDefinition"}


def _on_failure(states: dict[str, dict[str, Any]], task: str) -> tuple[set[str], list[dict[str, Any]]]:
    """What a Batch task's job failure leads to: the Task states reached through Choice and Pass
    states, and every Choice rule on the way that routes to a Task."""
    catch = next(c for c in states[task]["Catch"] if TASK_FAILED in c["ErrorEquals"])
    tasks: set[str] = set()
    rules: list[dict[str, Any]] = []
    seen: set[str] = set()
    pending = [catch["Next"]]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        if state["Type"] == "Choice":
            for rule in state["Choices"]:
                pending.append(rule["Next"])
                if states[rule["Next"]]["Type"] == "Task":
                    rules.append(rule)
            if "Default" in state:
                pending.append(state["Default"])
        elif state["Type"] == "Pass" and "Next" in state:
            pending.append(state["Next"])
        elif state["Type"] == "Task":
            tasks.add(name)
    return tasks, rules


def _variables(rule: dict[str, Any]) -> set[str]:
    found = {rule["Variable"]} if "Variable" in rule else set()
    for key in ("And", "Or"):
        for inner in rule.get(key, []):
            found |= _variables(inner)
    if "Not" in rule:
        found |= _variables(rule["Not"])
    return found


# --- the manifest itself ----------------------------------------------------------------------


def test_the_manifest_is_consistent() -> None:
    assert len(set(STEP_IDS)) == len(STEP_IDS)
    assert len(set(JOB_IDS)) == len(JOB_IDS)
    states = [job.state for _, job in pipeline.jobs()]
    assert len(set(states)) == len(states)
    for index, step in enumerate(pipeline.STEPS):
        assert pipeline.step(step.name) is step and pipeline.position(step.name) == index
        assert not step.primary.fallback and step.primary.key == step.name
        assert [job for job in step.jobs if job.fallback] == ([step.fallback] if step.fallback else [])
        assert step.writes and step.output_parameter in step.writes
        for job in step.jobs:
            assert pipeline.step_of_job_key(job.key) is step and pipeline.job(job.key) is job
            assert job.key == step.name or job.key.startswith(f"{step.name}_")
            assert job.job_name == step.name or job.job_name.startswith(f"{step.name}-")
            assert split_job_key(job.key) == (step.name, job.fallback)
        for output in step.outputs:
            assert output.per_node == ("{node" in output.name)
        # What a step reads was handed on by an earlier step, or is the run's input.
        for name in step.reads:
            producer = pipeline.producer_of(name)
            if name == pipeline.SOURCE_PARAMETER:
                assert producer is None
            else:
                assert producer is not None and STEP_IDS.index(producer.name) < index, name
    assert pipeline.step_of_job_key("report") is None and pipeline.position("report") is None


# --- the state machine ------------------------------------------------------------------------


def test_every_batch_task_is_one_job_of_the_manifest(batch_tasks: dict[str, dict[str, Any]]) -> None:
    assert sorted(batch_tasks) == sorted(job.state for _, job in pipeline.jobs())


@pytest.mark.parametrize("key", JOB_IDS)
def test_the_task_submits_the_steps_job(batch_tasks: dict[str, dict[str, Any]], key: str) -> None:
    step, job = pipeline.step_of_job_key(key), pipeline.job(key)
    assert step is not None
    task = batch_tasks[job.state]
    parameters = task["Parameters"]
    assert parameters["JobDefinition"] == f"${{{step.job_definition}Arn}}"
    assert parameters["JobName.$"] == f"States.Format('{job.job_name}-{{}}', $.run_id)"
    assert parameters["JobQueue"] == f"${{{job.queue}Arn}}"
    assert task["ResultPath"] == f"$.jobs.{job.key}"
    assert set(step.reads) | set(step.writes) <= _parameter_names(parameters["Parameters"])


@pytest.mark.parametrize("key", JOB_IDS)
def test_a_task_reads_the_datasets_earlier_steps_hand_on(batch_tasks: dict[str, dict[str, Any]], key: str) -> None:
    step, job = pipeline.step_of_job_key(key), pipeline.job(key)
    assert step is not None
    parameters = batch_tasks[job.state]["Parameters"]["Parameters"]
    for name in step.reads:
        expected = "$.source.uri" if name == pipeline.SOURCE_PARAMETER else f"$.plan.datasets.{name}"
        assert parameters[f"{name}.$"] == expected


def test_the_run_starts_with_every_dataset_the_steps_hand_on(states: dict[str, dict[str, Any]]) -> None:
    datasets = states["InitialiseRun"]["Parameters"]["plan"]["datasets"]
    handed = {name: relative for step in pipeline.STEPS for name, relative in step.datasets.items()}
    assert _parameter_names(datasets) == set(handed)
    for name, relative in handed.items():
        location = re.fullmatch(r"States\.Format\('(.*)', \$\.run_id\)", datasets[f"{name}.$"])
        assert location is not None, name
        assert location.group(1).endswith(f"/{relative}"), name


@pytest.mark.parametrize("step_name", [step.name for step in pipeline.STEPS if step.fallback])
def test_the_failure_kind_routes_to_the_steps_fallback(states: dict[str, dict[str, Any]], step_name: str) -> None:
    step = pipeline.step(step_name)
    assert step.fallback is not None
    reached, rules = _on_failure(states, step.primary.state)
    assert step.fallback.state in reached
    routing = [rule for rule in rules if rule["Next"] == step.fallback.state]
    assert routing
    for rule in routing:
        assert {variable.split(".")[2] for variable in _variables(rule)} == {step.primary.key}
        assert all(variable.startswith("$.failures.") for variable in _variables(rule))
    # The failure is filed under the primary job's key before its kind is read.
    assert any(state.get("ResultPath") == f"$.failures.{step.primary.key}"
               for state in states.values() if state["Type"] == "Pass")


@pytest.mark.parametrize("key", JOB_IDS)
def test_a_failed_job_never_leads_to_another_steps_job(states: dict[str, dict[str, Any]], key: str) -> None:
    step, job = pipeline.step_of_job_key(key), pipeline.job(key)
    assert step is not None
    reached, _ = _on_failure(states, job.state)
    batch_jobs = {other.state: other for _, other in pipeline.jobs()}
    for name in reached & set(batch_jobs):
        # Only the primary job's failure goes on, and only to its own step's fallback.
        assert not job.fallback and batch_jobs[name] is step.fallback


def test_a_resumed_run_plans_and_starts_at_each_step(states: dict[str, dict[str, Any]]) -> None:
    planned = states["PlanResume"]["Parameters"]["Payload"]["steps"]
    assert list(planned) == STEP_IDS
    for step in pipeline.STEPS:
        assert planned[step.name]["job_definition"] == f"${{{step.job_definition}Arn}}"
    resume_from = states["ResumeFrom"]
    targets = {rule["StringEquals"]: rule["Next"] for rule in resume_from["Choices"]}
    assert resume_from["Default"] == pipeline.STEPS[0].primary.state
    assert {name: state for name, state in targets.items() if name != DONE} == {
        step.name: step.primary.state for step in pipeline.STEPS[1:]}
    assert DONE in targets
    assert states["InitialiseRun"]["Parameters"]["plan"]["start_at"] == STEP_IDS[0]


def test_the_validation_summary_is_read_where_preprocessing_writes_it(states: dict[str, dict[str, Any]]) -> None:
    summary = pipeline.step("preprocess").output("validation-summary.json")
    assert summary.under == "quarantine_prefix"
    key = states["ReadValidationReport"]["Parameters"]["Key.$"]
    assert key == f"States.Format('{{}}/{summary.name}', $.run_id)"


# --- the template -----------------------------------------------------------------------------


def test_every_job_definition_is_a_steps(resources: dict[str, Any]) -> None:
    assert sorted(_job_definitions(resources)) == sorted(step.job_definition for step in pipeline.STEPS)


@pytest.mark.parametrize("step_name", STEP_IDS)
def test_the_job_command_takes_what_the_task_passes(resources: dict[str, Any],
                                                    batch_tasks: dict[str, dict[str, Any]], step_name: str) -> None:
    step = pipeline.step(step_name)
    definition = _job_definitions(resources)[step.job_definition]
    assert pipeline.step_of_job_definition(step.job_definition) is step
    for command in _commands(definition):
        refs = _ref_parameters(command)
        assert set(step.reads) | set(step.writes) <= refs
        for job in step.jobs:
            assert _parameter_names(batch_tasks[job.state]["Parameters"]["Parameters"]) == refs, job.state


@pytest.mark.parametrize("key", JOB_IDS)
def test_the_jobs_queue_and_capacity(resources: dict[str, Any], key: str) -> None:
    step, job = pipeline.step_of_job_key(key), pipeline.job(key)
    assert step is not None
    queue = resources[job.queue]
    assert queue["Type"] == "AWS::Batch::JobQueue"
    # Lineage reads the logical id off the queue's name (lineage/batch.py).
    assert queue["Properties"]["JobQueueName"] == {"Fn::Sub": f"${{AWS::StackName}}-{job.queue}"}
    multinode = _job_definitions(resources)[step.job_definition]["Properties"]["Type"] == "multinode"
    for name in (f"threadline-{job.queue}", f"arn:aws:batch:us-east-1:123456789012:job-queue/{job.queue}-AbC12"):
        assert derive_capacity(name, fallback=job.fallback, multinode=multinode) == job.capacity
        assert job_key_for(f"{job.job_name}-{RUN_ID}", name, RUN_ID) == job.key


# --- the Batch jobs ---------------------------------------------------------------------------


def test_preprocessing_writes_the_manifests_outputs() -> None:
    from preprocess import job, validate

    step = pipeline.step("preprocess")
    assert step.output(validate.CLEAN_NAME).dataset == "clean_uri"
    assert step.output(job.REPORT_NAME).dataset == "validation_uri"
    assert step.output(job.SUMMARY_NAME).under == "quarantine_prefix"
    assert step.output(validate.REJECTS_NAME).dataset is None
    assert {output.name for output in step.outputs} == {
        validate.CLEAN_NAME, job.REPORT_NAME, job.SUMMARY_NAME, validate.REJECTS_NAME}


def test_the_analysis_writes_the_manifests_partials() -> None:
    from jobkit.partials import node_of, partial_name

    (partials,) = pipeline.step("analysis").outputs
    assert partials.per_node
    for node in (0, 1, 7, 123, 9999):
        assert partials.file_name(node) == partial_name(node)
        assert node_of(partials.file_name(node)) == node


def test_postprocessing_writes_the_manifests_report() -> None:
    from postprocess import job

    step = pipeline.step("postprocess")
    assert step.output(job.REPORT_JSON).dataset == "report_json"
    assert step.output(job.REPORT_HTML).dataset == "report_html"
    assert {output.name for output in step.outputs} == {job.REPORT_JSON, job.REPORT_HTML}
