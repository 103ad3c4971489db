"""report.html: one self-contained page (inline CSS and SVG, no external assets).

Shows the risk figures and a histogram of portfolio P&L with the VaR 95 %,
VaR 99 % and ES 97.5 % marks drawn on it. Every text from the run is escaped.
The run's compute cost is not known until the run ends, after this job: the page
holds a placeholder section (`COST_PLACEHOLDER`) that the lineage function
replaces with the cost table when the run succeeds (threadline_common.cost_section).
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from .risk import RiskFigures

WIDTH, HEIGHT = 760, 340
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 50
BINS = 60

# Replaced as a whole, from `<section id="run-cost">` to its `</section>`, by the lineage function.
COST_PLACEHOLDER = """<section id="run-cost">
<h2>Compute cost</h2>
<p class="sub">The run's compute cost is added here when the run ends.</p>
</section>"""

_MARKS = (
    ("var_95", "VaR 95%", "#d98c00", ""),
    ("var_99", "VaR 99%", "#c0392b", ""),
    ("es_975", "ES 97.5%", "#6c1a12", "6 4"),
)

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem; color: #1d2733; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; }
p.sub { color: #5b6675; margin-top: 0; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { text-align: left; padding: .25rem .9rem .25rem 0; border-bottom: 1px solid #e3e7ec; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
svg text { font-size: 11px; fill: #1d2733; }
footer { color: #5b6675; font-size: .85rem; margin-top: 1.5rem; max-width: 46rem; }
"""


def money(value: float) -> str:
    return f"{value:,.2f}"


def _short(value: float) -> str:
    size = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def histogram_svg(pnl: np.ndarray, figures: RiskFigures) -> str:
    low, high = float(pnl.min()), float(pnl.max())
    if high <= low:
        low, high = low - 1.0, high + 1.0
    counts, edges = np.histogram(pnl, bins=BINS, range=(low, high))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_count = max(int(counts.max()), 1)

    def x_of(value: float) -> float:
        return LEFT + (value - low) / (high - low) * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="hist-title">',
        '<title id="hist-title">Histogram of simulated portfolio P&amp;L with VaR and ES marks</title>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#f7f9fb"/>',
    ]
    bar_w = plot_w / BINS
    for i, count in enumerate(counts):
        if count == 0:
            continue
        h = count / top_count * plot_h
        colour = "#e8a397" if edges[i + 1] <= -figures.var_95 else "#7fa7d1"
        parts.append(f'<rect x="{LEFT + i * bar_w:.2f}" y="{TOP + plot_h - h:.2f}" '
                     f'width="{max(bar_w - 1, 0.5):.2f}" height="{h:.2f}" fill="{colour}"/>')
    axis_y = TOP + plot_h
    parts.append(f'<line x1="{LEFT}" y1="{axis_y}" x2="{LEFT + plot_w}" y2="{axis_y}" stroke="#1d2733"/>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{axis_y}" stroke="#1d2733"/>')
    for value in np.linspace(low, high, 6):
        x = x_of(float(value))
        parts.append(f'<line x1="{x:.2f}" y1="{axis_y}" x2="{x:.2f}" y2="{axis_y + 5}" stroke="#1d2733"/>')
        parts.append(f'<text x="{x:.2f}" y="{axis_y + 18}" text-anchor="middle">{escape(_short(float(value)))}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">P&amp;L over the horizon</text>')
    parts.append(f'<text x="{LEFT - 8}" y="{TOP + 4}" text-anchor="end">{top_count}</text>')
    parts.append(f'<text x="{LEFT - 8}" y="{axis_y}" text-anchor="end">0</text>')
    parts.append(f'<text x="14" y="{TOP + plot_h / 2}" transform="rotate(-90 14 {TOP + plot_h / 2})" '
                 'text-anchor="middle">scenarios</text>')
    legend_x = LEFT
    for key, label, colour, dash in _MARKS:
        loss = getattr(figures, key)
        x = min(max(x_of(-loss), LEFT), LEFT + plot_w)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{x:.2f}" y1="{TOP}" x2="{x:.2f}" y2="{axis_y}" stroke="{colour}" '
                     f'stroke-width="2"{dash_attr}><title>{escape(label)}: {escape(money(loss))}</title></line>')
        parts.append(f'<line x1="{legend_x}" y1="{TOP - 16}" x2="{legend_x + 22}" y2="{TOP - 16}" '
                     f'stroke="{colour}" stroke-width="2"{dash_attr}/>')
        parts.append(f'<text x="{legend_x + 27}" y="{TOP - 12}">{escape(label)} = {escape(money(loss))}</text>')
        legend_x += 210
    parts.append("</svg>")
    return "\n".join(parts)


def _rows(items: list[tuple[str, Any]]) -> str:
    out = []
    for label, value in items:
        if isinstance(value, float):
            text = money(value)
        elif isinstance(value, int):
            text = f"{value:,}"
        else:
            text = str(value)
        css = ' class="num"' if isinstance(value, (int, float)) else ""
        out.append(f"<tr><th>{escape(label)}</th><td{css}>{escape(text)}</td></tr>")
    return "\n".join(out)


def render(report: dict[str, Any], figures: RiskFigures, pnl: np.ndarray) -> str:
    run = report["run"]
    title = f"Portfolio risk report — {run['run_id']}"
    risk_rows = _rows([
        ("VaR 95%", figures.var_95),
        ("VaR 99%", figures.var_99),
        ("Expected shortfall 97.5%", figures.es_975),
        ("Mean P&L", figures.mean_pnl),
        ("Std. dev. of P&L", figures.std_pnl),
        ("Worst scenario P&L", figures.min_pnl),
        ("Best scenario P&L", figures.max_pnl),
    ])
    run_rows = _rows([
        ("Scenarios", figures.scenarios),
        ("Horizon (trading days)", f"{run['horizon_days']:g}"),
        ("Seed", run["seed"]),
        ("Positions", run["positions"]),
        ("Gross exposure", run["gross_exposure"]),
        ("Net exposure", run["net_exposure"]),
        ("Rows accepted / rejected", f"{run['accepted_rows']} / {run['rejected_rows']}"),
        ("Analysis nodes", run["num_nodes"]),
        ("Array backend", run["backend"]),
    ])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="sub">Monte Carlo P&amp;L of the portfolio over {escape(f"{run['horizon_days']:g}")} trading days.</p>
{histogram_svg(pnl, figures)}
<h2>Risk figures</h2>
<table>
{risk_rows}
</table>
<h2>Run</h2>
<table>
{run_rows}
</table>
{COST_PLACEHOLDER}
<footer>VaR at level a: the loss exceeded in only a share 1 &minus; a of scenarios (the
k-th worst P&amp;L, k = &lceil;n(1 &minus; a)&rceil;). Expected shortfall 97.5%: the mean loss of
the worst 2.5% of scenarios. Losses are shown as positive numbers.</footer>
</body>
</html>
"""
