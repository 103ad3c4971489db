"""The `threadline` command (typer): `app.py` holds the top-level commands, `lineage.py` the
`threadline lineage` ones; `render.py` is what the twin's runs print, `twin_session.py` runs a
twin inside a command. Querying the lineage graph and AWS is `threadline.lineage`'s."""

from .app import app

__all__ = ["app"]
