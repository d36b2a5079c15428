"""Saliency section: occlusion maps of every encoder on the same faces, one colour scale, mask outlined."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import List, Optional

import numpy as np

from ._plot import encoder_order, figure_html, style

MAX_FACES = 6


def _load(p: str, out_dir: Path) -> Optional[dict]:
    f = Path(p) if Path(p).is_absolute() else out_dir / p
    if not f.is_file():
        return None
    with np.load(f) as z:
        return {k: z[k] for k in ("crop", "saliency", "mask")}


def _png_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _caption(sal: dict, i: int) -> str:
    faces = sal.get("faces") or []
    ratio = (sal.get("inner_ratios") or [None] * (i + 1))[i]
    r = "n/a" if ratio is None else f"{ratio:.2f}"
    if i < len(faces):
        f = faces[i]
        return f"{f.get('identity') or '?'} · {Path(f.get('image', '')).name}<br>inner ratio {r}"
    return f"face {i} · inner ratio {r}"


def saliency_figure(results: dict, names: List[str], out_dir: Path):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    maps = {n: [_load(p, out_dir) for p in results["encoders"][n]["saliency"]["maps"][:MAX_FACES]] for n in names}
    ncol = max(len(v) for v in maps.values())
    allabs = np.concatenate([np.abs(m["saliency"]).ravel() for v in maps.values() for m in v if m is not None])
    top = float(np.percentile(allabs, 99)) or 1.0  # one scale for every face and encoder
    titles = [f"<b>{n}</b> · " + _caption(results["encoders"][n]["saliency"], i) if i < len(maps[n]) else ""
              for n in names for i in range(ncol)]
    fig = make_subplots(rows=len(names), cols=ncol, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.12 / max(1, len(names) - 1) if len(names) > 1 else 0.1)
    first = True
    for r, n in enumerate(names, start=1):
        for k, m in enumerate(maps[n], start=1):
            if m is None:
                continue
            fig.add_trace(go.Image(source=_png_uri(m["crop"]), hoverinfo="skip"), row=r, col=k)
            fig.add_trace(go.Heatmap(z=np.round(np.abs(m["saliency"]), 5), zmin=0, zmax=top, colorscale="Jet",
                                     opacity=0.5, showscale=first, zsmooth="best",
                                     hovertemplate="%{z:.4f}<extra></extra>",
                                     colorbar=dict(title=dict(text="|similarity drop|<br>when occluded<br>(cosine)",
                                                              side="right"), len=0.9)), row=r, col=k)
            if m["mask"].size:
                fig.add_trace(go.Contour(z=m["mask"].astype(np.uint8), showscale=False, hoverinfo="skip",
                                         showlegend=False, name="inner-face mask",
                                         contours=dict(start=0.5, end=0.5, size=1, coloring="none"),
                                         line=dict(color="white", width=2)), row=r, col=k)
            first = False
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_annotations(font_size=11)
    return style(fig, 40 + 260 * len(names), ""), top


def saliency_section(results: dict, out_dir: Path) -> Optional[str]:
    names, _ = encoder_order(results)
    sal = {n: results["encoders"][n].get("saliency") or {} for n in names}
    with_maps = [n for n in names if sal[n].get("maps") and _load(sal[n]["maps"][0], out_dir) is not None]
    parts = []
    if with_maps:
        fig, top = saliency_figure(results, with_maps, out_dir)
        parts.append(figure_html(fig, "plot-saliency"))
        parts.append(f"<p class='small'>Occlusion saliency (grey square, Zeiler & Fergus 2014) on each encoder's own "
                     f"aligned crop: colour = how much the cosine similarity to the clean crop drops when the pixel "
                     f"is hidden, one scale for all panels (0 to {top:.4f}, the 99th percentile); white outline = "
                     "inner-face mask (brows, eyes, nose, mouth); inner ratio = share of |saliency| inside it.</p>")
    for n in names:  # runs written before the maps were saved: the per-face overlays as they are
        if n in with_maps or not sal[n].get("overlays"):
            continue
        imgs = []
        for i, p in enumerate(sal[n]["overlays"][:MAX_FACES]):
            f = Path(p) if Path(p).is_absolute() else out_dir / p
            if f.is_file():
                b64 = base64.b64encode(f.read_bytes()).decode()
                imgs.append(f'<figure><img src="data:image/png;base64,{b64}" width="150" alt="saliency">'
                            f'<figcaption>{_caption(sal[n], i)}</figcaption></figure>')
        if imgs:
            parts.append(f"<h3>{html.escape(n)}</h3><p class='warn'>Older run: each overlay is scaled to its own "
                         "99th percentile (no shared colour scale).</p>" + "".join(imgs))
    ratios = [(n, sal[n].get("inner_ratio_mean"), sal[n].get("inner_ratio_std"), sal[n].get("n")) for n in names
              if sal[n].get("inner_ratio_mean") is not None]
    if ratios:
        parts.append("<p>Inner-face saliency ratio (mean ± std over faces): " + "; ".join(
            f"{html.escape(n)} {m:.3f} ± {s:.3f} (n={k})" for n, m, s, k in ratios) + ".</p>")
    return "".join(parts) or None
