"""`python -m preprocess ...` (run from jobs/)."""

from jobkit.runner import run

from .job import main

raise SystemExit(run("preprocess", main))
