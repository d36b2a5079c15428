"""Swaps section: one swapper x metric table (grouped, units, directions, best marked), charts for several."""

from __future__ import annotations

import html
import json
from typing import Optional

from ._plot import PALETTE, figure_html, html_table, style
from .tables import column_unit, table_cells


def swap_table(results: dict) -> Optional[str]:
    t = table_cells(results, "swapper")
    if t is None:
        return None
    cols = [c for _, cs in t["groups"] for c in cs]
    arrow = {"higher": "↑", "lower": "↓"}
    header = ["swapper", "swaps"] + [f"{c} {arrow.get(t['direction'].get(c, ''), '')} ({column_unit(c)})"
                                     for c in cols]
    rows, bold = [], []
    for n in t["names"]:
        sw = results["swappers"][n]
        rows.append([n, str(sw.get("summary", {}).get("n_swaps", sw.get("n", "")))] +
                    [t["cells"][n, c][0] for c in cols])
        bold.append([False, False] + [t["cells"][n, c][2] for c in cols])
    groups = [("", 2)] + [(g, len(cs)) for g, cs in t["groups"]]
    caption = ("Swap evaluation: ↑ higher / ↓ lower is better; bold: best per column (with two or more "
               "swappers); the estimator is in brackets; *_relative = share of swaps closer to the right "
               "reference than to the wrong one (0.5 = undecided)")
    return html_table(header, rows, bold, caption, header_rows=[groups])


def swap_charts(results: dict) -> Optional[str]:
    """Small multiples, one bar chart per metric, swappers sorted best first (only for two or more)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    t = table_cells(results, "swapper")
    if t is None or len(t["names"]) < 2:
        return None
    cols = [c for _, cs in t["groups"] for c in cs]
    ncol = 3
    nrow = -(-len(cols) // ncol)
    fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=cols, vertical_spacing=0.5 / max(nrow, 1))
    colour = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(t["names"])}
    for i, c in enumerate(cols):
        d = t["direction"].get(c, "")
        vals = {n: results["swappers"][n]["summary"].get(c) for n in t["names"]}
        names = sorted((n for n in vals if vals[n] is not None), key=lambda n: vals[n], reverse=d == "higher")
        r, k = i // ncol + 1, i % ncol + 1
        fig.add_trace(go.Bar(x=names, y=[vals[n] for n in names], marker_color=[colour[n] for n in names],
                             showlegend=False), row=r, col=k)
        fig.update_yaxes(title_text=f"{column_unit(c) or 'value'} ({d} is better)", row=r, col=k)
        fig.update_xaxes(title_text="swapper", row=r, col=k)
    fig.update_annotations(font_size=11)
    return figure_html(style(fig, 300 * nrow, "Swap metrics per swapper (sorted best first)"), "plot-swaps")


def _params(p) -> str:
    if isinstance(p, dict):
        return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in p.items())
    return json.dumps(p, default=str)


def swaps_section(results: dict) -> Optional[str]:
    sw = results.get("swappers") or {}
    if not sw:
        return None
    parts = [swap_table(results) or "", swap_charts(results) or ""]
    for n, r in sw.items():
        if r.get("params"):
            parts.append(f"<p class='small'><b>{html.escape(n)}</b> parameters: "
                         f"<code>{html.escape(_params(r['params']))}</code></p>")
        if r.get("estimators"):
            est = ", ".join(f"{k}: {v}" for k, v in r["estimators"].items())
            parts.append(f"<p class='small'><b>{html.escape(n)}</b> estimators: {html.escape(est)}; identity "
                         f"evaluators: {html.escape(', '.join(r.get('id_encoders') or []) or 'none')}</p>")
        if not r.get("summary"):
            parts.append(f"<p class='warn'>{html.escape(n)}: no swap could be evaluated (see Failures).</p>")
    return "".join(parts)
