"""Paper tables: chosen columns in a chosen order, display names and units from the metric catalogue.

``bench report RUN --preset encoder-bias,faceshifter-swap`` (or ``--columns a,b,c``) writes one LaTeX and
one Markdown table per preset into ``RUN/tables/``, made to go into a paper unchanged: headers are each
metric's display name with its direction arrow and unit, one precision per column, bold only under
:data:`~idbench.bench.report.tables.BOLD_RULE`, no ``\\resizebox`` (a table that does not fit the column is
a table with too many columns; the test compiles them in a two-column article and checks their width).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from idbench.analysis.catalogue import column_metric, split_column
from idbench.errors import InputError, UnknownNameError
from idbench.escape import md_cell

from .tables import BOLD_RULE, column_unit, leaderboard_rows, table_cells, tex_escape


# the bold rule (tables.BOLD_RULE) in a caption's words
BOLD_SHORT = ("Bold: best beyond uncertainty (Holm-adjusted paired test, else disjoint 95% intervals), only where "
              "rows share one scale.")


@dataclass(frozen=True)
class Preset:
    """A table of one kind of row (``encoder`` or ``swapper``): column names or ``*`` patterns, in order."""

    kind: str
    columns: Tuple[str, ...]
    caption: str


PRESETS: Dict[str, Preset] = {
    "encoder-bias": Preset("encoder", ("bias_relative_gap", "bias_auc", "verification_auc"),
                           "Attribute bias of identity encoders (BlendFace protocol) and their recognition"),
    "verification": Preset("encoder", ("verification_accuracy", "verification_auc", "tar_at_far_1e-3"),
                           "Face verification"),
    "faceshifter-swap": Preset("swapper", ("id_retrieval_ffpp[*]", "id_retrieval_top1[*]", "pose_l2[*]",
                                           "expression_l2[*]"),
                               "Face swapping, FaceShifter's convention (ID retrieval, pose and expression L2)"),
    "blendface-swap": Preset("swapper", ("id_distance[*]", "pose_l1[*]", "gaze_l1[*]", "expression_l1[*]"),
                             "Face swapping, BlendFace's convention (identity distance, pose/gaze/expression L1)"),
}


def select_columns(available: Sequence[str], patterns: Sequence[str], strict: bool) -> List[str]:
    """The columns of ``available`` that ``patterns`` name, in pattern order. ``strict`` (``--columns``): every
    match of a pattern, and a pattern that matches nothing is an error with close matches; presets take a
    pattern's first match (one evaluator per metric: the run's first identity encoder) and skip what a run
    lacks."""
    out: List[str] = []
    for p in patterns:  # '*' and '?' are wildcards; brackets are literal (`pose_l2[*]`: any estimator)
        rx = re.compile("".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in p) + "$")
        hits = [c for c in available if rx.match(c)]
        hits = hits if strict else hits[:1]
        if not hits and strict:
            raise UnknownNameError("column of this run", p, available)
        out += [c for c in hits if c not in out]
    return out


@dataclass
class PaperTable:
    kind: str
    columns: List[str]
    names: List[str]
    cells: dict  # (row name, column) -> (value, +-, bold)
    direction: dict
    caption: str


def paper_table(results: dict, preset: Optional[str] = None, columns: Optional[Sequence[str]] = None,
                kind: Optional[str] = None, caption: Optional[str] = None) -> Optional[PaperTable]:
    """One table: a preset's columns, or ``columns`` (row kind from the first column). None when the run has
    no row of that kind or none of the preset's columns."""
    if preset is not None:
        if preset not in PRESETS:
            raise UnknownNameError("table preset", preset, PRESETS)
        p = PRESETS[preset]
        kind, patterns, caption = p.kind, p.columns, caption or p.caption
    else:
        patterns = list(columns or [])
        if not patterns:
            raise InputError("--columns is empty")
        kind = kind or ("swapper" if column_metric(patterns[0]).kind == "swap" else "encoder")
    cols, rows = leaderboard_rows(results)
    mine = [r for r in rows[1:] if r["kind"] == kind]
    available = [c for c in cols[2:] if any(r.get(c) is not None for r in mine)]
    chosen = select_columns(available, patterns, strict=preset is None)
    if not mine or not chosen:
        return None
    t = table_cells(results, kind, chosen)
    return PaperTable(kind, chosen, t["names"], t["cells"], t["direction"], caption or f"{kind.title()}s")


def _header(col: str, direction: str, tex: bool, show_suffix: bool) -> Tuple[str, str]:
    """(display name with arrow, unit line) of one column; ``show_suffix``: the unit line names the evaluator."""
    m = column_metric(col)
    arrow = {"higher": (r"$\uparrow$" if tex else "↑"), "lower": (r"$\downarrow$" if tex else "↓")}.get(direction, "")
    _, suffix = split_column(col)
    name = f"TAR@{suffix}" if suffix and col.startswith("tar_at_far") else m.label
    esc = tex_escape if tex else (lambda s: s)
    unit = column_unit(col)
    return f"{esc(name)} {arrow}".strip(), esc(f"{suffix}, {unit}" if show_suffix else unit)


def _evaluators(t: PaperTable) -> Tuple[set, str]:
    """The columns whose header must name their evaluator (their metric appears with two), and a caption note
    naming the evaluator of every other column."""
    by_metric: Dict[str, List[str]] = {}
    for c in t.columns:
        _, suffix = split_column(c)
        if suffix and not c.startswith("tar_at_far"):
            by_metric.setdefault(column_metric(c).label, []).append(c)
    named = {c for cs in by_metric.values() if len(cs) > 1 for c in cs}
    note = "; ".join(f"{k}: {split_column(cs[0])[1]}" for k, cs in by_metric.items() if len(cs) == 1)
    return named, (f"Evaluators: {note}." if note else "")


def _stacked(unit: str, width: int = 14) -> str:
    """A unit line in small type, broken into lines of about ``width`` characters (a nested tabular: no
    package needed), so a long unit does not widen its column."""
    import textwrap

    lines = textwrap.wrap(unit, width) or [""]
    body = r"\\".join(lines)
    return rf"\scriptsize {body}" if len(lines) == 1 else rf"\scriptsize\begin{{tabular}}[t]{{@{{}}c@{{}}}}{body}\end{{tabular}}"


def _cell(value: str, pm: Optional[str], bold: bool, tex: bool) -> str:
    if tex and pm and value:  # the interval in a smaller size, leading zero dropped (0.157±.021): narrow columns
        pm = pm[1:] if pm.startswith("0.") else pm
        s = rf"{value}{{\scriptsize$\pm${pm}}}"
        return rf"\textbf{{{s}}}" if bold else s
    s = value if pm is None or value == "" else (rf"{value}$\pm${pm}" if tex else f"{value} ± {pm}")
    return (rf"\textbf{{{s}}}" if tex else f"**{s}**") if bold and s else s


def to_latex(t: PaperTable, env: str = "table", label: Optional[str] = None, caption: Optional[str] = None) -> str:
    """A booktabs table (``\\usepackage{booktabs}``) in ``table`` (one column) or ``table*`` (full width)."""
    if env not in ("table", "table*"):
        raise InputError(f"--tex-env takes table or table*, got {env!r}")
    named, evaluators = _evaluators(t)
    heads = [_header(c, t.direction.get(c, ""), True, c in named) for c in t.columns]
    body = [" & ".join([tex_escape(n)] + [_cell(*t.cells[n, c], True) for c in t.columns]) + r" \\"
            for n in t.names]
    text = " ".join(tex_escape(x) for x in (_sentence(caption or t.caption), evaluators, BOLD_SHORT) if x) + \
        " " + tex_escape(_pm_note(t)).replace(tex_escape("±"), r"$\pm$")
    lines = [rf"\begin{{{env}}}[t]", r"\centering", r"\footnotesize", r"\setlength{\tabcolsep}{3pt}",
             rf"\caption{{{text}}}"]
    if label:
        lines.append(rf"\label{{{tex_escape(label)}}}")
    lines += [r"\begin{tabular}{l" + "c" * len(t.columns) + "}", r"\toprule",
              " & ".join([t.kind] + [h for h, _ in heads]) + r" \\",
              " & ".join([""] + [_stacked(u) if u else "" for _, u in heads]) + r" \\",
              r"\midrule", *body, r"\bottomrule", r"\end{tabular}", rf"\end{{{env}}}", ""]
    return "\n".join(lines)


def _pm_note(t: PaperTable) -> str:
    """What the ± of this table's columns is."""
    from .tables import ENCODER_SPREAD

    std = [column_metric(c).label for c in t.columns if t.kind == "encoder" and ENCODER_SPREAD.get(c, ("",))[0] == "std"]
    return "±: half the 95% interval" + (f" ({', '.join(std)}: the std across folds or faces)." if std else ".")


def _sentence(s: str) -> str:
    return s if s.endswith(".") else s + "."


def to_markdown(t: PaperTable, caption: Optional[str] = None) -> str:
    named, evaluators = _evaluators(t)
    heads = [_header(c, t.direction.get(c, ""), False, c in named) for c in t.columns]
    head = [t.kind] + [md_cell(f"{h} ({u})" if u else h) for h, u in heads]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([md_cell(n)] + [_cell(*t.cells[n, c], False) for c in t.columns]) + " |"
              for n in t.names]  # names are data: no extra columns, rows or markup (idbench.escape)
    note = " ".join(x for x in (_sentence(caption or t.caption), evaluators, BOLD_RULE[0].upper() + BOLD_RULE[1:] + ".",
                                _pm_note(t)) if x)
    return "\n".join(lines + ["", note, ""])


def write_paper_tables(results: dict, out_dir: Path, presets: Sequence[str] = (), columns: Sequence[str] = (),
                       env: str = "table", caption: Optional[str] = None, label: Optional[str] = None) -> List[Path]:
    """``out_dir/tables/<preset>.tex|.md`` per preset, ``custom.tex|.md`` for ``columns``; returns the files."""
    from idbench.cache import write_atomic

    jobs = [(p, paper_table(results, preset=p, caption=caption)) for p in presets]
    if columns:
        jobs.append(("custom", paper_table(results, columns=columns, caption=caption)))
    written = []
    for name, t in jobs:
        if t is None:
            continue
        d = Path(out_dir) / "tables"
        d.mkdir(parents=True, exist_ok=True)
        lab = label if label and len(jobs) == 1 else (f"{label}-{name}" if label else f"tab:{name}")
        for suffix, text in ((".tex", to_latex(t, env, lab)), (".md", to_markdown(t))):
            write_atomic(d / f"{name}{suffix}", text.encode("utf-8"))
            written.append(d / f"{name}{suffix}")
    return written
