"""The report's "Attribute decomposition" section (``results["decomposition"]``, :mod:`.decomposition`).

One chart (encoders x variants: relative gap with its bootstrap interval), the per-attribute table,
the mask sensitivity table with the regions drawn on an example face, and the pairwise significance
table (paired difference, its interval, permutation p and Holm-adjusted p; * = significant).
"""

from __future__ import annotations

import base64
from idbench.escape import html_text
from pathlib import Path
from typing import List, Optional

METRIC_LABELS = {"relative_gap": "relative gap", "mean_gap": "mean gap", "auc": "AUC"}


def _fmt(v, digits: int = 3) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def _cell(d: dict, key: str = "relative_gap") -> str:
    if not d or d.get(key) is None:
        return html_text(d.get("error", "")) if d else ""
    ci = d.get(f"{key}_ci")
    return _fmt(d[key]) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")


def _table(head: List[str], rows: List[List[str]], caption: str = "") -> str:
    th = "".join(f"<th>{html_text(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    cap = f"<caption>{html_text(caption)}</caption>" if caption else ""
    return f"<table class='data'>{cap}<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _chart(dec: dict) -> str:
    import plotly.graph_objects as go
    import plotly.io as pio

    fig = go.Figure()
    for n, by_v in dec["encoders"].items():
        vs = [v for v in dec["variants"] if by_v.get(v, {}).get("relative_gap") is not None]
        y = [by_v[v]["relative_gap"] for v in vs]
        ci = [by_v[v].get("relative_gap_ci") or (by_v[v]["relative_gap"],) * 2 for v in vs]
        fig.add_trace(go.Bar(name=n, x=vs, y=y, error_y=dict(type="data", symmetric=False,
                                                             array=[c[1] - v for c, v in zip(ci, y)],
                                                             arrayminus=[v - c[0] for c, v in zip(ci, y)])))
    fig.update_layout(barmode="group", height=420, template="plotly_white", yaxis_title="relative gap (lower = less bias)",
                      xaxis_title="variant (the attribute family taken from the partner)",
                      margin=dict(l=70, r=20, t=30, b=60))
    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id="decomposition-chart",
                       config={"displaylogo": False, "responsive": True})


def _image(out_dir: Path, rel: Optional[str], alt: str) -> str:
    from idbench.bench.run_folder import run_file

    f = run_file(out_dir, rel)  # only files inside the run folder
    if f is None:
        return ""
    data = base64.b64encode(f.read_bytes()).decode()
    return f"<figure><img alt='{html_text(alt)}' src='data:image/png;base64,{data}'><figcaption>{html_text(alt)}" \
           "</figcaption></figure>"


def _pairwise_table(dec: dict, metric: str) -> str:
    from .decomposition import significance_rows

    rows_by_pair = {}
    for r in significance_rows(dec, metric):
        rows_by_pair.setdefault((r["encoder_a"], r["encoder_b"]), {})[r["variant"]] = r
    rows = []
    for (a, b), by_v in rows_by_pair.items():
        cells = [html_text(f"{a} - {b}")]
        for v in dec["variants"]:
            r = by_v.get(v)
            if r is None:
                cells.append("")
                continue
            ci = r.get("ci")
            txt = f"{r['difference']:+.4f}" + (f" [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "")
            txt += f" p={r['p_value']:.3g}" if r.get("p_value") is not None else ""
            txt += f" (Holm {r['p_holm']:.3g})" if r.get("p_holm") is not None else ""
            cells.append(f"<b>{txt} *</b>" if r.get("significant") else txt)
        rows.append(cells)
    if not rows:
        return ""
    return _table(["A - B"] + dec["variants"], rows,
                  f"paired difference of the {METRIC_LABELS[metric]} (A minus B) [bootstrap 95% CI], permutation p "
                  f"and Holm-adjusted p over the pairs of each variant; * bold = significant at {dec.get('alpha', 0.05)}")


def decomposition_section(results: dict, out_dir: Path) -> Optional[str]:
    """HTML for the report, or None when the run has no decomposition."""
    dec = results.get("decomposition")
    if not dec or not dec.get("encoders"):
        return None
    variants = dec["variants"]
    parts = ["<p class='small'>Each variant rebuilds every pseudo-swap of the bias analysis changing one attribute "
             "family (skin: colour only; outside: hair, ears, background; shape: jaw outline; inner: everything but "
             "brows, eyes, nose and mouth; full: the BlendFace pseudo-swap). Relative gap = (mean P - mean S) / "
             "(mean P - mean N): the share of the positive-negative separation an encoder loses to that change.</p>",
             _image(out_dir, (dec.get("example") or {}).get("example_image"), "one source/partner pair and its variants"), _chart(dec)]
    rows = [[html_text(n)] + [_cell(by_v.get(v, {})) for v in variants] for n, by_v in dec["encoders"].items()]
    parts.append(_table(["encoder"] + variants, rows, "relative gap [bootstrap 95% CI] per encoder and variant"))
    regions = dec.get("mask_sensitivity", {})
    if regions:
        rows = [[html_text(n)] + [_cell(regions[r].get(n, {})) for r in regions] for n in dec["encoders"]]
        parts += ["<h3>Mask sensitivity</h3>",
                  _image(out_dir, (dec.get("example") or {}).get("regions_image"),
                         "the named face regions on the source face (inner: yellow, face: cyan)"),
                  _table(["encoder"] + [f"{r} (= variant {dec['mask_regions'][r]})" for r in regions], rows,
                         "relative gap of the full pseudo-swap under each face region [95% CI]")]
    tables = [_pairwise_table(dec, m) for m in ("relative_gap", "mean_gap", "auc")]
    if any(tables):
        parts += ["<h3>Pairwise significance</h3>"] + tables
    return "".join(p for p in parts if p)
