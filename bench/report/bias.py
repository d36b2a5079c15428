"""Bias section: similarity densities per encoder and the gap / relative gap / AUC with 95% intervals."""

from __future__ import annotations

from typing import List, Optional

import numpy as np

from ._plot import GROUP_COLOURS, colour_of, encoder_order, figure_html, style

GROUPS = (("positive", "positive: same identity"), ("swapped", "swapped: pseudo-swap of same identity"),
          ("negative", "negative: nearest-landmark other identity"))
MAX_BINS = 40  # sqrt(n of the largest group), 15..40 bins


def shared_edges(score_sets: List[dict]) -> np.ndarray:
    """One set of bin edges for every group and encoder, so bar widths and heights compare."""
    groups = [np.asarray(s[g], float) for s in score_sets for g, _ in GROUPS if len(s.get(g, []))]
    allv = np.concatenate(groups)
    lo, hi = float(allv.min()), float(allv.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.01, hi + 0.01
    pad = (hi - lo) * 0.02  # a little room, so the outermost bars are not clipped at the axis
    n_bins = int(np.clip(np.sqrt(max(len(g) for g in groups)), 15, MAX_BINS))
    return np.linspace(lo - pad, hi + pad, n_bins + 1)


def density_figure(encs: dict, names: List[str], edges: np.ndarray):
    """One row per encoder, the three groups overlaid on the same bins; each row has its own legend with n."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    gap = 0.3 / len(names) if len(names) > 1 else 0
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=gap,
                        subplot_titles=[f"{n}" for n in names])
    size = float(edges[1] - edges[0])
    for r, n in enumerate(names, start=1):
        legend = "legend" if r == 1 else f"legend{r}"
        for g, label in GROUPS:
            v = np.asarray(encs[n]["scores"].get(g, []), float)
            if not len(v):
                continue
            # binned here, not in the browser: the page holds one number per bin, whatever the number of scores
            dens, _ = np.histogram(v, bins=edges, density=True)
            fig.add_trace(go.Bar(x=0.5 * (edges[:-1] + edges[1:]), y=dens, width=size,
                                 name=f"{label} (n={len(v)}, mean {v.mean():.3f})", legend=legend,
                                 marker_color=GROUP_COLOURS[g], opacity=0.55), row=r, col=1)
            fig.add_vline(x=float(v.mean()), line=dict(color=GROUP_COLOURS[g], dash="dash", width=1.5), row=r, col=1)
        fig.update_yaxes(title_text="density", row=r, col=1)
    fig.update_xaxes(range=[float(edges[0]), float(edges[-1])], showticklabels=True,
                     title_text="cosine similarity to the anchor")
    height = 90 + 280 * len(names)
    for r in range(1, len(names) + 1):  # each row's legend beside its panel
        dom = fig.layout[f"yaxis{'' if r == 1 else r}"].domain
        fig.layout[f"legend{'' if r == 1 else r}"] = dict(x=1.01, y=dom[1], yanchor="top", font_size=11,
                                                          bgcolor="rgba(255,255,255,0.8)")
    fig.update_layout(barmode="overlay")
    fig = style(fig, height, "Similarity to the anchor: P, S, N on shared bins (dashed: group means)")
    fig.update_layout(margin=dict(r=330))
    return fig


INTERVALS = (("mean_gap", "mean_gap_ci", "mean gap", "mean(P) − mean(S) (cosine)", 0.0),
             ("relative_gap", "relative_gap_ci", "relative gap", "(P − S) / (P − N) (share of P − N)", 0.0),
             ("auc", "auc_ci", "AUC positive vs swapped", "AUC = P(p > s) (probability)", 0.5))


def interval_figure(results: dict, names: List[str], order_note: str):
    """Dot-and-whisker charts: one row per encoder, one panel per statistic, reference lines drawn."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    encs = results["encoders"]
    colours = colour_of(results)
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=[t for _, _, t, _, _ in INTERVALS])
    for k, (key, ci_key, _, axis_title, ref) in enumerate(INTERVALS, start=1):
        for n in names:
            b = encs[n]["bias"]
            v = b.get(key)
            if v is None:
                continue
            ci = b.get(ci_key) or [v, v]
            fig.add_trace(go.Scatter(x=[v], y=[n], mode="markers", marker=dict(size=11, color=colours[n]),
                                     error_x=dict(type="data", symmetric=False, array=[ci[1] - v],
                                                  arrayminus=[v - ci[0]], thickness=2, width=6),
                                     name=n, showlegend=False,
                                     hovertemplate=f"{n}: %{{x:.4f}} [{ci[0]:.4f}, {ci[1]:.4f}]<extra></extra>"),
                          row=1, col=k)
        fig.add_vline(x=ref, line=dict(color="black", dash="dot", width=1.5), row=1, col=k,
                      annotation_text="no bias", annotation_position="top right", annotation_font_size=10)
        fig.update_xaxes(title_text=axis_title, row=1, col=k)
    # categories top to bottom, with one empty slot on top for the "no bias" labels
    fig.update_yaxes(range=[len(names) - 0.5, -1.0], autorange=False)
    fig.update_yaxes(title_text="encoder", row=1, col=1)
    fig.update_annotations(font_size=12)
    title = f"Attribute bias with bootstrap 95% intervals (dotted: no bias; {order_note})"
    return style(fig, 170 + 45 * len(names), title)


def bias_section(results: dict) -> Optional[str]:
    encs = results.get("encoders", {})
    names, note = encoder_order(results)
    with_scores = [n for n in names if encs[n].get("scores")]
    parts = []
    errors = [f"<p class='warn'>{n}: {encs[n]['bias_error']}</p>" for n in names if encs[n].get("bias_error")]
    if with_scores:
        edges = shared_edges([encs[n]["scores"] for n in with_scores])
        parts.append(figure_html(density_figure(encs, with_scores, edges), "plot-bias-density"))
        parts.append(f"<p class='small'>Shared bins: {len(edges) - 1} bins of width {edges[1] - edges[0]:.4f} cosine "
                     f"over [{edges[0]:.3f}, {edges[-1]:.3f}] for every group and encoder; densities integrate to 1, "
                     f"so groups of different size compare. Rows: {note}.</p>")
    with_bias = [n for n in names if encs[n].get("bias")]
    if with_bias:
        parts.append(figure_html(interval_figure(results, with_bias, note), "plot-bias-intervals"))
    if not parts and not errors:
        return None
    intro = ("<p>BlendFace's attribute-bias analysis: P = anchor vs other images of the same identity, "
             "S = anchor vs pseudo-swaps of those images (same inner face, another person's hair, head shape, "
             "skin and background), N = anchor vs the nearest-landmark image of another identity. An encoder "
             "without attribute bias has P = S: gap 0, relative gap 0, AUC 0.5.</p>")
    return intro + "".join(errors) + "".join(parts)
