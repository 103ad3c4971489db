"""The pipeline manifest: threadline's steps, in order, and the facts other code shares about them.

Each step names its job definition (the logical id in `template.yaml`), the
Batch jobs the state machine submits for it (the primary job, then its
fallback), the job parameters that name what it reads and what it writes
(docs/design.md, "Batch job command-line contract") and the objects it writes
under those prefixes. Lineage, resume and the tests read these facts from here;
`tests/template/test_pipeline_manifest.py` checks the state machine, the
template and the jobs' own constants against them. Adding a step is an entry in
`STEPS` plus its states in `statemachines/pipeline.asl.json` and its job
definition in the template.

The Batch job images cannot import this layer (their build context is `jobs/`),
so they keep their own output names and the tests compare them with these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Capacity = Literal["SPOT", "ON_DEMAND", "GPU", "GPU_FALLBACK"]
SPOT: Capacity = "SPOT"
ON_DEMAND: Capacity = "ON_DEMAND"
GPU: Capacity = "GPU"
GPU_FALLBACK: Capacity = "GPU_FALLBACK"

# The job parameter naming the run's input file (`$.source.uri`); every other dataset a
# step reads is one an earlier step wrote.
SOURCE_PARAMETER = "input_uri"


@dataclass(frozen=True)
class Job:
    """One way the state machine submits a step to Batch: one Task state of the ASL."""

    key: str
    """Where the state machine files the job: `$.jobs.<key>` / `$.failures.<key>`."""
    job_name: str
    """The JobName prefix: the job is named `<job_name>-<run id>`."""
    queue: str
    """The logical id of the job queue in `template.yaml`."""
    capacity: Capacity
    """What the queue's compute environments run on."""
    state: str
    """The name of the ASL Task state that submits the job."""
    fallback: bool = False
    """Submitted only after the primary job failed for want of capacity."""


@dataclass(frozen=True)
class Output:
    """One object a step writes under a prefix one of its parameters names."""

    name: str
    """The object's name under the prefix; with `per_node`, a format of `node` (`node-{node:04d}.parquet`)."""
    under: str
    """The job parameter naming the prefix it is written under."""
    dataset: str | None = None
    """The `$.plan.datasets` entry (and later steps' parameter) naming it, if later steps read it."""
    per_node: bool = False
    """One object per node of a multi-node job."""

    def file_name(self, node: int = 0) -> str:
        """The object's name (for a per-node output, node `node`'s)."""
        return self.name.format(node=node) if self.per_node else self.name


@dataclass(frozen=True)
class Step:
    """One step of the pipeline: a job definition, the jobs that run it, what it reads and writes."""

    name: str
    """The step's name: lineage's `step`, resume's `start_at`, the first part of its job keys."""
    job_definition: str
    """The logical id of its job definition in `template.yaml` (`${<id>Arn}` in the ASL)."""
    jobs: tuple[Job, ...]
    """The primary job first, then the fallback the state machine submits instead."""
    reads: tuple[str, ...]
    """The job parameters naming the datasets it reads."""
    writes: tuple[str, ...]
    """The job parameters naming the prefixes it writes."""
    outputs: tuple[Output, ...]
    """The objects it writes under those prefixes (or the quarantine prefix)."""
    prefix_dataset: str | None = None
    """The `$.plan.datasets` entry naming its output prefix itself, for a step later steps read whole."""

    @property
    def job_name(self) -> str:
        """The JobName prefix of its primary job."""
        return self.jobs[0].job_name

    @property
    def primary(self) -> Job:
        return self.jobs[0]

    @property
    def fallback(self) -> Job | None:
        """The job submitted when the primary one found no capacity, if the step has one."""
        return next((job for job in self.jobs if job.fallback), None)

    @property
    def job_keys(self) -> tuple[str, ...]:
        return tuple(job.key for job in self.jobs)

    @property
    def states(self) -> tuple[str, ...]:
        """The ASL Task states that submit its jobs."""
        return tuple(job.state for job in self.jobs)

    @property
    def output_parameter(self) -> str:
        """The parameter naming the prefix its outputs for later steps lie under."""
        return self.writes[0]

    @property
    def datasets(self) -> dict[str, str]:
        """What it hands to later steps: `$.plan.datasets` entry -> name under its output prefix ("": the prefix)."""
        handed = {output.dataset: output.name for output in self.outputs if output.dataset}
        if self.prefix_dataset:
            handed[self.prefix_dataset] = ""
        return handed

    def output(self, name: str) -> Output:
        """The output called `name` (KeyError when the step writes no such object)."""
        for output in self.outputs:
            if output.name == name:
                return output
        raise KeyError(f"{self.name} writes no {name!r}")


STEPS: tuple[Step, ...] = (
    Step(
        name="preprocess",
        job_definition="PreprocessJobDefinition",
        jobs=(
            Job("preprocess", "preprocess", "SpotJobQueue", SPOT, "Preprocess"),
            Job("preprocess_on_demand", "preprocess-ondemand", "OnDemandJobQueue", ON_DEMAND,
                "PreprocessOnDemand", fallback=True),
        ),
        reads=(SOURCE_PARAMETER,),
        writes=("output_prefix",),
        outputs=(
            Output("clean.parquet", "output_prefix", dataset="clean_uri"),
            Output("validation.json", "output_prefix", dataset="validation_uri"),
            Output("validation-summary.json", "quarantine_prefix"),
            Output("rejects.csv", "output_prefix"),
        ),
    ),
    Step(
        name="analysis",
        job_definition="AnalysisJobDefinition",
        jobs=(
            Job("analysis", "analysis", "GpuJobQueue", GPU, "Analysis"),
            Job("analysis_fallback", "analysis-fallback", "GpuFallbackJobQueue", GPU_FALLBACK,
                "AnalysisOnFallbackQueue", fallback=True),
        ),
        reads=("clean_uri",),
        writes=("partials_prefix",),
        outputs=(Output("node-{node:04d}.parquet", "partials_prefix", per_node=True),),
        prefix_dataset="partials_prefix",
    ),
    Step(
        name="postprocess",
        job_definition="PostprocessJobDefinition",
        jobs=(
            Job("postprocess", "postprocess", "SpotJobQueue", SPOT, "Postprocess"),
            Job("postprocess_on_demand", "postprocess-ondemand", "OnDemandJobQueue", ON_DEMAND,
                "PostprocessOnDemand", fallback=True),
        ),
        reads=("partials_prefix", "validation_uri"),
        writes=("report_prefix",),
        outputs=(
            Output("report.json", "report_prefix", dataset="report_json"),
            Output("report.html", "report_prefix", dataset="report_html"),
        ),
    ),
)


def step_names() -> tuple[str, ...]:
    """The steps' names in pipeline order."""
    return tuple(step.name for step in STEPS)


def step(name: str) -> Step:
    """The step called `name` (KeyError for any other name)."""
    for candidate in STEPS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no pipeline step {name!r}")


def position(name: str) -> int | None:
    """The step's place in pipeline order (0-based), or None for a name that is no step."""
    return next((index for index, candidate in enumerate(STEPS) if candidate.name == name), None)


def jobs() -> tuple[tuple[Step, Job], ...]:
    """Every job of every step, in pipeline order, each with its step."""
    return tuple((candidate, job) for candidate in STEPS for job in candidate.jobs)


def job(key: str) -> Job:
    """The job filed under `key` in `jobs`/`failures` (KeyError for any other key)."""
    for _, found in jobs():
        if found.key == key:
            return found
    raise KeyError(f"no pipeline job {key!r}")


def job_keys() -> tuple[str, ...]:
    """Every job key, in pipeline order, each primary before its fallback."""
    return tuple(found.key for _, found in jobs())


def step_of_job_key(key: str) -> Step | None:
    """The step a job key belongs to, or None for a key no step uses."""
    return next((candidate for candidate, found in jobs() if found.key == key), None)


def step_of_job_definition(logical_id: str) -> Step | None:
    """The step whose job definition has this logical id, or None."""
    return next((candidate for candidate in STEPS if candidate.job_definition == logical_id), None)


def producer_of(dataset: str) -> Step | None:
    """The step that hands `dataset` (a `$.plan.datasets` entry) to later steps, or None (the run's input)."""
    return next((candidate for candidate in STEPS if dataset in candidate.datasets), None)


def dataset_output(dataset: str) -> Output:
    """The object a `$.plan.datasets` entry names (KeyError for the partials prefix and unknown names)."""
    for candidate in STEPS:
        for output in candidate.outputs:
            if output.dataset == dataset:
                return output
    raise KeyError(f"no step output is the dataset {dataset!r}")
