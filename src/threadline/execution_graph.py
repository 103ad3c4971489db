"""An execution drawn as the Step Functions console draws it, as one self-contained HTML page.

The page lays the state machine out in layers with dagre (a layout library
made for directed graphs; `assets/dagre-3.1.3.min.js`, MIT, shipped with the
package so that `threadline run` needs no npm or network), colours each state
by outcome, shows a clicked state's input, output, error, cause, duration and
Batch attempts, and lists the history events below. Everything is inline: it
opens offline from a file:// URL, and its Content-Security-Policy lets it
fetch nothing. The execution's data travels as JSON in a
`<script type="application/json">` (every `<`, `>` and `&` escaped) and the
page script writes it out with textContent only, so a state's input cannot
inject markup or script.
"""

from __future__ import annotations

import html
import json
import re
from importlib.resources import files
from typing import Any

from .execution_model import model

DAGRE = "dagre-3.1.3.min.js"
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)
_POLICY = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"


def render(execution: dict[str, Any], events: list[dict[str, Any]], definition: dict[str, Any],
           title: str | None = None) -> str:
    """The page for one execution: DescribeExecution's output, its history events, the state machine definition."""
    data = model(execution, events, definition)
    title = title or f"execution {execution.get('name', '')}"
    run = data["execution"]
    seconds = "" if run["seconds"] is None else f" in {run['seconds']:.2f}s"
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_POLICY}\">"
        f"<title>{html.escape(title)}</title><style>{_asset('execution_graph.css')}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p class='summary'>status <b>{html.escape(str(run['status']))}</b>{seconds}, started "
        f"{html.escape(str(run['started']))}; {_entered(data)} of {_states(data)} states entered "
        "<button type='button' id='show-execution' class='link'>(execution input and output)</button></p>"
        "<p class='legend'><span class='succeeded'>succeeded</span><span class='caught'>failed, caught</span>"
        "<span class='failed'>failed</span><span class='in-progress'>in progress</span>"
        "<span class='not-entered'>not entered</span> bold arrows: the path taken; dashed orange: Catch "
        "<span class='zoom'><button type='button' id='zoom-out' title='zoom out'>&minus;</button>"
        "<button type='button' id='zoom-fit' title='fit the width'>fit</button>"
        "<button type='button' id='zoom-in' title='zoom in'>+</button></span></p>"
        "<main><div id='graph'></div><aside id='details'></aside></main>"
        "<h2>Events</h2><table id='events'><thead><tr><th>id</th><th>type</th><th>state</th><th>time</th>"
        "<th>elapsed (s)</th><th>details</th></tr></thead><tbody></tbody></table>"
        f"<script type='application/json' id='execution-data'>{_json_for_script(data)}</script>"
        f"<script>{_script(DAGRE)}</script><script>{_script('execution_graph.js')}</script>"
        "</body></html>\n")


def _entered(data: dict[str, Any]) -> int:
    return sum(1 for node in data["nodes"] if node["outcome"] not in ("structure", "not-entered"))


def _states(data: dict[str, Any]) -> int:
    return sum(1 for node in data["nodes"] if node["outcome"] != "structure")


def _json_for_script(value: Any) -> str:
    """JSON that cannot end its <script> element early: `<`, `>` and `&` as \\u escapes (still the same JSON)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset(name: str) -> str:
    return files("threadline").joinpath("assets", name).read_text(encoding="utf-8")


def _script(name: str) -> str:
    """A shipped script, inline; its source-map comment dropped (the map is not shipped)."""
    text = _SOURCE_MAP.sub("", _asset(name))
    if "</script" in text.lower():
        raise ValueError(f"{name} contains '</script' and cannot be inlined")
    return text
