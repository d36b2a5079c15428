"""Saliency section: occlusion maps of every encoder on the same faces, one colour scale, mask outlined."""

from __future__ import annotations

import base64
from idbench.escape import html_text
import io
from pathlib import Path
from typing import List, Optional

import numpy as np

from ._plot import encoder_order, figure_html, style

MAX_FACES = 6


def _load(p: str, out_dir: Path) -> Optional[dict]:
    from idbench.bench.run_folder import run_file

    f = run_file(out_dir, p)  # only files inside the run folder
    if f is None:
        return None
    with np.load(f, allow_pickle=False) as z:
        return {k: z[k] for k in ("crop", "saliency", "mask")}


def _png_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _clip(text: str, n: int = 24) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _caption(sal: dict, i: int) -> str:
    """``identity`` on one line, ``file · inner ratio`` on the next (LFW's ``Name_0002.jpg`` shortened to ``0002.jpg``)."""
    faces = sal.get("faces") or []
    ratio = (sal.get("inner_ratios") or [None] * (i + 1))[i]
    r = "n/a" if ratio is None else f"{ratio:.2f}"
    if i < len(faces):
        f = faces[i]
        ident, name = str(f.get("identity") or "?"), Path(f.get("image", "")).name
        if name.startswith(ident + "_"):
            name = name[len(ident) + 1:]
        return f"{html_text(_clip(ident))}<br>{html_text(_clip(name, 16))} · inner ratio {r}"
    return f"face {i} · inner ratio {r}"


def saliency_figure(results: dict, names: List[str], out_dir: Path):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    maps = {n: [_load(p, out_dir) for p in results["encoders"][n]["saliency"]["maps"][:MAX_FACES]] for n in names}
    ncol = max(len(v) for v in maps.values())
    # one colour scale for every panel, in cosine, logarithmic: encoders' drops differ by ~10x (dlib's
    # cosines sit near 1 for everyone), so a linear scale would leave some rows blank
    p99 = {n: float(np.percentile(np.concatenate([np.abs(m["saliency"]).ravel() for m in v if m is not None]), 99))
           for n, v in maps.items()}
    hi = max(max(p99.values()), 1e-6)
    lo = max(min(p99.values()) / 20, hi / 1e4)
    ticks = [t for t in 10.0 ** np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1) if lo <= t <= hi]
    scale = {"lo": lo, "hi": hi, "p99": p99}
    titles = [f"<b>{html_text(n)}</b> · " + _caption(results["encoders"][n]["saliency"], i) if i < len(maps[n]) else ""
              for n in names for i in range(ncol)]
    fig = make_subplots(rows=len(names), cols=ncol, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.12 / max(1, len(names) - 1) if len(names) > 1 else 0.1)
    first = True
    for r, n in enumerate(names, start=1):
        for k, m in enumerate(maps[n], start=1):
            if m is None:
                continue
            fig.add_trace(go.Image(source=_png_uri(m["crop"]), hoverinfo="skip"), row=r, col=k)
            a = np.abs(m["saliency"])
            fig.add_trace(go.Heatmap(z=np.round(np.log10(np.clip(a, lo, hi)), 4), zmin=np.log10(lo), zmax=np.log10(hi),
                                     colorscale="Jet", opacity=0.5, showscale=first, zsmooth="best",
                                     customdata=np.round(a, 5), hovertemplate="%{customdata:.4f}<extra></extra>",
                                     colorbar=dict(title=dict(text="|similarity drop|<br>when occluded<br>(cosine, log)",
                                                              side="right"), len=0.9,
                                                   tickvals=[float(np.log10(t)) for t in ticks],
                                                   ticktext=[f"{t:g}" for t in ticks])), row=r, col=k)
            if m["mask"].size:
                fig.add_trace(go.Contour(z=m["mask"].astype(np.uint8), showscale=False, hoverinfo="skip",
                                         showlegend=False, name="inner-face mask",
                                         contours=dict(start=0.5, end=0.5, size=1, coloring="none"),
                                         line=dict(color="white", width=2)), row=r, col=k)
            first = False
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_annotations(font_size=11)
    return style(fig, 60 + 280 * len(names), ""), scale


def saliency_section(results: dict, out_dir: Path) -> Optional[str]:
    names, _ = encoder_order(results)
    sal = {n: results["encoders"][n].get("saliency") or {} for n in names}
    with_maps = [n for n in names if sal[n].get("maps") and _load(sal[n]["maps"][0], out_dir) is not None]
    parts = []
    if with_maps:
        fig, scale = saliency_figure(results, with_maps, out_dir)
        parts.append(figure_html(fig, "plot-saliency"))
        p99 = ", ".join(f"{html_text(n)} {t:.4f}" for n, t in scale["p99"].items())
        parts.append(f"<p class='small'>Occlusion saliency (grey square, Zeiler & Fergus 2014) on each encoder's own "
                     f"aligned crop: colour = how much the cosine similarity to the clean crop drops when the pixel "
                     f"is hidden, one logarithmic scale for all panels ({scale['lo']:.2g} to {scale['hi']:.2g} "
                     f"cosine; 99th percentiles: {p99}; smaller drops are drawn as the lowest colour). White outline "
                     "= inner-face mask (brows, eyes, nose, mouth); inner ratio = share of |saliency| inside it.</p>")
    for n in names:  # runs written before the maps were saved: the per-face overlays as they are
        if n in with_maps or not sal[n].get("overlays"):
            continue
        imgs = []
        for i, p in enumerate(sal[n]["overlays"][:MAX_FACES]):
            from idbench.bench.run_folder import run_file

            f = run_file(out_dir, p)
            if f is not None:
                b64 = base64.b64encode(f.read_bytes()).decode()
                imgs.append(f'<figure><img src="data:image/png;base64,{b64}" width="150" alt="saliency">'
                            f'<figcaption>{_caption(sal[n], i)}</figcaption></figure>')
        if imgs:
            parts.append(f"<h3>{html_text(n)}</h3><p class='warn'>Older run: each overlay is scaled to its own "
                         "99th percentile (no shared colour scale).</p>" + "".join(imgs))
    ratios = [(n, sal[n].get("inner_ratio_mean"), sal[n].get("inner_ratio_std"), sal[n].get("n")) for n in names
              if sal[n].get("inner_ratio_mean") is not None]
    if ratios:
        parts.append("<p>Inner-face saliency ratio (mean ± std over faces): " + "; ".join(
            f"{html_text(n)} {m:.3f} ± {s:.3f} (n={k})" for n, m, s, k in ratios) + ".</p>")
    return "".join(parts) or None
