"""Published results beside the run's swappers (``bench report --published SET``): reported, never re-run.

``results["published"]`` comes from :func:`idbench.bench.published.published_block`. The rows whose dataset,
protocol and evaluator match the run sit as extra columns next to the user's swappers, in idbench's column units
(a percent becomes a share); every other chosen row is listed with the reason it is not shown.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Tuple

from idbench.escape import html_text, md_cell

from ._plot import html_table
from .tables import column_unit, fmt_value

NOTE = ("Published = reported in the literature, not re-run by idbench, shown only where the run's dataset, "
        "protocol and evaluator match the row; * = not re-checked against its source (attributed only).")


def _published_columns(shown: List[dict]) -> List[Tuple[str, str]]:
    """(key, header) per published method x paper, in table order."""
    out: Dict[Tuple[str, str], str] = {}
    for r in shown:
        out.setdefault((r["method"], r["paper"]), f"{r['method']} (reported{'' if r['rechecked'] else '*'})")
    return [(f"{m}|{p}", h) for (m, p), h in out.items()]


def beside_table(results: dict) -> Optional[Tuple[List[str], List[List[str]]]]:
    """(header, rows): metrics down; the run's swappers, then the published methods, across."""
    block = results.get("published") or {}
    shown = block.get("shown") or []
    if not shown:
        return None
    swappers = list(results.get("swappers") or {})
    pub = _published_columns(shown)
    value = {(f"{r['method']}|{r['paper']}", r["idbench_column"]): r["value"] * r["idbench_scale"] for r in shown}
    metrics = list(dict.fromkeys(r["idbench_column"] for r in shown))
    header = ["metric [evaluator]", "unit"] + swappers + [h for _, h in pub]
    rows = []
    for c in metrics:
        run_vals = [fmt_value((results["swappers"][s].get("summary") or {}).get(c)) for s in swappers]
        rows.append([c, column_unit(c)] + run_vals + [_as_reported(value.get((k, c))) for k, _ in pub])
    return header, rows


def _as_reported(v: Optional[float]) -> str:
    """A published number with the digits it was reported with (scaling adds none: 92.83 % -> 0.9283)."""
    return "" if v is None else f"{round(v, 10):g}"


def _not_shown(block: dict) -> List[Tuple[str, List[dict]]]:
    """The rows not shown, grouped by their reason."""
    groups: Dict[str, List[dict]] = defaultdict(list)
    for r in block.get("not_shown") or []:
        groups[r["reason"]].append(r)
    return list(groups.items())


def _who(rows: List[dict]) -> str:
    metrics = ", ".join(dict.fromkeys(r["metric"] for r in rows))
    methods = ", ".join(dict.fromkeys(r["method"] for r in rows))
    return f"{len(rows)} row(s) ({metrics} of {methods})"


def _sources(shown: List[dict]) -> List[str]:
    """One line per paper x metric (its methods share protocol, evaluator, convention and source)."""
    groups: Dict[tuple, List[str]] = defaultdict(list)
    for r in shown:
        groups[(r["paper"], r["metric"], r["evaluator"], r["convention"], r["unchecked"], r["source"],
                r["source_version"], r["rechecked"])].append(r["method"])
    return [f"{', '.join(methods)} ({met}): {p}; evaluator: {ev}; {conv}{'; ' + un if un else ''}; source: {src} "
            f"({ver}); re-checked: {'yes' if ok else 'no'}"
            for (p, met, ev, conv, un, src, ver, ok), methods in groups.items()]


def published_section(results: dict) -> Optional[str]:
    block = results.get("published")
    if not block:
        return None
    esc = html_text
    parts = [f"<p class='small'>Sets: <code>{esc(block.get('sets', ''))}</code>. {esc(NOTE)}</p>"]
    t = beside_table(results)
    if t is None:
        parts.append("<p class='warn'>No published row matches this run's dataset, protocol and evaluators "
                     "(reasons below).</p>")
    else:
        parts.append(html_table(*t, caption="Swap metrics: this run's swappers beside published (reported) numbers"))
        parts.append("<ul class='small'>" + "".join(f"<li>{esc(s)}</li>" for s in _sources(block["shown"]))
                     + "</ul>")
    hidden = _not_shown(block)
    if hidden:
        parts.append("<p><b>Not shown</b> (the convention or the run differs):</p><ul class='small'>"
                     + "".join(f"<li>{esc(_who(rows))}: {esc(reason)}</li>" for reason, rows in hidden) + "</ul>")
    return "".join(parts)


def published_markdown(results: dict) -> str:
    """The same as a Markdown block for ``leaderboard.md`` ("" when ``--published`` was not given)."""
    block = results.get("published")
    if not block:
        return ""
    lines = ["", "## Published results (reported, not re-run)", "", NOTE, ""]
    t = beside_table(results)
    if t is None:
        lines.append("No published row matches this run's dataset, protocol and evaluators.")
    else:
        header, rows = t
        lines += ["| " + " | ".join(map(md_cell, header)) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(map(md_cell, r)) + " |" for r in rows]  # swapper names are data
        lines += [""] + [f"- {s}" for s in _sources(block["shown"])]
    lines += [""] + [f"- not shown, {_who(rows)}: {reason}" for reason, rows in _not_shown(block)]
    return "\n".join(lines) + "\n"
