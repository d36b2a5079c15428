"""Verification section (ROC and DET curves, accuracy table) and retrieval section (top-k table)."""

from __future__ import annotations

from typing import List, Optional

import numpy as np

from idbench.escape import html_text

from ._plot import colour_of, encoder_order, figure_html, html_table, style, wilson, with_ci
from .tables import BOLD_RULE, best_rows, fmt_value

FAR_RANGE = (1e-4, 1.0)
N_POINTS = 600  # curve points kept for drawing (log-spaced in FAR); the marks use the exact metrics


def curve(ver: dict) -> Optional[tuple]:
    """(far, tar) of the ROC from the stored per-pair scores, thinned for drawing; None without scores."""
    from idbench.analysis import roc_curve

    s, y = ver.get("pair_scores"), ver.get("pair_labels")
    if not s or not y or len(s) != len(y):
        return None
    far, tar, _ = roc_curve(np.asarray(s, float), np.asarray(y, int))
    keep = np.unique(np.r_[np.searchsorted(far, np.geomspace(1e-6, 1, N_POINTS)).clip(0, len(far) - 1),
                           len(far) - 1])
    return far[keep], tar[keep]


def roc_det_figure(results: dict, names: List[str]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    colours = colour_of(results)
    tar_floor = 1.0  # the ROC's y axis starts at the lowest TAR shown (FAR >= 1e-4), less a margin
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=["ROC: true accept rate vs false accept rate",
                                        "DET: false reject rate vs false accept rate"])
    for n in names:
        ver = results["encoders"][n]["verification"]
        c, col = curve(ver), colours[n]
        if c is not None:
            far, tar = c
            ok = far > 0  # FAR = 0 has no place on a log axis
            tar_floor = min(tar_floor, float(tar[far >= FAR_RANGE[0]].min()))
            fig.add_trace(go.Scatter(x=far[ok], y=tar[ok], mode="lines", line=dict(color=col, width=2, shape="hv"),
                                     name=f"{html_text(n)} (AUC {fmt_value(ver.get('auc'))})", legendgroup=n),
                      row=1, col=1)
            frr = 1 - tar
            ok2 = ok & (frr > 0)
            fig.add_trace(go.Scatter(x=far[ok2], y=frr[ok2], mode="lines", line=dict(color=col, width=2, shape="hv"),
                                     name=html_text(n), legendgroup=n, showlegend=False), row=1, col=2)
        _marks(fig, n, ver, col)
    tar_floor = 0.0 if tar_floor >= 1.0 else max(0.0, tar_floor - max(0.01, 0.15 * (1 - tar_floor)))
    lx = [np.log10(FAR_RANGE[0]), np.log10(FAR_RANGE[1])]
    fig.update_xaxes(type="log", range=lx, dtick=1, exponentformat="power",
                     title_text="false accept rate FAR (share of impostor pairs, log)")
    fig.update_yaxes(title_text="true accept rate TAR (share of genuine pairs)", range=[tar_floor, 1.01], row=1, col=1)
    fig.update_yaxes(type="log", range=lx, dtick=1, exponentformat="power",
                     title_text="false reject rate FRR = 1 − TAR (log)", row=1, col=2)
    fig.add_trace(go.Scatter(x=[1e-4, 1], y=[1e-4, 1], mode="lines", line=dict(color="grey", dash="dot", width=1),
                             name="FAR = FRR (EER line)", hoverinfo="skip"), row=1, col=2)
    fig.update_layout(legend=dict(orientation="h", y=-0.22, x=0))
    return style(fig, 520, "Verification: ◆ EER, ● TAR at FAR 1e-2, ▲ TAR at FAR 1e-3")


def _marks(fig, n: str, ver: dict, col: str) -> None:
    """EER and TAR@FAR points from the stored metrics, on both charts."""
    import plotly.graph_objects as go

    e = ver.get("eer")
    pts = []
    if e is not None and e > 0:
        pts.append((e, 1 - e, "diamond", f"{html_text(n)}: EER {e:.4f}"))
    for far, sym in ((1e-2, "circle"), (1e-3, "triangle-up")):
        t = ver.get(f"tar_at_far_{far:.0e}".replace("e-0", "e-"))
        if t is not None:
            pts.append((far, t, sym, f"{html_text(n)}: TAR {t:.4f} at FAR {far:g}"))
    for x, tar, sym, label in pts:
        m = dict(symbol=sym, size=11, color=col, line=dict(color="black", width=1))
        fig.add_trace(go.Scatter(x=[x], y=[tar], mode="markers", marker=m, name=label, legendgroup=n,
                                 showlegend=False, hovertemplate=label + "<extra></extra>"), row=1, col=1)
        if 1 - tar > 0:
            fig.add_trace(go.Scatter(x=[x], y=[1 - tar], mode="markers", marker=m, name=label, legendgroup=n,
                                     showlegend=False, hovertemplate=label + "<extra></extra>"), row=1, col=2)


# (key of results["encoders"][n]["verification"], header, leaderboard column)
VER_COLUMNS = (("auc", "ROC AUC ↑", "verification_auc"), ("eer", "EER ↓", "eer"),
               ("tar_at_far_1e-2", "TAR@FAR=1e-2 ↑", "tar_at_far_1e-2"),
               ("tar_at_far_1e-3", "TAR@FAR=1e-3 ↑", "tar_at_far_1e-3"),
               ("accuracy_mean", "accuracy ↑ (mean ± std, 10 folds)", "verification_accuracy"))


def _best(results: dict, rows: List[dict], key: str, col: str) -> set:
    """The row to bold (tables.BOLD_RULE), on the leaderboard column ``col`` of result key ``key``."""
    from idbench.analysis.catalogue import metric_direction

    return best_rows(results, "encoder", [{"name": r["name"], col: r.get(key)} for r in rows], col,
                     metric_direction(col))


def verification_table(results: dict, names: List[str]) -> str:
    rows = [{"name": n, **results["encoders"][n]["verification"]} for n in names]
    best = {k: _best(results, rows, k, c) for k, _, c in VER_COLUMNS}
    body, bold = [], []
    for r in rows:
        cells = [r["name"] + (" (flip test)" if r.get("flip_test") else ""), str(r.get("n_pairs", ""))]
        for k, _, _ in VER_COLUMNS:
            v = fmt_value(r.get(k))
            if k == "auc":
                v = with_ci(r.get(k), r.get("auc_ci"))
            cells.append(f"{v} ± {fmt_value(r['accuracy_std'])}" if k == "accuracy_mean" and v and
                         r.get("accuracy_std") is not None else v)
        body.append(cells)
        bold.append([False, False] + [r["name"] in best[k] for k, _, _ in VER_COLUMNS])
    return html_table(["encoder", "pairs"] + [h for _, h, _ in VER_COLUMNS], body, bold,
                      f"Verification (rates are shares of pairs; AUC with DeLong's 95% interval, pairs taken "
                      f"as independent; {BOLD_RULE})")


def verification_section(results: dict) -> Optional[str]:
    names, note = encoder_order(results)
    names = [n for n in names if results["encoders"][n].get("verification")]
    if not names:
        return None
    missing = [n for n in names if curve(results["encoders"][n]["verification"]) is None]
    warn = (f"<p class='warn'>No per-pair scores stored for {html_text(', '.join(missing))} "
            "(results.json from an older run): "
            "only the EER/TAR marks are drawn for them.</p>" if missing else "")
    n_imp = {n: sum(1 for y in results["encoders"][n]["verification"].get("pair_labels") or [] if y == 0)
             for n in names}
    lowest = min((1 / v for v in n_imp.values() if v), default=None)
    limit = (f"<p class='small'>The smallest non-zero FAR measurable with {min(v for v in n_imp.values() if v)} "
             f"impostor pairs is {lowest:.1e}; the curves start there.</p>" if lowest else "")
    fig = figure_html(roc_det_figure(results, names), "plot-verification")
    return (fig + limit + warn + verification_table(results, names) + f"<p class='small'>Rows: {note}.</p>"
            + sampling_note(results["encoders"][names[0]]))


def sampling_note(enc: dict) -> str:
    """How the verification pairs and the retrieval probes were chosen (seeded caps, exact below them)."""
    s, r = enc.get("verification", {}).get("pair_sampling"), enc.get("retrieval") or {}
    parts = []
    if s:
        g, i = s["genuine"], s["impostor"]
        parts.append(f"{g['n']:,} of {g['n_all']:,} same-identity pairs (caps {g['cap_per_identity']:,} per "
                     f"identity, {g['cap']:,} in all) and {i['n']:,} of {i['n_all']:,} different-identity pairs "
                     f"(cap {i['cap']:,}), seed {s['seed']}")
    if r.get("n_probes_all", 0) > r.get("n_probes", 0):
        parts.append(f"ID retrieval on {r['n_probes']:,} of {r['n_probes_all']:,} probes (seeded cap)")
    return f"<p class='small'>Sampled: {'; '.join(parts)}.</p>" if parts else ""


def retrieval_section(results: dict) -> Optional[str]:
    names, note = encoder_order(results)
    names = [n for n in names if results["encoders"][n].get("retrieval")]
    if not names:
        return None
    rows = [{"name": n, **results["encoders"][n]["retrieval"]} for n in names]
    best = {k: _best(results, rows, k, f"retrieval_{k}") for k in ("top1", "top5")}
    body, bold = [], []
    for r in rows:
        cells = [r["name"], str(r.get("n_probes", "")), str(r.get("n_gallery", ""))]
        for k in ("top1", "top5"):
            v, n = r.get(k), r.get("n_probes") or 0
            cells.append(with_ci(v, wilson(v * n, n) if v is not None and n else None))
        body.append(cells)
        bold.append([False] * 3 + [r["name"] in best["top1"], r["name"] in best["top5"]])
    caption = ("ID retrieval: first image of each identity = gallery, the others = probes; accuracy as a share of "
               f"probes with its Wilson 95% interval; {BOLD_RULE}")
    return html_table(["encoder", "probes", "gallery", "top-1 ↑", "top-5 ↑"], body, bold, caption) + \
        f"<p class='small'>Rows: {note}.</p>"
