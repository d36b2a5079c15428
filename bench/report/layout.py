"""The HTML page: sections in reading order, plotly.js embedded once in the head, no network access."""

from __future__ import annotations

from idbench.escape import html_text
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from ._plot import html_table
from .bias import bias_section
from .saliency import saliency_section
from .summary import failures_section, provenance_section, summary_section
from .swaps import swaps_section
from .tables import BOLD_RULE, column_unit, table_cells
from .verification import retrieval_section, verification_section

CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222}
nav{position:sticky;top:0;background:#fff;padding:.4em 0;border-bottom:1px solid #ddd;z-index:10}
nav a{margin-right:1em} section{margin:1.5em 0 2.5em} h2{border-bottom:2px solid #333;padding-bottom:.2em}
.small{color:#555;font-size:.9em} .warn{color:#a33} .warnbox{background:#fff4e5;border-left:4px solid #e69500;
padding:.3em 1em;margin:1em 0} .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:1em}
table.data{border-collapse:collapse;margin:1em 0;font-size:.9em} table.data caption{caption-side:top;text-align:left;
color:#444;padding:.3em 0} table.data th,table.data td{border-bottom:1px solid #ddd;padding:.3em .6em;
text-align:right;overflow-wrap:anywhere;max-width:40em} table.data th{overflow-wrap:normal}
table.data th:first-child,table.data td:first-child{text-align:left;white-space:nowrap}
table.data td.text{text-align:left}
table.data thead th{border-bottom:2px solid #333;background:#fafafa} td.best{font-weight:bold}
table.data tr.group th{text-align:left;background:#eef2f7;font-style:italic} .scroll{overflow-x:auto}
pre.wrap{white-space:pre-wrap;overflow-wrap:anywhere;font-size:.8em;background:#f7f7f7;padding:1em}
figure{display:inline-block;margin:4px} figcaption{font-size:.8em}
"""

# (id, heading, builder(results, out_dir) -> html or None), in reading order
SECTIONS: List[Tuple[str, str, Callable]] = [
    ("summary", "Summary", lambda r, d: summary_section(r)),
    ("bias", "Attribute bias", lambda r, d: bias_section(r)),
    ("verification", "Verification", lambda r, d: verification_section(r)),
    ("retrieval", "ID retrieval", lambda r, d: retrieval_section(r)),
    ("swaps", "Swap evaluation", lambda r, d: swaps_section(r)),
    ("published", "Published results (reported, not re-run)", lambda r, d: _published(r)),
    ("decomposition", "Attribute decomposition", lambda r, d: _decomposition(r, d)),
    ("saliency", "Saliency", lambda r, d: saliency_section(r, d)),
    ("leaderboard", "Leaderboard (all columns)", lambda r, d: leaderboard_section(r)),
    ("failures", "Failures", lambda r, d: failures_section(r)),
    ("provenance", "Provenance", lambda r, d: provenance_section(r)),
]


def _published(results: dict) -> Optional[str]:
    from .published import published_section

    return published_section(results)


def _decomposition(results: dict, out_dir) -> Optional[str]:
    from idbench.bench.report_decomposition import decomposition_section

    return decomposition_section(results, out_dir)


def leaderboard_section(results: dict) -> Optional[str]:
    """Every leaderboard column, one table per kind and column group (as in leaderboard.md)."""
    arrow = {"higher": "↑", "lower": "↓"}
    parts = []
    for kind in ("encoder", "swapper"):
        t = table_cells(results, kind)
        for group, cols in (t["groups"] if t else []):
            head = [kind] + [f"{c} {arrow.get(t['direction'].get(c, ''), '')} ({column_unit(c)})".replace(" ()", "")
                             for c in cols]
            rows = [[n] + [v if pm is None or not v else f"{v} ± {pm}" for v, pm, _ in (t["cells"][n, c]
                                                                                      for c in cols)]
                    for n in t["names"]]
            bold = [[False] + [t["cells"][n, c][2] for c in cols] for n in t["names"]]
            parts.append(html_table(head, rows, bold, caption=f"{kind}s: {group}"))
    if not parts:
        return None
    return ("<p class='small'>The numbers of <code>leaderboard.csv</code>; the same tables for papers are in "
            "<code>leaderboard.md</code> and <code>leaderboard.tex</code>. ± = half the bootstrap 95% interval, "
            "or the std (accuracy across folds, saliency across faces); " + BOLD_RULE + ".</p>" + "".join(parts))


def all_sections() -> List[Tuple[str, str, Callable]]:
    """:data:`SECTIONS` and, before the leaderboard, the own section of every analysis step that has one
    (``StepSpec.report``; id = the step's name, heading = its ``section``)."""
    from idbench.bench.steps import STEPS, ordered

    extra = [(n, STEPS.spec(n).section or n, STEPS.spec(n).report) for n in ordered() if STEPS.spec(n).report]
    i = next(k for k, (sid, _, _) in enumerate(SECTIONS) if sid == "leaderboard")
    return SECTIONS[:i] + extra + SECTIONS[i:]


def render_report(results: dict, out_dir: Path, sections: Optional[Sequence[str]] = None) -> str:
    """The whole page, or only ``sections`` (ids of :data:`SECTIONS`), as one HTML string."""
    from plotly.offline import get_plotlyjs

    from idbench.escape import decodable

    results = decodable(results)  # names with undecodable bytes: shown as \xNN in text and charts alike
    body, nav = [], []
    for sid, title, build in all_sections():
        if sections is not None and sid not in sections:
            continue
        content = build(results, Path(out_dir))
        if content is None:
            continue
        nav.append(f'<a href="#{sid}">{html_text(title)}</a>')
        body.append(f'<section id="{sid}"><h2>{html_text(title)}</h2><div class="scroll">{content}</div></section>')
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>idbench report</title>
<style>{CSS}</style><script type="text/javascript">{get_plotlyjs()}</script></head><body>
<h1>idbench report</h1><nav>{''.join(nav)}</nav>
{''.join(body)}
</body></html>"""


def write_report(results: dict, path: Path, out_dir: Path, sections: Optional[Sequence[str]] = None) -> None:
    """A self-contained HTML report: plotly.js embedded once, no network access needed."""
    from idbench.atomic import atomic_write

    atomic_write(path, render_report(results, out_dir, sections))
