"""`python -m threadline.cli`: the `threadline` command."""

from .app import app

app()
