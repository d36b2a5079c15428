"""Bias section: similarity densities per encoder and the gap / relative gap / AUC with 95% intervals."""

from __future__ import annotations

from typing import List, Optional

import numpy as np

from ._plot import GROUP_COLOURS, colour_of, encoder_order, figure_html, style

GROUPS = (("positive", "positive: same identity"), ("swapped", "swapped: pseudo-swap of same identity"),
          ("negative", "negative: nearest-landmark other identity"))
N_BINS = 40


def shared_edges(score_sets: List[dict], n_bins: int = N_BINS) -> np.ndarray:
    """One set of bin edges for every group and encoder, so bar widths and heights compare."""
    allv = np.concatenate([np.asarray(s[g], float) for s in score_sets for g, _ in GROUPS if len(s.get(g, []))])
    lo, hi = float(allv.min()), float(allv.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.01, hi + 0.01
    pad = (hi - lo) * 0.02  # a little room, so the outermost bars are not clipped at the axis
    return np.linspace(lo - pad, hi + pad, n_bins + 1)


def density_figure(name: str, scores: dict, edges: np.ndarray):
    import plotly.graph_objects as go

    fig = go.Figure()
    size = float(edges[1] - edges[0])
    for g, label in GROUPS:
        v = np.asarray(scores.get(g, []), float)
        if not len(v):
            continue
        fig.add_trace(go.Histogram(x=v, name=f"{label} (n={len(v)})", histnorm="probability density",
                                   xbins=dict(start=float(edges[0]), end=float(edges[-1]), size=size),
                                   marker_color=GROUP_COLOURS[g], opacity=0.55))
        fig.add_vline(x=float(v.mean()), line=dict(color=GROUP_COLOURS[g], dash="dash", width=1.5))
    fig.update_layout(barmode="overlay", legend=dict(orientation="h", y=-0.28, x=0, font_size=11))
    fig.update_xaxes(title_text="cosine similarity to the anchor", range=[float(edges[0]), float(edges[-1])])
    fig.update_yaxes(title_text="density (1 / cosine unit)")
    return style(fig, 400, f"{name}: similarity to the anchor (dashed: group means)")


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
                      annotation_text="no bias", annotation_position="bottom")
        fig.update_xaxes(title_text=axis_title, row=1, col=k)
    fig.update_yaxes(title_text=f"encoder ({order_note})", row=1, col=1, autorange="reversed")
    fig.update_annotations(font_size=12)
    return style(fig, 150 + 45 * len(names), "Attribute bias with bootstrap 95% intervals (dotted: no bias)")


def bias_section(results: dict) -> Optional[str]:
    encs = results.get("encoders", {})
    names, note = encoder_order(results)
    with_scores = [n for n in names if encs[n].get("scores")]
    parts = []
    errors = [f"<p class='warn'>{n}: {encs[n]['bias_error']}</p>" for n in names if encs[n].get("bias_error")]
    if with_scores:
        edges = shared_edges([encs[n]["scores"] for n in with_scores])
        divs = [figure_html(density_figure(n, encs[n]["scores"], edges), f"plot-bias-density-{i}")
                for i, n in enumerate(with_scores)]
        parts.append('<div class="grid">' + "".join(f"<div>{d}</div>" for d in divs) + "</div>")
        parts.append(f"<p class='small'>Shared bins: {N_BINS} bins of width {edges[1] - edges[0]:.4f} cosine over "
                     f"[{edges[0]:.3f}, {edges[-1]:.3f}] for every group and encoder; densities integrate to 1, so "
                     "groups of different size compare.</p>")
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
