"""The report's figures as vector files for a paper: PDF and SVG, one-column (3.3 in) and two-column (6.9 in).

Made with matplotlib (no browser, no network): the same data as the HTML report's Plotly charts.
``bench report RUN --figures pdf,svg`` writes ``RUN/figures/<figure>-<width>.<format>``:

* ``bias-ecdf``: per encoder, the ECDFs of its positive / swapped / negative similarities on its own range
  (outlines and line styles, so no overlapping colours need a legend entry);
* ``bias-ci``: relative gap and bias AUC per encoder with their 95% intervals;
* ``roc``: verification ROC of every encoder (log FAR);
* ``swaps``: one panel per swap metric, swappers down the side (names up to 40 characters fit), mean with its
  95% interval as an error bar.
Text stays text (TrueType in PDF, ``<text>`` in SVG), 7-8 pt at print size.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np

from idbench.analysis.catalogue import column_metric

WIDTHS = {"col": 3.3, "wide": 6.9}  # inches: one column / full width of a two-column paper
FORMATS = ("pdf", "svg")
GROUPS = (("positive", "-"), ("swapped", "--"), ("negative", ":"))


def _style():
    import matplotlib

    matplotlib.use("Agg")
    return {"font.size": 7, "axes.titlesize": 7.5, "axes.labelsize": 7, "xtick.labelsize": 6.5,
            "ytick.labelsize": 6.5, "legend.fontsize": 6.5, "pdf.fonttype": 42, "svg.fonttype": "none",
            "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.0}


def _short(name: str, n: int = 40) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def _wrap(name: str, panel_inches: float) -> str:
    """A panel title in full, broken into lines that fit the panel (about 4.3 pt per character at 7.5 pt)."""
    import textwrap

    return "\n".join(textwrap.wrap(name, max(8, int(panel_inches * 72 / 4.6)), break_long_words=True))


def _grid(n: int, width: float):
    """Rows x columns of panels for ``n`` panels at ``width`` inches (about 1.6 in per panel)."""
    cols = max(1, min(n, int(width // 1.6)))
    return math.ceil(n / cols), cols


def bias_ecdf(results: dict, width: float):
    import matplotlib.pyplot as plt

    encs = results.get("encoders", {})
    names = [n for n in encs if (encs[n].get("scores") or {}).get("positive")]
    if not names:
        return None
    rows, cols = _grid(len(names), width)
    fig, axes = plt.subplots(rows, cols, figsize=(width, 1.45 * rows + 0.35), squeeze=False)
    for ax, n in zip(axes.flat, names):
        for g, ls in GROUPS:
            v = np.sort(np.asarray(encs[n]["scores"].get(g) or [], float))
            if len(v):
                ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", ls=ls, color="black", label=g)
        ax.set_title(_wrap(n, width / cols))
        ax.set_xlabel("cosine to the anchor")
        ax.set_ylim(0, 1.02)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    axes.flat[0].set_ylabel("ECDF")
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="upper center", ncol=3, frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    return fig


def bias_ci(results: dict, width: float):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    encs = {n: e["bias"] for n, e in results.get("encoders", {}).items() if e.get("bias")}
    if not encs:
        return None
    names = list(encs)
    panels = (("relative_gap", "relative_gap_ci", "relative gap ↓", 0.0), ("auc", "auc_ci", "bias AUC ↓", 0.5))
    stacked = width < 5  # one column: the two panels one above the other, names get the width they need
    h = 0.16 * len(names) + 0.6
    fig, axes = plt.subplots(2 if stacked else 1, 1 if stacked else 2, figsize=(width, 2 * h if stacked else h),
                             squeeze=False, sharey=True)
    y = np.arange(len(names))[::-1]
    for ax, (key, ci_key, title, ref) in zip(axes.flat, panels):
        v = np.array([encs[n].get(key, np.nan) if encs[n].get(key) is not None else np.nan for n in names], float)
        ci = np.array([encs[n].get(ci_key) or [np.nan, np.nan] for n in names], float)
        ax.errorbar(v, y, xerr=np.abs(np.stack([v - ci[:, 0], ci[:, 1] - v])), fmt="o", color="black", ms=3,
                    capsize=2, lw=0.8)
        ax.axvline(ref, ls=":", color="grey", lw=0.8)
        ax.set_title(title)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_yticks(y, [_short(n) for n in names])
    fig.tight_layout()
    return fig


def roc(results: dict, width: float):
    import matplotlib.pyplot as plt

    from .verification import curve

    encs = results.get("encoders", {})
    curves = {n: curve(e["verification"]) for n, e in encs.items() if e.get("verification")}
    curves = {n: c for n, c in curves.items() if c is not None}
    if not curves:
        return None
    ncol = 1 if width < 5 else 2
    legend_h = 0.14 * math.ceil(len(curves) / ncol) + 0.1  # the legend below the plot: names never cover curves
    fig, ax = plt.subplots(figsize=(width, 2.0 + legend_h))
    styles = ["-", "--", ":", "-."]
    for i, (n, (far, tar)) in enumerate(curves.items()):
        grey = 0.6 * (i // len(styles)) / max(1, (len(curves) - 1) // len(styles))
        ax.plot(np.clip(far, 1e-4, 1), tar, ls=styles[i % len(styles)], color=f"{grey:.2f}", label=_short(n))
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_xticks([1e-3, 1e-2, 1e-1, 1])  # no label in the corner shared with the y axis
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    fig.legend(loc="lower center", ncol=ncol, frameon=False)
    fig.tight_layout(rect=(0, legend_h / fig.get_figheight(), 1, 1))
    return fig


def swap_metrics(results: dict, width: float):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    sw = results.get("swappers", {})
    cols: List[str] = []
    for r in sw.values():
        cols += [c for c in r.get("summary", {}) if column_metric(c).group != "count" and c not in cols]
    if not sw or not cols:
        return None
    names = list(sw)
    rows, ncols = _grid(len(cols), width - 1.9)  # room on the left for swapper names (up to 40 characters)
    fig, axes = plt.subplots(rows, ncols, figsize=(width, (0.16 * len(names) + 0.55) * rows + 0.2), squeeze=False,
                             sharey=True)
    y = np.arange(len(names))[::-1]
    for ax, c in zip(axes.flat, cols):
        m = column_metric(c)
        v = np.array([sw[n]["summary"].get(c, np.nan) if sw[n]["summary"].get(c) is not None else np.nan
                      for n in names], float)
        ci = np.array([(sw[n].get("intervals") or {}).get(c) or [np.nan, np.nan] for n in names], float)
        err = np.abs(np.stack([v - ci[:, 0], ci[:, 1] - v]))
        ax.errorbar(v, y, xerr=np.where(np.isfinite(err), err, 0), fmt="o", color="black", ms=3, capsize=2, lw=0.8)
        arrow = {"higher": "↑", "lower": "↓"}.get(m.direction, "")
        ax.set_title(f"{m.label} {arrow}\n[{c.partition('[')[2].rstrip(']')}]" if "[" in c else f"{m.label} {arrow}")
        ax.set_xlabel(m.unit)
        ax.margins(x=0.15)
        ax.xaxis.set_major_locator(MaxNLocator(3))
    for ax in list(axes.flat)[len(cols):]:
        ax.set_visible(False)
    for r in range(rows):
        axes[r][0].set_yticks(y, [_short(n) for n in names])
    fig.tight_layout(w_pad=1.2)
    return fig


FIGURES: Dict[str, Callable] = {"bias-ecdf": bias_ecdf, "bias-ci": bias_ci, "roc": roc, "swaps": swap_metrics}


def write_figures(results: dict, out_dir: Path, formats: Sequence[str] = FORMATS) -> List[Path]:
    """Every figure the run has data for, in each format and width; returns the files written."""
    import matplotlib.pyplot as plt

    from idbench.errors import InputError

    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise InputError(f"--figures takes {', '.join(FORMATS)}, got {', '.join(bad)}")
    d = Path(out_dir) / "figures"
    written: List[Path] = []
    with plt.rc_context(_style()):
        for name, make in FIGURES.items():
            for wname, width in WIDTHS.items():
                fig = make(results, width)
                if fig is None:
                    continue
                d.mkdir(parents=True, exist_ok=True)
                for fmt in formats:
                    path = d / f"{name}-{wname}.{fmt}"
                    tmp = path.with_name(f".tmp-{path.name}")
                    fig.savefig(tmp, format=fmt, metadata={"Creator": "idbench"} if fmt == "pdf" else None)
                    tmp.replace(path)  # atomic: a failed save never leaves a half-written figure
                    written.append(path)
                plt.close(fig)
    return written



def text_overlaps(fig) -> List[tuple]:
    """Pairs of visible, non-empty text items of ``fig`` whose drawn boxes overlap (tick labels, titles, axis
    labels, legend): the check that names and titles stay readable at print size."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    from matplotlib.text import Text

    tick_labels, drawn = set(), set()  # matplotlib keeps labels of ticks outside the view: they are not drawn
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            tick_labels |= {id(t.label1) for t in axis.get_major_ticks() + axis.get_minor_ticks()}
            drawn |= {id(t.label1) for t in axis._update_ticks()}
    items = [(t.get_text(), t.get_window_extent(renderer)) for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and (t.axes is None or t.axes.get_visible())
             and (id(t) not in tick_labels or id(t) in drawn)]
    return [(a, b) for i, (a, ba) in enumerate(items) for b, bb in items[i + 1:]
            if ba.overlaps(bb) and ba.intersection(ba, bb).width > 1 and ba.intersection(ba, bb).height > 1]
