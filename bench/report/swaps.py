"""Swaps section: one swapper x metric table (grouped, units, directions, best marked), charts for several."""

from __future__ import annotations

import html
import json
from typing import Optional

from ._plot import PALETTE, figure_html, style
from .tables import column_unit, table_cells


def swap_table(results: dict) -> Optional[str]:
    """Metrics down (grouped identity / pose / expression / gaze / shape), swappers across, best per metric bold."""
    t = table_cells(results, "swapper")
    if t is None:
        return None
    esc = html.escape
    arrow = {"higher": "↑ higher", "lower": "↓ lower"}
    head = "".join(f"<th>{esc(h)}</th>" for h in ["metric [estimator]", "unit", "better"] + t["names"])
    n_swaps = [str(results["swappers"][n].get("summary", {}).get("n_swaps", "")) for n in t["names"]]
    body = ["<tr><td>swaps evaluated</td><td>count</td><td></td>" + "".join(f"<td>{c}</td>" for c in n_swaps) + "</tr>"]
    for group, cols in t["groups"]:
        body.append(f'<tr class="group"><th colspan="{3 + len(t["names"])}">{esc(group)}</th></tr>')
        for c in cols:
            cells = "".join(f'<td class="best">{esc(_pm(v, pm))}</td>' if best else f"<td>{esc(_pm(v, pm))}</td>"
                            for v, pm, best in (t["cells"][n, c] for n in t["names"]))
            body.append(f"<tr><td>{esc(c)}</td><td>{esc(column_unit(c))}</td>"
                        f"<td>{arrow.get(t['direction'].get(c, ''), '')}</td>{cells}</tr>")
    caption = ("Swap evaluation, one column per swapper: value ± half its 95% interval (bootstrap over swap "
               "pairs, or target x source videos); bold = best per metric (with two or more swappers); "
               "*_relative = share of swaps closer to the right reference than to the wrong one (0.5 = undecided)")
    return (f'<table class="data"><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _pm(value: str, pm) -> str:
    return value if pm is None or value == "" else f"{value} ± {pm}"


def comparison_table(results: dict) -> Optional[str]:
    """Paired differences of the swappers on their shared swaps (``results["swap_comparisons"]``)."""
    from ._plot import html_table
    from .tables import fmt_value

    comp = results.get("swap_comparisons") or {}
    rows = []
    for m, pairs in comp.items():
        for r in pairs:
            if "error" in r:
                rows.append([m, f"{r['a']} - {r['b']}", "", "", "", "", r["error"]])
                continue
            ci = r.get("ci") or [None, None]
            rows.append([m, f"{r['a']} - {r['b']}", str(r.get("n_shared", "")), fmt_value(r["difference"]),
                         f"[{fmt_value(ci[0])}, {fmt_value(ci[1])}]", fmt_value(r.get("p_value")),
                         fmt_value(r.get("p_holm")) + (" *" if r.get("significant") else "")])
    if not rows:
        return None
    return html_table(["metric", "A - B", "shared swaps", "difference", "95% CI", "p", "p (Holm) *<0.05"], rows,
                      caption="Paired comparison of swappers on the same swaps: cluster bootstrap interval, sign-flip "
                              "permutation p-value, Holm-adjusted over the swapper pairs of each metric")


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
    parts = [swap_table(results) or "", comparison_table(results) or "", swap_charts(results) or ""]
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
