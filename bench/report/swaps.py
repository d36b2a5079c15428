"""Swaps section: one swapper x metric table (grouped, units, directions, best marked), charts for several."""

from __future__ import annotations

from idbench.escape import html_text
import json
from typing import Optional

from ._plot import PALETTE, figure_html, style
from .tables import BOLD_RULE, column_unit, table_cells


def swap_table(results: dict) -> Optional[str]:
    """Metrics down (grouped identity / pose / expression / gaze / shape), swappers across, best per metric bold."""
    t = table_cells(results, "swapper")
    if t is None:
        return None
    esc = html_text
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
               "pairs, or target x source videos); " + BOLD_RULE + "; "
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
    """Small multiples, one dot-and-whisker panel per metric (mean and its 95% interval), swappers down the side
    in the table's order (names written once per row of panels, horizontally: 40 characters fit), for two or more
    swappers."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from idbench.analysis.catalogue import column_metric

    t = table_cells(results, "swapper")
    if t is None or len(t["names"]) < 2:
        return None
    cols = [c for _, cs in t["groups"] for c in cs]
    names = t["names"]
    ncol = min(3, len(cols))
    nrow = -(-len(cols) // ncol)
    row_px, title_px = 34 + 24 * len(names), 105  # panel height; room for x ticks + x title + the next two-line title
    margin_t, margin_b = 90, 70
    plot_px = nrow * row_px + (nrow - 1) * title_px
    height = plot_px + margin_t + margin_b
    titles = []
    for c in cols:
        m, suffix = column_metric(c), c.partition("[")[2].rstrip("]")
        arrow = {"higher": "↑", "lower": "↓"}.get(m.direction, "")
        titles.append(f"{m.label} {arrow}<br><sup>{suffix}</sup>" if suffix else f"{m.label} {arrow}")
    fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=titles, shared_yaxes=True,
                        horizontal_spacing=0.06, vertical_spacing=title_px / plot_px if nrow > 1 else 0)
    colour = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    for i, c in enumerate(cols):
        r, k = i // ncol + 1, i % ncol + 1
        for n in names:
            v = results["swappers"][n]["summary"].get(c)
            if v is None:
                continue
            ci = (results["swappers"][n].get("intervals") or {}).get(c)
            err = dict(type="data", symmetric=False, array=[ci[1] - v], arrayminus=[v - ci[0]], thickness=1.5,
                       width=5) if ci and None not in ci else None
            fig.add_trace(go.Scatter(x=[v], y=[n], mode="markers", marker=dict(size=9, color=colour[n]),
                                     error_x=err, showlegend=False,
                                     hovertemplate=f"{n}: %{{x:.4g}}<extra>{c}</extra>"), row=r, col=k)
        fig.update_xaxes(title_text=column_unit(c) or "value", nticks=4, row=r, col=k)
    fig.update_yaxes(categoryorder="array", categoryarray=names[::-1], automargin=True)
    fig.update_yaxes(title_text="swapper", col=1)
    fig.update_annotations(font_size=12)
    fig = style(fig, height, "Swap metrics per swapper: mean and 95% interval (the table's order)")
    longest = max(len(n) for n in names)
    fig.update_layout(margin=dict(l=min(420, 40 + 7 * longest), t=margin_t, b=margin_b))
    return figure_html(fig, "plot-swaps")


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
            parts.append(f"<p class='small'><b>{html_text(n)}</b> parameters: "
                         f"<code>{html_text(_params(r['params']))}</code></p>")
        if r.get("estimators"):
            est = ", ".join(f"{k}: {v}" for k, v in r["estimators"].items())
            parts.append(f"<p class='small'><b>{html_text(n)}</b> estimators: {html_text(est)}; identity "
                         f"evaluators: {html_text(', '.join(r.get('id_encoders') or []) or 'none')}</p>")
        if not r.get("summary"):
            parts.append(f"<p class='warn'>{html_text(n)}: no swap could be evaluated (see Failures).</p>")
    return "".join(parts)
