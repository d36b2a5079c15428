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

from idbench.escape import csv_cell, md_cell, tex
from idbench.analysis.catalogue import column_metric, metric_direction

# (column, path into the per-encoder result); what each column is (direction, unit, group, display name) is
# the metric catalogue's (idbench.analysis.catalogue)
ENCODER_COLUMNS: List[Tuple[str, Tuple[str, ...]]] = [
    ("positive_mean", ("bias", "positive_mean")),
    ("swapped_mean", ("bias", "swapped_mean")),
    ("negative_mean", ("bias", "negative_mean")),
    ("bias_mean_gap", ("bias", "mean_gap")),
    ("bias_relative_gap", ("bias", "relative_gap")),
    ("bias_auc", ("bias", "auc")),
    ("bias_wasserstein", ("bias", "wasserstein")),
    ("bias_ks", ("bias", "ks")),
    ("verification_auc", ("verification", "auc")),
    ("eer", ("verification", "eer")),
    ("tar_at_far_1e-3", ("verification", "tar_at_far_1e-3")),
    ("verification_accuracy", ("verification", "accuracy_mean")),
    ("retrieval_top1", ("retrieval", "top1")),
    ("retrieval_top5", ("retrieval", "top5")),
    ("saliency_inner_ratio", ("saliency", "inner_ratio_mean")),
]

# the +- of an encoder column: ("ci", path to a 95% interval) -> half its width; ("std", path) -> the std
ENCODER_SPREAD: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "bias_mean_gap": ("ci", ("bias", "mean_gap_ci")),
    "bias_relative_gap": ("ci", ("bias", "relative_gap_ci")),
    "bias_auc": ("ci", ("bias", "auc_ci")),
    "verification_auc": ("ci", ("verification", "auc_ci")),
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
    cols = ["name", "kind"] + [c for c, _ in ENCODER_COLUMNS]
    direction = {"name": "direction", "kind": ""}
    direction.update({c: metric_direction(c) for c, _ in ENCODER_COLUMNS})
    rows = [direction]

    def add(row: dict, col: str, value) -> None:  # an uncatalogued column raises here: never a silent drop
        if col not in cols:
            direction[col] = metric_direction(col)
            cols.append(col)
        row[col] = value

    for name, r in results.get("encoders", {}).items():
        row = {"name": name, "kind": "encoder", "degenerate": r.get("degenerate")}  # flag: not a column
        row.update({c: get_path(r, p) for c, p in ENCODER_COLUMNS})
        for col, value in r.get("columns", {}).items():  # column families of optional analyses
            add(row, col, value)
        rows.append(row)
    for name, r in results.get("swappers", {}).items():
        row = {"name": name, "kind": "swapper"}
        for col, value in r.get("summary", {}).items():
            add(row, col, value)
        rows.append(row)
    return cols, rows


def write_leaderboard(results: dict, path: Path) -> None:
    import pandas as pd

    from idbench.atomic import atomic_write

    cols, rows = leaderboard_rows(results)
    safe = [{c: csv_cell(r.get(c)) for c in cols} for r in rows]  # a name cannot become a spreadsheet formula
    text = pd.DataFrame(safe, columns=cols).rename(columns=csv_cell).to_csv(index=False)
    atomic_write(path, text)


# --- what a column is --------------------------------------------------------------------------

def swap_group(col: str) -> Optional[str]:
    """The catalogue group of a swap metric column (identity / pose / ... or a new metric's own), None for counts."""
    metric = column_metric(col)
    return None if metric.direction == "" else metric.group


def column_unit(col: str) -> str:
    """The unit of a leaderboard column: the catalogue's, or (expression, shape) its estimator's."""
    unit = column_metric(col).unit
    est = col.partition("[")[2].rstrip("]")
    if unit == "estimator units" and est:
        try:
            from idbench.analysis.estimators import get_spec

            return get_spec(est).units or unit
        except Exception:  # an estimator that is not registered here: its units are unknown
            return unit
    return unit


def column_groups(cols: Sequence[str], kind: str) -> List[Tuple[str, List[str]]]:
    """Metric columns of one kind, in display order, grouped."""
    if kind == "encoder":
        groups: List[Tuple[str, List[str]]] = []
        for c in cols:
            if c in ENCODER_GROUPS or not groups:
                groups.append((ENCODER_GROUPS.get(c, ""), []))
            groups[-1][1].append(c)
        return groups
    groups = [*SWAP_GROUPS, *dict.fromkeys(g for g in map(swap_group, cols) if g and g not in SWAP_GROUPS)]
    by = {g: [c for c in cols if swap_group(c) == g] for g in groups}  # a new group follows the known ones
    return [(g, by[g]) for g in groups if by[g]]


# --- numbers as shown --------------------------------------------------------------------------

def fmt_value(v, col: Optional[str] = None) -> str:
    """A number as shown: the catalogue's precision for ``col`` (counts as integers), else 4 decimals
    (2 from 10 up)."""
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, (int, float)):
        if not math.isfinite(v):
            return ""
        if col is not None:
            return f"{v:.{column_metric(col).precision}f}"
        return f"{v:.2f}" if abs(v) >= 10 else f"{v:.4f}"
    return str(v)


def interval(results: dict, kind: str, name: str, col: str) -> Optional[Tuple[float, float]]:
    """The 95% interval of a row's column where the run has one: an encoder's bootstrap intervals (bias gap,
    relative gap, AUC), DeLong's interval of its verification AUC, the Wilson interval of its retrieval rates,
    a swapper's bootstrap interval."""
    if kind == "swapper":
        ci = results.get("swappers", {}).get(name, {}).get("intervals", {}).get(col)
    else:
        enc = results.get("encoders", {}).get(name) or {}
        how = ENCODER_SPREAD.get(col)
        ci = get_path(enc, how[1]) if how and how[0] == "ci" else None
        if col in ("retrieval_top1", "retrieval_top5"):
            from ._plot import wilson

            rate, n = get_path(enc, ("retrieval", col.split("_")[1])), get_path(enc, ("retrieval", "n_probes"))
            ci = wilson(rate * n, int(n)) if isinstance(rate, (int, float)) and isinstance(n, int) and n else None
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
        return float(ci[0]), float(ci[1])
    return None


def spread(results: dict, name: str, col: str, kind: str = "encoder") -> Optional[float]:
    """The +- of a row's column: half its 95% interval, or (encoders) the std across folds/faces."""
    ci = interval(results, kind, name, col)
    if ci is not None:
        return (ci[1] - ci[0]) / 2
    how = ENCODER_SPREAD.get(col) if kind == "encoder" else None
    v = get_path(results.get("encoders", {}).get(name) or {}, how[1]) if how and how[0] == "std" else None
    return v if isinstance(v, (int, float)) else None


BOLD_RULE = ("bold: best in a column whose rows are on one scale (not raw cosine means or gaps), and only when it "
             "beats the runner-up beyond uncertainty: a Holm-adjusted paired test at 0.05 where both rows scored "
             "the same items, else non-overlapping 95% intervals; ties and columns without intervals are not bold")


def _paired_significant(results: dict, kind: str, col: str, a: str, b: str) -> Optional[bool]:
    """The paired comparison of rows ``a`` and ``b`` on ``col``, where the run made one (swappers evaluated on
    the same pairs): whether it is significant after Holm's adjustment; None where there is none."""
    if kind != "swapper":
        return None
    rows = results.get("swap_comparisons", {})
    rows = rows.get(col, []) if isinstance(rows, dict) else []
    for r in rows:
        if {r.get("a"), r.get("b")} == {a, b} and "significant" in r:
            return bool(r["significant"])
    return None


def best_rows(results: dict, kind: str, rows: Sequence[dict], col: str, direction: str) -> set:
    """The row to bold in ``col`` under :data:`BOLD_RULE` (a set of at most one name)."""
    vals = {r["name"]: float(r[col]) for r in rows if isinstance(r.get(col), (int, float))
            and not isinstance(r.get(col), bool) and math.isfinite(r[col])
            and not r.get("degenerate")}  # a degenerate encoder is never best
    if direction not in ("higher", "lower") or len(vals) < 2 or not column_metric(col).comparable:
        return set()
    order = sorted(vals, key=vals.get, reverse=direction == "higher")
    best, second = order[0], order[1]
    if vals[best] == vals[second]:
        return set()
    significant = _paired_significant(results, kind, col, best, second)
    if significant is None:
        a, b = interval(results, kind, best, col), interval(results, kind, second, col)
        if a is None or b is None:
            return set()
        significant = a[0] > b[1] if direction == "higher" else a[1] < b[0]
    return {best} if significant else set()


def table_cells(results: dict, kind: str, columns: Optional[Sequence[str]] = None) -> Optional[dict]:
    """Everything a Markdown/LaTeX/HTML table needs for one kind of row, from :func:`leaderboard_rows`
    (``columns``: these columns in this order, as one group; default: every column, grouped)."""
    cols, rows = leaderboard_rows(results)
    direction = rows[0]
    rows = [r for r in rows[1:] if r["kind"] == kind]
    if not rows:
        return None
    if columns is not None:
        groups = [("", list(columns))]
    else:
        metric_cols = [c for c in cols[2:] if any(r.get(c) is not None for r in rows)]
        groups = [(g, cs) for g, cs in column_groups(metric_cols, kind) if cs]
    cells: Dict[Tuple[str, str], Tuple[str, Optional[str], bool]] = {}
    for c in [c for _, cs in groups for c in cs]:
        best = best_rows(results, kind, rows, c, direction.get(c, ""))
        for r in rows:
            sp = spread(results, r["name"], c, kind)
            cells[r["name"], c] = (fmt_value(r.get(c), c), None if sp is None else fmt_value(sp, c),
                                   r["name"] in best)
    return {"names": [r["name"] for r in rows], "groups": groups, "direction": direction, "cells": cells}


def _arrow(direction: str, tex: bool = False) -> str:
    up, down = (r"$\uparrow$", r"$\downarrow$") if tex else ("↑", "↓")
    return {"higher": up, "lower": down}.get(direction, "")


# --- Markdown ----------------------------------------------------------------------------------

def leaderboard_markdown(results: dict) -> str:
    parts = ["# Leaderboard", "", "Arrows: higher (↑) or lower (↓) is better; " + BOLD_RULE + "; "
             "`a ± b`: b is half the 95% interval (bootstrap; DeLong for verification AUC; Wilson for retrieval; "
             "swap metrics: a bootstrap over swap pairs, or target x source videos) or the std (accuracy: across "
             "the 10 folds; saliency ratio: "
             "across faces). Same numbers as `leaderboard.csv`.", ""]
    for kind, title in (("encoder", "Encoders"), ("swapper", "Swappers")):
        t = table_cells(results, kind)
        if t is None:
            continue
        for group, cols in t["groups"]:  # one table per group: narrow enough to read
            head = [kind] + [md_cell(f"{c} {_arrow(t['direction'].get(c, ''))} ({column_unit(c)})".replace(" ()", ""))
                             for c in cols]
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            for n in t["names"]:
                lines.append("| " + " | ".join([md_cell(n)] + [_md_cell(*t["cells"][n, c]) for c in cols]) + " |")
            parts += [f"## {title}: {md_cell(group)}", ""] + lines + [""]
    return "\n".join(parts)


def _md_cell(value: str, pm: Optional[str], best: bool) -> str:
    s = value if pm is None or value == "" else f"{value} ± {pm}"
    return f"**{s}**" if best and s else s


# --- LaTeX (booktabs) --------------------------------------------------------------------------

tex_escape = tex  # the one LaTeX escaping (idbench.escape)


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
    caption = (f"{title}. Arrows: higher/lower is better; {BOLD_RULE}; $\\pm$: half the 95\\% "
               "interval (swap metrics: a bootstrap over swap pairs, or target x source videos), or the std across "
               "folds (accuracy) and faces (saliency).")
    return [r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}",
            rf"\resizebox{{\linewidth}}{{!}}{{%", r"\begin{tabular}{l" + "r" * len(cols) + "}", r"\toprule",
            " & ".join(group_row) + r" \\", " ".join(rules), " & ".join(head) + r" \\",
            " & ".join(units) + r" \\", r"\midrule"] + body + [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
