"""Writing a run's outputs (``results.json``, leaderboards, ``report.html``) and merging several runs."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Optional, Sequence

from idbench.atomic import atomic_write

from .layout import write_report
from .tables import leaderboard_latex, leaderboard_markdown, write_leaderboard

FORMATS = ("html", "md", "tex")


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _clean(o):
    """NaN/inf -> None, so results.json is strict JSON."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_outputs(results: dict, out_dir: Path, formats: Sequence[str] = FORMATS) -> None:
    """``results.json`` and ``leaderboard.csv`` always; ``report.html``, ``leaderboard.md``/``.tex`` per ``formats``.

    Each file is written atomically (idbench.atomic); results.json gets the schema stamp and paths relative to
    ``out_dir`` (idbench.bench.run_folder)."""
    from idbench.bench.run_folder import relative_paths, stamp

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from idbench.bench.samples import write_samples

    results = relative_paths(stamp(copy.deepcopy(results)), out_dir)  # the caller's dict keeps its paths
    # per-sample lists go to samples.npz beside it: results.json keeps the summaries, small at any N
    text = json.dumps(_clean(write_samples(results, out_dir)), indent=1, default=_json_default, allow_nan=False)
    atomic_write(out_dir / "results.json", text)
    write_leaderboard(results, out_dir / "leaderboard.csv")
    if "md" in formats:
        from .published import published_markdown  # "" unless bench report --published

        atomic_write(out_dir / "leaderboard.md", leaderboard_markdown(results) + published_markdown(results))
    if "tex" in formats:
        atomic_write(out_dir / "leaderboard.tex", leaderboard_latex(results))
    if "html" in formats:
        write_report(results, out_dir / "report.html", out_dir)


def output_files(out_dir: Path, formats: Sequence[str] = FORMATS) -> list:
    names = {"html": "report.html", "md": "leaderboard.md", "tex": "leaderboard.tex"}
    return [Path(out_dir) / f for f in ["leaderboard.csv", "results.json"] + [names[k] for k in formats]]


def _same_numbers(kind: str, name: str, a: dict, b: dict) -> bool:
    """Whether two runs' entries of one encoder or swapper give the same leaderboard numbers (a baseline run
    again beside new models): merged, they are one row."""
    from .tables import leaderboard_rows

    rows = [leaderboard_rows({kind: {name: e}})[1][1] for e in (a, b)]
    keys = set(rows[0]) | set(rows[1])
    return all(rows[0].get(k) == rows[1].get(k) or (isinstance(rows[0].get(k), float) and isinstance(
        rows[1].get(k), float) and math.isclose(rows[0][k], rows[1][k], rel_tol=1e-9, abs_tol=1e-12)) for k in keys)


def merge_results(dirs: Sequence[Path], out: Optional[Path] = None) -> dict:
    """Merge results.json of several runs of one dataset and protocol (others are refused with one line);
    names get the run's label as prefix when they clash (runs whose folders share a name stay distinct);
    with ``out``, the files the runs name are copied under ``out/runs/<label>/``."""
    from idbench.bench.run_folder import check_mergeable, import_files, read_results, unique_key, unique_labels

    merged: dict = {"encoders": {}, "swappers": {}, "dataset": {"description": "", "notes": [], "skipped": []},
                    "failures": [], "provenance": {"merged_from": []}}
    labels = unique_labels(dirs)
    runs = [(label, read_results(d)) for label, d in zip(labels, dirs)]
    check_mergeable(runs)
    descs = []
    for d, (label, r) in zip(dirs, runs):
        if out is not None:
            import_files(r, d, out, label)
        for kind in ("encoders", "swappers"):
            for n, v in r.get(kind, {}).items():
                if n in merged[kind] and _same_numbers(kind, n, merged[kind][n], v):  # one row per (name, dataset)
                    merged["dataset"]["notes"].append(f"{n}: also in run {label} with the same numbers (one row)")
                    continue
                key = unique_key(n, label, merged[kind])
                if key != n:
                    merged["dataset"]["notes"].append(f"{n}: run {label} gives other numbers (another model, seed "
                                                      f"or weights?): shown as its own row {key}")
                merged[kind][key] = v
        ds = r.get("dataset") or {}
        descs.append(f"{label}: {ds.get('description', '')}")
        merged["dataset"]["notes"] += [f"{label}: {n}" for n in ds.get("notes") or []]
        merged["dataset"]["skipped"] += ds.get("skipped") or []
        for k in ("n_items", "n_faces"):
            merged["dataset"][k] = merged["dataset"].get(k, 0) + (ds.get(k) or 0)
        for k in ("name", "split"):
            merged["dataset"].setdefault(k, ds.get(k))
        merged["failures"] += r.get("failures") or []
        merged["provenance"]["merged_from"].append({"dir": label, "provenance": r.get("provenance")})
    merged["dataset"]["description"] = " | ".join(descs)
    return merged
