"""The job images a deploy builds: one per job, plus the GPU variant of the analysis.

The analysis job definition asks for GPUs, so the stack runs the GPU variant
(`AnalysisImageDigest`); the CPU variant is pushed beside it for CPU runs of the
same code by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .context import content_hash

BUILD_CONTEXT = Path("jobs")  # every job definition's Metadata.DockerContext, relative to the project
SHARED_FOLDER = "jobkit"
HASH_CHARS = 24  # of the sha256 in the tag: 96 bits, ample to name every build of a repository


@dataclass(frozen=True)
class JobImage:
    name: str                     # shown in the output
    job: str                      # folder under jobs/, and the repository suffix
    gpu: bool = False
    digest_parameter: str | None = None  # the template parameter that pins the job definition to it

    @property
    def dockerfile(self) -> str:
        """Relative to the build context (`jobs/`), as the job definitions' Metadata.Dockerfile."""
        return f"{self.job}/Dockerfile"

    @property
    def build_args(self) -> dict[str, str]:
        return {"GPU": "1"} if self.gpu else {}

    def repository(self, stack_name: str) -> str:
        """The template's `${AWS::StackName}/<job>` repository name."""
        return f"{stack_name}/{self.job}"

    def source_hash(self, context: Path) -> str:
        """sha256 (hex) of what the image is built from: jobkit, the job's folder and the build arguments."""
        return content_hash(context, [SHARED_FOLDER, self.job], self.build_args)

    def tag(self, context: Path) -> str:
        """`src-<content hash>` (`-gpu` for the GPU variant): equal tag, equal image."""
        return f"src-{self.source_hash(context)[:HASH_CHARS]}{'-gpu' if self.gpu else ''}"


JOB_IMAGES = (
    JobImage("preprocess", "preprocess", digest_parameter="PreprocessImageDigest"),
    JobImage("analysis", "analysis"),
    JobImage("analysis-gpu", "analysis", gpu=True, digest_parameter="AnalysisImageDigest"),
    JobImage("postprocess", "postprocess", digest_parameter="PostprocessImageDigest"),
)


def twin_digest_parameters(context: Path) -> dict[str, str]:
    """The digest parameters for the offline twin, which has no registry: each image's content hash.

    Like a registry digest it changes exactly when what the image is built from
    changes, so resume cache keys (which only trust digests) behave as in a stack
    that `threadline deploy` pinned.
    """
    return {image.digest_parameter: "sha256:" + image.source_hash(context)
            for image in JOB_IMAGES if image.digest_parameter}
