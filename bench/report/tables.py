"""The leaderboard: one row per encoder or swapper, one column per metric, in CSV, Markdown and LaTeX.

``leaderboard.csv`` has one row per encoder or swapper and one column per metric; its first data row
(``name == "direction"``) says for each metric whether higher or lower is better. ``leaderboard.md``
and ``leaderboard.tex`` (booktabs) show the same numbers, one table for encoders and one for
swappers, columns grouped, the best value of each column in bold, intervals as ``+-``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

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

# the +- of an encoder column: ("ci", path to a 95% interval) -> half its width; ("std", path) -> the std
ENCODER_SPREAD: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "bias_mean_gap": ("ci", ("bias", "mean_gap_ci")),
    "bias_relative_gap": ("ci", ("bias", "relative_gap_ci")),
    "bias_auc": ("ci", ("bias", "auc_ci")),
    "verification_accuracy": ("std", ("verification", "accuracy_std")),
    "saliency_inner_ratio": ("std", ("saliency", "inner_ratio_std")),
}

ENCODER_GROUPS = {"positive_mean": "attribute bias", "verification_auc": "verification",
                  "retrieval_top1": "retrieval", "saliency_inner_ratio": "saliency"}  # first column of each group
SWAP_GROUPS = ("identity", "pose", "expression", "gaze", "shape")


def get_path(d: dict, path: Sequence[str]):
    """``d[path[0]][path[1]]...`` or None where a key is missing."""
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def leaderboard_rows(results: dict) -> Tuple[List[str], List[dict]]:
    """(columns, rows): the direction row first, then one row per encoder, then one per swapper."""
    cols = ["name", "kind"] + [c for c, *_ in ENCODER_COLUMNS]
    direction = {"name": "direction", "kind": ""}
    direction.update({c: d for c, d, *_ in ENCODER_COLUMNS})
    rows = [direction]
    for name, r in results.get("encoders", {}).items():
        row = {"name": name, "kind": "encoder", "degenerate": r.get("degenerate")}  # flag: not a column
        row.update({c: get_path(r, p) for c, _, p, _ in ENCODER_COLUMNS})
        for col, value in r.get("columns", {}).items():  # column families of optional analyses
            if col not in cols:
                from idbench.analysis import metric_direction

                cols.append(col)
                direction[col] = metric_direction(col)
            row[col] = value
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


# --- what a column is --------------------------------------------------------------------------

def swap_group(col: str) -> Optional[str]:
    """identity / pose / expression / gaze / shape for a swap metric column, None for counts."""
    base = col.split("[", 1)[0]
    if base.startswith("id_"):
        return "identity"
    kind = base.split("_", 1)[0]
    return kind if kind in SWAP_GROUPS and not base.endswith("_n") else None


def column_unit(col: str) -> str:
    """The unit of a leaderboard column, from its metric and (for attributes) its estimator."""
    base, _, est = col.partition("[")
    est = est.rstrip("]")
    if base.endswith("_relative") or base.startswith(("id_retrieval", "retrieval", "verification_accuracy",
                                                      "tar_at", "eer", "saliency")):
        return "share"
    if base == "id_distance":
        return "1 - cos"
    if base.startswith(("pose_", "gaze_")):
        return "degrees"
    if base.startswith(("expression_", "shape_")) and est:
        try:
            from idbench.analysis.estimators import get_spec

            return get_spec(est).units or "estimator units"
        except Exception:  # an estimator that is not registered here: its units are unknown
            return "estimator units"
    if base.startswith(("positive", "swapped", "negative", "bias_mean_gap", "bias_wasserstein")):
        return "cosine"
    return {"bias_relative_gap": "share of P - N", "bias_auc": "probability", "bias_ks": "CDF distance",
            "verification_auc": "probability"}.get(base, "")


def column_groups(cols: Sequence[str], kind: str) -> List[Tuple[str, List[str]]]:
    """Metric columns of one kind, in display order, grouped."""
    if kind == "encoder":
        groups: List[Tuple[str, List[str]]] = []
        for c in cols:
            if c in ENCODER_GROUPS or not groups:
                groups.append((ENCODER_GROUPS.get(c, ""), []))
            groups[-1][1].append(c)
        return groups
    by = {g: [c for c in cols if swap_group(c) == g] for g in SWAP_GROUPS}
    return [(g, by[g]) for g in SWAP_GROUPS if by[g]]


# --- numbers as shown --------------------------------------------------------------------------

def fmt_value(v) -> str:
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, (int, float)):
        if not math.isfinite(v):
            return ""
        return f"{v:.2f}" if abs(v) >= 10 else f"{v:.4f}"
    return str(v)


def spread(results: dict, name: str, col: str) -> Optional[float]:
    """The +- of an encoder's column: half the 95% interval, or the std across folds/faces."""
    sw = results.get("swappers", {}).get(name)
    if sw is not None:  # a swap metric: half its 95% interval (cluster bootstrap, results["swappers"][n]["intervals"])
        ci = (sw.get("intervals") or {}).get(col)
        return (ci[1] - ci[0]) / 2 if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci else None
    how = ENCODER_SPREAD.get(col)
    enc = results.get("encoders", {}).get(name)
    if how is None or enc is None:
        return None
    v = get_path(enc, how[1])
    if how[0] == "ci":
        return (v[1] - v[0]) / 2 if isinstance(v, (list, tuple)) and len(v) == 2 and None not in v else None
    return v if isinstance(v, (int, float)) else None


def best_rows(rows: Sequence[dict], col: str, direction: str) -> set:
    """Names of the rows holding the best shown value of ``col`` (ties share it); empty for < 2 values or
    when every row shows the same value."""
    vals = {r["name"]: float(fmt_value(r.get(col))) for r in rows if fmt_value(r.get(col)) != ""
            and not r.get("degenerate")}  # a degenerate encoder is never best
    if direction not in ("higher", "lower") or len(vals) < 2:
        return set()
    best = max(vals.values()) if direction == "higher" else min(vals.values())
    winners = {n for n, v in vals.items() if v == best}
    return winners if len(winners) < len(vals) else set()  # all equal: nobody is best


def table_cells(results: dict, kind: str) -> Optional[dict]:
    """Everything a Markdown/LaTeX/HTML table needs for one kind of row, from :func:`leaderboard_rows`."""
    cols, rows = leaderboard_rows(results)
    direction = rows[0]
    rows = [r for r in rows[1:] if r["kind"] == kind]
    if not rows:
        return None
    metric_cols = [c for c in cols[2:] if any(r.get(c) is not None for r in rows)]
    groups = [(g, cs) for g, cs in column_groups(metric_cols, kind) if cs]
    cells: Dict[Tuple[str, str], Tuple[str, Optional[str], bool]] = {}
    for c in [c for _, cs in groups for c in cs]:
        best = best_rows(rows, c, direction.get(c, ""))
        for r in rows:
            sp = spread(results, r["name"], c)
            cells[r["name"], c] = (fmt_value(r.get(c)), None if sp is None else fmt_value(sp), r["name"] in best)
    return {"names": [r["name"] for r in rows], "groups": groups, "direction": direction, "cells": cells}


def _arrow(direction: str, tex: bool = False) -> str:
    up, down = (r"$\uparrow$", r"$\downarrow$") if tex else ("↑", "↓")
    return {"higher": up, "lower": down}.get(direction, "")


# --- Markdown ----------------------------------------------------------------------------------

def leaderboard_markdown(results: dict) -> str:
    parts = ["# Leaderboard", "", "Arrows: higher (↑) or lower (↓) is better; **bold** = best in the column; "
             "`a ± b`: b is half the bootstrap 95% interval (bias gap, relative gap, AUC) or the std "
             "(accuracy: across the 10 folds; saliency ratio: across faces); swap metrics: half the 95% interval of a "
             "bootstrap over swap pairs (videos: over target x source videos). Same numbers as `leaderboard.csv`.", ""]
    for kind, title in (("encoder", "Encoders"), ("swapper", "Swappers")):
        t = table_cells(results, kind)
        if t is None:
            continue
        for group, cols in t["groups"]:  # one table per group: narrow enough to read
            head = [kind] + [f"{c} {_arrow(t['direction'].get(c, ''))} ({column_unit(c)})".replace(" ()", "")
                             for c in cols]
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            for n in t["names"]:
                lines.append("| " + " | ".join([n] + [_md_cell(*t["cells"][n, c]) for c in cols]) + " |")
            parts += [f"## {title}: {group}", ""] + lines + [""]
    return "\n".join(parts)


def _md_cell(value: str, pm: Optional[str], best: bool) -> str:
    s = value if pm is None or value == "" else f"{value} ± {pm}"
    return f"**{s}**" if best and s else s


# --- LaTeX (booktabs) --------------------------------------------------------------------------

_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}


def tex_escape(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def leaderboard_latex(results: dict) -> str:
    """booktabs tables (needs ``\\usepackage{booktabs,graphicx}``), one per kind of row."""
    out = ["% idbench leaderboard: \\usepackage{booktabs,graphicx}; same numbers as leaderboard.csv", ""]
    for kind, title in (("encoder", "Identity encoders"), ("swapper", "Face swappers")):
        t = table_cells(results, kind)
        if t is not None:
            out += _tex_table(t, kind, title) + [""]
    return "\n".join(out)


def _tex_table(t: dict, kind: str, title: str) -> List[str]:
    cols = [c for _, cs in t["groups"] for c in cs]
    group_row, rules, k = [""], [], 2
    for g, cs in t["groups"]:
        group_row.append(rf"\multicolumn{{{len(cs)}}}{{c}}{{{tex_escape(g)}}}")
        rules.append(rf"\cmidrule(lr){{{k}-{k + len(cs) - 1}}}")
        k += len(cs)
    head = [kind] + [rf"{tex_escape(c)} {_arrow(t['direction'].get(c, ''), True)}" for c in cols]
    units = [""] + [tex_escape(column_unit(c)) for c in cols]
    body = []
    for n in t["names"]:
        cells = [tex_escape(n)]
        for c in cols:
            v, pm, best = t["cells"][n, c]
            s = v if pm is None or v == "" else rf"{v} $\pm$ {pm}"
            cells.append(rf"\textbf{{{s}}}" if best and s else s)
        body.append(" & ".join(cells) + r" \\")
    caption = (f"{title}. Arrows: higher/lower is better; bold: best per column; $\\pm$: half the bootstrap 95\\% "
               "interval (swap metrics: over swap pairs, or target x source videos), or the std across folds "
               "(accuracy) and faces (saliency).")
    return [r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}",
            rf"\resizebox{{\linewidth}}{{!}}{{%", r"\begin{tabular}{l" + "r" * len(cols) + "}", r"\toprule",
            " & ".join(group_row) + r" \\", " ".join(rules), " & ".join(head) + r" \\",
            " & ".join(units) + r" \\", r"\midrule"] + body + [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
