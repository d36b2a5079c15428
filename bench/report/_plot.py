"""Shared pieces of the HTML report: colours, encoder order, figure -> HTML, HTML tables."""

from __future__ import annotations

from idbench.escape import html_text
import re
from typing import Dict, List, Optional, Sequence

from .tables import fmt_value, get_path

GROUP_COLOURS = {"positive": "#1b9e77", "swapped": "#d95f02", "negative": "#7570b3"}
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
# encoders are sorted by the first of these they all have (lowest attribute bias first)
SORT_KEYS = (("bias", "relative_gap", "relative gap, lowest first"), ("bias", "mean_gap", "bias gap, lowest first"),
             ("verification", "auc", "verification AUC, highest first"))
FONT = dict(family="Helvetica, Arial, sans-serif", size=13)


def encoder_order(results: dict) -> tuple:
    """(names sorted by the chosen metric, a sentence saying which)."""
    encs = results.get("encoders", {})
    names = list(encs)
    for section, key, label in SORT_KEYS:
        vals = {n: get_path(encs[n], (section, key)) for n in names}
        if names and all(isinstance(v, (int, float)) for v in vals.values()):
            return sorted(names, key=lambda n: vals[n], reverse="highest" in label), f"sorted by {label}"
    return names, "encoders in run order"


def colour_of(results: dict) -> Dict[str, str]:
    """One colour per encoder, the same on every chart (run order, so merging runs does not reshuffle)."""
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(results.get("encoders", {}))}


def style(fig, height: int, title: str = ""):
    fig.update_layout(height=height, title=dict(text=title, x=0, xanchor="left"), font=FONT, template="plotly_white",
                      margin=dict(l=80, r=30, t=60 if title else 30, b=60))
    return fig


def figure_html(fig, div_id: str) -> str:
    """The figure's div and script; plotly.js itself is embedded once in the page head."""
    import plotly.io as pio

    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


_NUMBER = re.compile(r"^\s*(?:[-+\u2212]?\d|n/a$|nan$|inf$)")


def _numeric(cell: object) -> bool:
    """Numbers (and n/a) are right-aligned so digits line up; text (paths, reasons) is left-aligned."""
    return bool(_NUMBER.match(str(cell)))


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], bold: Optional[List[List[bool]]] = None,
               caption: str = "", header_rows: Sequence[Sequence[tuple]] = ()) -> str:
    """A plain HTML table; ``bold[i][j]`` marks the best cell; ``header_rows`` are (label, colspan) rows."""
    esc = html_text
    head = "".join("<tr>" + "".join(f'<th colspan="{span}">{esc(t)}</th>' for t, span in hr) + "</tr>"
                   for hr in header_rows)
    head += "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"
    body = []
    for i, r in enumerate(rows):
        cells = []
        for j, c in enumerate(r):
            cls = " ".join(n for n, on in (("best", bold is not None and bold[i][j]), ("text", not _numeric(c))) if on)
            cells.append(f'<td class="{cls}">{esc(c)}</td>' if cls else f"<td>{esc(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<table class="data">{cap}<thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def with_ci(v, ci) -> str:
    """``0.1234 [0.1000, 0.1500]`` or the bare value when there is no interval."""
    s = fmt_value(v)
    if s and isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
        s += f" [{fmt_value(ci[0])}, {fmt_value(ci[1])}]"
    return s


def wilson(k: float, n: int, z: float = 1.959964) -> Optional[tuple]:
    """Wilson score 95% interval of a proportion k/n (Wilson 1927)."""
    if n <= 0:
        return None
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / den
    return max(0.0, mid - half), min(1.0, mid + half)
