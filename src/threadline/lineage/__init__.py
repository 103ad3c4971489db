"""The CLI's side of the lineage graph: where to read it and what it says about a twin's run (`view.py`,
`clients.py`), how its answers look (`render.py`, `html.py`), and the two actions on a deployed
pipeline, a rerun (`rerun.py`) and a dead-letter redrive (`redrive.py`).

The queries themselves are the layer's (`threadline_common.lineage.reader`), the same code the
Lambda functions run.
"""
