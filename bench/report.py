"""Outputs of a run: ``leaderboard.csv``, ``results.json`` and a self-contained Plotly ``report.html``.

``leaderboard.csv`` has one row per encoder or swapper and one column per metric; its first data row
(``name == "direction"``) says for each metric whether higher or lower is better.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

# (column, direction, path into the per-encoder result, description)
ENCODER_COLUMNS: List[Tuple[str, str, Tuple[str, ...], str]] = [
    ("positive_mean", "higher", ("bias", "positive_mean"), "mean cosine, anchor vs same identity"),
    ("swapped_mean", "higher", ("bias", "swapped_mean"), "mean cosine, anchor vs pseudo-swap of same identity"),
    ("negative_mean", "lower", ("bias", "negative_mean"), "mean cosine, anchor vs nearest-landmark other identity"),
    ("bias_mean_gap", "lower", ("bias", "mean_gap"), "positive minus swapped mean (attribute bias)"),
    ("bias_relative_gap", "lower", ("bias", "relative_gap"), "(pos - swapped) / (pos - neg)"),
    ("bias_auc", "lower", ("bias", "auc"), "AUC positive vs swapped (0.5 = no bias)"),
    ("bias_wasserstein", "lower", ("bias", "wasserstein"), "1-D EMD positive vs swapped"),
    ("bias_ks", "lower", ("bias", "ks"), "KS statistic positive vs swapped"),
    ("verification_auc", "higher", ("verification", "auc"), "ROC AUC same vs different"),
    ("eer", "lower", ("verification", "eer"), "equal error rate"),
    ("tar_at_far_1e-3", "higher", ("verification", "tar_at_far_1e-3"), "TAR at FAR 0.1%"),
    ("verification_accuracy", "higher", ("verification", "accuracy_mean"), "10-fold accuracy"),
    ("retrieval_top1", "higher", ("retrieval", "top1"), "top-1 ID retrieval"),
    ("retrieval_top5", "higher", ("retrieval", "top5"), "top-5 ID retrieval"),
    ("saliency_inner_ratio", "higher", ("saliency", "inner_ratio_mean"), "share of saliency inside the inner face"),
]


def _get(d: dict, path: Sequence[str]):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def leaderboard_rows(results: dict) -> Tuple[List[str], List[dict]]:
    cols = ["name", "kind"] + [c for c, *_ in ENCODER_COLUMNS]
    direction = {"name": "direction", "kind": ""}
    direction.update({c: d for c, d, *_ in ENCODER_COLUMNS})
    rows = [direction]
    for name, r in results.get("encoders", {}).items():
        row = {"name": name, "kind": "encoder"}
        row.update({c: _get(r, p) for c, _, p, _ in ENCODER_COLUMNS})
        rows.append(row)
    for name, r in results.get("swappers", {}).items():
        row = {"name": name, "kind": "swapper"}
        for col, value in r.get("summary", {}).items():
            if col not in cols:
                cols.append(col)
                direction[col] = r.get("directions", {}).get(col, "")
            row[col] = value
        rows.append(row)
    return cols, rows


def write_leaderboard(results: dict, path: Path) -> None:
    import pandas as pd

    cols, rows = leaderboard_rows(results)
    pd.DataFrame(rows, columns=cols).to_csv(path, index=False)


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def write_outputs(results: dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=_json_default, allow_nan=False)
                                          if _finite(results) else json.dumps(_clean(results), indent=1,
                                                                              default=_json_default))
    write_leaderboard(results, out_dir / "leaderboard.csv")
    write_report(results, out_dir / "report.html", out_dir)


def _finite(o) -> bool:
    try:
        json.dumps(o, default=_json_default, allow_nan=False)
        return True
    except ValueError:
        return False


def _clean(o):
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_report(results: dict, path: Path, out_dir: Path) -> None:
    """A self-contained HTML report: plotly.js embedded once, no network access needed."""
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.subplots import make_subplots

    figs = []
    encs = results.get("encoders", {})
    with_scores = {n: r["scores"] for n, r in encs.items() if r.get("scores")}
    if with_scores:
        fig = make_subplots(rows=1, cols=len(with_scores), subplot_titles=list(with_scores))
        colours = {"positive": "#2a9d8f", "swapped": "#e76f51", "negative": "#6c757d"}
        for i, (n, sc) in enumerate(with_scores.items(), start=1):
            for g in ("positive", "swapped", "negative"):
                fig.add_trace(go.Histogram(x=sc[g], name=g, legendgroup=g, showlegend=i == 1, opacity=0.6,
                                           marker_color=colours[g], histnorm="probability density", nbinsx=30),
                              row=1, col=i)
        fig.update_layout(barmode="overlay", title="Cosine similarity to the anchor: same identity, pseudo-swapped, "
                          "nearest-landmark other identity", height=380)
        figs.append(("similarity", fig))
    gaps = {n: r["bias"] for n, r in encs.items() if r.get("bias")}
    if gaps:
        names = list(gaps)
        fig = make_subplots(rows=1, cols=2, subplot_titles=["positive - swapped mean gap (95% CI)",
                                                            "AUC positive vs swapped (0.5 = no attribute bias)"])
        for col, key, ci in ((1, "mean_gap", "mean_gap_ci"), (2, "auc", "auc_ci")):
            vals = [gaps[n][key] for n in names]
            lo = [(gaps[n].get(ci) or [v, v])[0] for n, v in zip(names, vals)]
            hi = [(gaps[n].get(ci) or [v, v])[1] for n, v in zip(names, vals)]
            fig.add_trace(go.Bar(x=names, y=vals, showlegend=False, error_y=dict(
                type="data", symmetric=False, array=[h - v for h, v in zip(hi, vals)],
                arrayminus=[v - l for l, v in zip(lo, vals)])), row=1, col=col)
        fig.update_layout(height=360, title="Attribute bias")
        figs.append(("gap", fig))
    ret = {n: r["retrieval"] for n, r in encs.items() if r.get("retrieval")}
    ver = {n: r["verification"] for n, r in encs.items() if r.get("verification")}
    if ret or ver:
        fig = go.Figure()
        if ret:
            fig.add_trace(go.Bar(x=list(ret), y=[v["top1"] for v in ret.values()], name="ID retrieval top-1"))
        if ver:
            fig.add_trace(go.Bar(x=list(ver), y=[v["auc"] for v in ver.values()], name="verification AUC"))
            fig.add_trace(go.Bar(x=list(ver), y=[v["accuracy_mean"] for v in ver.values()],
                                 name="verification accuracy"))
        fig.update_layout(barmode="group", title="Retrieval and verification", yaxis_range=[0, 1.02], height=360)
        figs.append(("retrieval", fig))
    sw = results.get("swappers", {})
    if sw:
        direction = {c: d for r in sw.values() for c, d in r.get("directions", {}).items()}
        cols = sorted(c for c in direction if direction[c])  # metrics only, not sample counts
        if cols:
            ncol = 4
            nrow = math.ceil(len(cols) / ncol)
            fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=[f"{c} ({direction[c]} is better)"
                                                                      for c in cols])
            for i, c in enumerate(cols):
                fig.add_trace(go.Bar(x=list(sw), y=[r.get("summary", {}).get(c) for r in sw.values()],
                                     showlegend=False), row=i // ncol + 1, col=i % ncol + 1)
            fig.update_annotations(font_size=10)
            fig.update_layout(title="Swap evaluation: attribute errors and identity per swapper", height=230 * nrow)
            figs.append(("swaps", fig))
    cols, rows = leaderboard_rows(results)
    # transposed for reading: one row per metric, one column per encoder/swapper
    metrics = [c for c in cols if c not in ("name", "kind")]
    header = ["metric", "direction"] + [f"{r['name']} ({r['kind']})" for r in rows[1:]]
    values = [metrics, [rows[0].get(m, "") for m in metrics]] + [[_fmt(r.get(m)) for m in metrics] for r in rows[1:]]
    table = go.Figure(go.Table(columnwidth=[3, 1] + [2] * (len(rows) - 1), header=dict(values=header),
                               cells=dict(values=values)))
    table.update_layout(title="Leaderboard", height=140 + 24 * len(metrics))
    figs.append(("leaderboard", table))

    parts = []
    for i, (fid, fig) in enumerate(figs):
        parts.append(f'<section id="{fid}">' + pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False,
                                                          div_id=f"plot-{fid}") + "</section>")
    ds = results.get("dataset", {})
    montage = _saliency_html(results, out_dir)
    prov = html.escape(json.dumps(results.get("provenance", {}), indent=1, default=str))
    notes = "".join(f"<li>{html.escape(str(n))}</li>" for n in ds.get("notes", [])[:50])
    skipped = ds.get("skipped", [])
    fails = results.get("failures", [])
    fail_rows = "".join(f"<tr><td>{html.escape(str(f.get('stage')))}</td><td>{html.escape(str(f.get('item')))}</td>"
                        f"<td>{html.escape(str(f.get('reason')))}</td></tr>" for f in fails[:200])
    doc = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>idbench report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}} .small{{color:#555}} img{{margin:4px}}</style>
</head><body><h1>idbench report</h1>
<p><b>Dataset:</b> {html.escape(str(ds.get('description', '')))}</p>
<p class="small">{ds.get('n_faces', 0)} faces from {ds.get('n_items', 0)} images; {len(skipped)} skipped.
Protocol: see the README ("bench run protocol").</p>
{''.join(parts)}
{montage}
<h2>Notes</h2><ul>{notes or '<li>none</li>'}</ul>
<h2>Failures ({len(fails)})</h2><table class="small"><tr><th>stage</th><th>item</th><th>reason</th></tr>{fail_rows}</table>
<h2>Provenance</h2><pre class="small">{prov}</pre>
</body></html>"""
    Path(path).write_text(doc)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4f}"
    return "" if v is None else str(v)


def _saliency_html(results: dict, out_dir: Path) -> str:
    imgs = []
    for name, r in results.get("encoders", {}).items():
        sal = r.get("saliency") or {}
        for p in sal.get("overlays", [])[:6]:
            f = Path(p) if Path(p).is_absolute() else out_dir / p
            if f.is_file():
                b64 = base64.b64encode(f.read_bytes()).decode()
                imgs.append(f'<figure style="display:inline-block"><img src="data:image/png;base64,{b64}" '
                            f'width="160"><figcaption>{html.escape(name)}</figcaption></figure>')
    if not imgs:
        return ""
    return "<section id='saliency'><h2>Saliency montage (occlusion)</h2>" + "".join(imgs) + "</section>"


def merge_results(dirs: Sequence[Path]) -> dict:
    """Merge results.json of several runs (names get the run folder as prefix when they clash)."""
    merged: dict = {"encoders": {}, "swappers": {}, "dataset": {"description": "", "notes": []},
                    "provenance": {"merged_from": []}}
    descs = []
    for d in dirs:
        r = json.loads((Path(d) / "results.json").read_text())
        for kind in ("encoders", "swappers"):
            for n, v in r.get(kind, {}).items():
                key = n if n not in merged[kind] else f"{Path(d).name}/{n}"
                merged[kind][key] = v
        descs.append(f"{Path(d).name}: {r.get('dataset', {}).get('description', '')}")
        merged["provenance"]["merged_from"].append({"dir": str(d), "provenance": r.get("provenance")})
    merged["dataset"]["description"] = " | ".join(descs)
    return merged
