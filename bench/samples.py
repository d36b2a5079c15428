"""Per-sample data of a run in ``samples.npz`` beside ``results.json``, which keeps the summaries.

A run's results dict holds per-sample lists (every bias score, every verification pair's score and label,
every swap's numbers); at 1M faces they would make ``results.json`` hundreds of MB. :func:`split_samples`
moves each of them into one array of ``samples.npz`` (numbers, strings, or rows of numbers with NaN rows
for ``None``) and leaves in ``results.json`` a ``samples`` manifest: the file and, per array, the key path
it came from. :func:`load_results` puts them back, so readers see the dict the run produced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

SAMPLES_FILE = "samples.npz"
# where per-sample lists live ("*": any key at that level)
PER_SAMPLE = (("encoders", "*", "scores", "*"), ("encoders", "*", "verification", "pair_scores"),
              ("encoders", "*", "verification", "pair_labels"), ("swappers", "*", "per_sample", "*"))


def _matches(results: dict, pattern: Tuple[str, ...], prefix: Tuple[str, ...] = ()) -> List[Tuple[str, ...]]:
    if not pattern:
        return [prefix]
    if not isinstance(results, dict):
        return []
    keys = list(results) if pattern[0] == "*" else [pattern[0]] if pattern[0] in results else []
    return [p for k in keys for p in _matches(results[k], pattern[1:], prefix + (k,))]


def _to_array(v: list) -> Tuple[np.ndarray, str]:
    """(array, kind): ``num`` (None -> NaN), ``str``, or ``rows`` (lists of numbers, None -> a NaN row)."""
    if any(isinstance(x, str) for x in v):
        return np.array([str(x) for x in v]), "str"
    if any(isinstance(x, (list, tuple)) for x in v):
        width = max(len(x) for x in v if x is not None)
        return np.array([x if x is not None else [np.nan] * width for x in v], np.float64), "rows"
    if all(isinstance(x, (bool, int, np.integer)) for x in v):
        return np.asarray(v, np.int64), "num"
    return np.array([np.nan if x is None else x for x in v], np.float64), "num"


def _to_list(a: np.ndarray, kind: str) -> list:
    if kind == "rows":
        return [None if np.isnan(r).all() else r.tolist() for r in a]
    out = a.tolist()
    if a.dtype.kind == "f":
        out = [None if x != x else x for x in out]  # NaN -> None, as results.json stores it
    return out


def split_samples(results: dict) -> Tuple[dict, Dict[str, np.ndarray]]:
    """(results with the per-sample lists replaced by a ``samples`` manifest, the arrays by npz key).
    The input is not modified (the dicts on the way to a moved list are copied)."""
    out = dict(results)
    arrays: Dict[str, np.ndarray] = {}
    entries = []
    for pattern in PER_SAMPLE:
        for path in _matches(results, pattern):
            node = out
            for k in path[:-1]:
                node[k] = dict(node[k])
                node = node[k]
            v = node[path[-1]]
            if not isinstance(v, (list, tuple, np.ndarray)):
                continue
            key = f"a{len(arrays)}"
            arrays[key], kind = _to_array(list(v.tolist() if isinstance(v, np.ndarray) else v))
            entries.append({"path": list(path), "key": key, "kind": kind, "n": len(v)})
            del node[path[-1]]
    if entries:
        out["samples"] = {"file": SAMPLES_FILE, "entries": entries}
    return out, arrays


def write_samples(results: dict, out_dir: Path) -> dict:
    """Write ``samples.npz`` (compressed) into ``out_dir``; return the results to store as results.json."""
    import io

    from idbench.atomic import atomic_write

    summary, arrays = split_samples(results)
    path = Path(out_dir) / SAMPLES_FILE
    if arrays:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write(path, buf.getvalue())  # never a half-written samples.npz next to a good results.json
    elif path.exists():
        path.unlink()  # a stale file of an earlier run in the same folder
    return summary


def attach_samples(results: dict, run_dir: Path) -> dict:
    """``results`` (as read from ``run_dir``/results.json) with the lists of its ``samples`` manifest restored;
    a missing or unreadable samples file leaves them out (the report says so)."""
    man = results.get("samples")
    if not man or not isinstance(man, dict):
        return results
    path = Path(run_dir) / SAMPLES_FILE  # always the run folder's own file: a received results.json names no path
    if not path.is_file():
        return results
    with np.load(path, allow_pickle=False) as z:
        for e in man["entries"]:
            node = results
            for k in e["path"][:-1]:
                node = node.setdefault(k, {})
            node[e["path"][-1]] = _to_list(z[e["key"]], e["kind"])
    return results


def load_results(run_dir: Path) -> dict:
    """A run folder's results.json (checked: :func:`idbench.bench.run_folder.read_results`) with its per-sample
    data (``samples.npz``) put back in place."""
    from .run_folder import read_results

    return read_results(run_dir)
