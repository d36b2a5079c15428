"""Headline summary (dataset, n, key numbers with intervals, warnings) and the failures and provenance sections."""

from __future__ import annotations

from idbench.escape import html_text
import json
from typing import List

from ._plot import encoder_order, html_table, with_ci
from .tables import fmt_value, get_path

SMALL_GROUP = 30  # fewer samples than this in a bias group: intervals are wide


def failures(results: dict) -> List[tuple]:
    """(stage, item, reason) of everything dropped anywhere in the run, old and new results.json alike."""
    out = [(f.get("stage", ""), str(f.get("item", "")), str(f.get("reason", "")))
           for f in results.get("failures") or []]
    seen = {(s, i) for s, i, _ in out}
    for path, reason in results.get("dataset", {}).get("skipped") or []:
        if ("detect", str(path)) not in seen and ("read", str(path)) not in seen:
            out.append(("detect", str(path), str(reason)))
    for n, r in (results.get("swappers") or {}).items():
        for e in r.get("errors") or []:
            out.append((f"swap {n}", *_item_reason(e)))
        fails = r.get("estimator_failures") or {}
        for kind, items in (fails.items() if isinstance(fails, dict) else []):
            for e in items if isinstance(items, list) else [items]:
                out.append((f"estimate {kind} ({n})", *_item_reason(e)))
    for n, r in results.get("encoders", {}).items():
        if r.get("bias_error"):
            out.append((f"bias {n}", "", r["bias_error"]))
    return out


def _item_reason(e) -> tuple:
    if isinstance(e, dict):
        return str(e.get("item", e.get("name", ""))), str(e.get("reason", e.get("error", e)))
    if isinstance(e, (list, tuple)) and len(e) == 2:
        return str(e[0]), str(e[1])
    return "", str(e)


def warnings(results: dict) -> List[str]:
    ds = results.get("dataset", {})
    out = [n for n in ds.get("notes") or [] if isinstance(n, str)]
    if "VERY SMALL" in str(ds.get("description", "")):
        out.insert(0, "The dataset is very small: it checks the pipeline, it does not rank encoders.")
    encs = results.get("encoders", {})
    if encs and not any(r.get("bias") for r in encs.values()):
        out.append("No attribute-bias analysis in this run (a dataset with protocol pairs, such as LFW, is used "
                   "for verification only): the Attribute bias section is left out.")
    out += [f"{n}: {r['degenerate']}" for n, r in encs.items() if r.get("degenerate")]
    n_fail = len(failures(results))
    if n_fail:
        out.append(f"{n_fail} item(s) dropped or failed: see Failures.")
    for n, r in results.get("encoders", {}).items():
        counts = {g: len(v) for g, v in (r.get("scores") or {}).items()}
        small = [f"{g} n={k}" for g, k in counts.items() if k < SMALL_GROUP]
        if small:
            out.append(f"{n}: small bias group(s) ({', '.join(small)}): wide intervals.")
    return out


KEY = (("bias gap [95% CI]", ("bias", "mean_gap"), ("bias", "mean_gap_ci")),
       ("relative gap [95% CI]", ("bias", "relative_gap"), ("bias", "relative_gap_ci")),
       ("bias AUC [95% CI]", ("bias", "auc"), ("bias", "auc_ci")),
       ("verification AUC", ("verification", "auc"), None), ("EER", ("verification", "eer"), None),
       ("TAR@FAR=1e-3", ("verification", "tar_at_far_1e-3"), None),
       ("accuracy ± std", ("verification", "accuracy_mean"), ("verification", "accuracy_std")),
       ("top-1", ("retrieval", "top1"), None))


def summary_section(results: dict) -> str:
    ds = results.get("dataset", {})
    names, note = encoder_order(results)
    encs = results.get("encoders", {})
    idents = sorted({encs[n].get("n_identities") for n in names if encs[n].get("n_identities")})
    facts = [f"<b>Dataset:</b> {html_text(str(ds.get('description', '')))}",
             f"<b>n:</b> {ds.get('n_items', 0)} images, {ds.get('n_faces', 0)} faces"
             + (f", {idents[-1]} identities" if idents else "") + f", {len(ds.get('skipped') or [])} skipped",
             f"<b>Split:</b> {html_text(str(ds.get('split') or '-'))}; seed "
             f"{html_text(str(get_path(results, ('provenance', 'seed'))))}"]
    keys = [k for k in KEY if any(get_path(encs[n], k[1]) is not None for n in names)]
    rows = []
    for n in names:
        cells = [n]
        for _, p, ci in keys:
            v, spread = get_path(encs[n], p), get_path(encs[n], ci) if ci else None
            cells.append(f"{fmt_value(v)} ± {fmt_value(spread)}" if isinstance(spread, float) else with_ci(v, spread))
        rows.append(cells)
    table = html_table(["encoder"] + [k[0] for k in keys], rows, caption=f"Key numbers ({note})") if keys else ""
    sw = results.get("swappers") or {}
    swl = ", ".join(f"{html_text(n)} ({r.get('summary', {}).get('n_swaps', 0)} swaps)" for n, r in sw.items())
    warn = "".join(f"<li>{html_text(w)}</li>" for w in warnings(results))
    return ("<p>" + "<br>".join(facts) + "</p>" + table + (f"<p><b>Swappers:</b> {swl}</p>" if swl else "") +
            (f"<div class='warnbox'><b>Warnings</b><ul>{warn}</ul></div>" if warn else "<p>No warnings.</p>"))


def failures_section(results: dict) -> str:
    rows = failures(results)
    if not rows:
        return "<p>Nothing was dropped.</p>"
    table = html_table(["stage", "item", "reason"], [list(r) for r in rows],
                       caption=f"{len(rows)} dropped or failed item(s), each with its reason")
    if len(rows) > 15:
        return f"<details><summary>{len(rows)} items (click to expand)</summary>{table}</details>"
    return table


def provenance_section(results: dict) -> str:
    prov = html_text(json.dumps(results.get("provenance", {}), indent=1, default=str))
    return (f"<details><summary>package versions, weight sha256, arguments, seed, git commit (click to expand)"
            f"</summary><pre class='wrap'>{prov}</pre></details>")

