"""Writing a run's outputs (``results.json``, leaderboards, ``report.html``) and merging several runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

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
    """``results.json`` and ``leaderboard.csv`` always; ``report.html``, ``leaderboard.md``/``.tex`` per ``formats``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from idbench.bench.samples import write_samples

    # per-sample lists go to samples.npz beside it: results.json keeps the summaries, small at any N
    text = json.dumps(_clean(write_samples(results, out_dir)), indent=1, default=_json_default, allow_nan=False)
    (out_dir / "results.json").write_text(text)
    write_leaderboard(results, out_dir / "leaderboard.csv")
    if "md" in formats:
        (out_dir / "leaderboard.md").write_text(leaderboard_markdown(results))
    if "tex" in formats:
        (out_dir / "leaderboard.tex").write_text(leaderboard_latex(results))
    if "html" in formats:
        write_report(results, out_dir / "report.html", out_dir)


def output_files(out_dir: Path, formats: Sequence[str] = FORMATS) -> list:
    names = {"html": "report.html", "md": "leaderboard.md", "tex": "leaderboard.tex"}
    return [Path(out_dir) / f for f in ["leaderboard.csv", "results.json"] + [names[k] for k in formats]]


def merge_results(dirs: Sequence[Path]) -> dict:
    """Merge results.json of several runs (names get the run folder as prefix when they clash)."""
    from idbench.bench.samples import load_results

    merged: dict = {"encoders": {}, "swappers": {}, "dataset": {"description": "", "notes": [], "skipped": []},
                    "failures": [], "provenance": {"merged_from": []}}
    descs = []
    for d in dirs:
        r = load_results(Path(d))
        for kind in ("encoders", "swappers"):
            for n, v in r.get(kind, {}).items():
                key = n if n not in merged[kind] else f"{Path(d).name}/{n}"
                merged[kind][key] = v
        ds = r.get("dataset", {})
        descs.append(f"{Path(d).name}: {ds.get('description', '')}")
        merged["dataset"]["notes"] += [f"{Path(d).name}: {n}" for n in ds.get("notes") or []]
        merged["dataset"]["skipped"] += ds.get("skipped") or []
        for k in ("n_items", "n_faces"):
            merged["dataset"][k] = merged["dataset"].get(k, 0) + (ds.get(k) or 0)
        merged["failures"] += r.get("failures") or []
        merged["provenance"]["merged_from"].append({"dir": str(d), "provenance": r.get("provenance")})
    merged["dataset"]["description"] = " | ".join(descs)
    return merged
