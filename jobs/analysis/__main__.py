"""`python -m analysis ...` (run from jobs/)."""

from jobkit.runner import run

from .job import main

raise SystemExit(run("analysis", main))
