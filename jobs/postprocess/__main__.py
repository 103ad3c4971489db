"""`python -m postprocess ...` (run from jobs/)."""

from jobkit.runner import run

from .job import main

raise SystemExit(run("postprocess", main))
