"""A run folder is self-contained and safe to receive.

``results.json`` carries a schema name and version (:func:`stamp`) and names the files the report embeds
(saliency maps and overlays, decomposition images) by paths relative to the run folder
(:func:`relative_paths`). :func:`read_results` reads a received ``results.json`` with one-line errors
(missing, truncated, foreign, newer version, wrong types); :func:`run_file` resolves a named file only inside
its run folder (an absolute path, ``../`` or a symlink out of it is refused), so ``bench report`` never embeds
a file from elsewhere. :func:`check_mergeable` refuses to mix runs of different datasets or protocols and
:func:`unique_labels` keeps runs whose folders share a name apart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from idbench.errors import InputError

SCHEMA = "idbench.results"
SCHEMA_VERSION = 3  # 2: schema stamp, paths relative to the run folder; 3: schema.steps (a version per analysis)
# run settings that change what the numbers mean: runs differing in one are not ranked in one table
PROTOCOL_KEYS = ("detector", "multi_face", "min_face", "k_partners", "split", "compression", "frames")


def stamp(results: dict) -> dict:
    """Name the schema and version of ``results`` and the layout version of each analysis step's result
    (``schema.steps``; a version already there is kept: the fragments were written by that layout). A file without
    ``steps`` (schema version 2 or older) has every step's layout 1."""
    from .steps import step_versions

    old = (results.get("schema") or {}).get("steps") if isinstance(results.get("schema"), dict) else None
    results["schema"] = {"name": SCHEMA, "version": SCHEMA_VERSION, "steps": {**step_versions(), **(old or {})}}
    return results


def _check_step_versions(f: Path, steps: object) -> None:
    """One-line :class:`InputError` when a step's result layout is newer than this idbench's step reads."""
    from .steps import STEPS

    if steps is None:
        return
    if not isinstance(steps, dict) or not all(isinstance(v, int) for v in steps.values()):
        raise InputError(f"{f}: schema.steps is {steps!r}, expected step name -> version")
    for name, v in steps.items():
        if name in STEPS and v > STEPS.spec(name).version:
            raise InputError(f"{f}: analysis '{name}' has result version {v}, this idbench reads up to "
                             f"{STEPS.spec(name).version}; update idbench")


def _file_slots(results: dict) -> Iterator[Tuple[Callable[[], str], Callable[[str], None]]]:
    """(get, set) of every file path results.json names (saliency maps/overlays, decomposition images)."""
    for enc in (results.get("encoders") or {}).values():
        sal = enc.get("saliency") if isinstance(enc, dict) else None
        for key in ("maps", "overlays"):
            paths = sal.get(key) if isinstance(sal, dict) else None
            for i in range(len(paths) if isinstance(paths, list) else 0):
                yield (lambda p=paths, i=i: p[i]), (lambda v, p=paths, i=i: p.__setitem__(i, v))
    dec = results.get("decomposition")
    for key in ("example_image", "regions_image"):
        if isinstance(dec, dict) and isinstance(dec.get(key), str):
            yield (lambda k=key: dec[k]), (lambda v, k=key: dec.__setitem__(k, v))


def run_file(run_dir: os.PathLike, rel: object) -> Optional[Path]:
    """``run_dir/rel`` if it is a file inside ``run_dir`` (symlinks resolved); None for anything else."""
    if not isinstance(rel, str) or not rel or "\x00" in rel or os.path.isabs(rel):
        return None
    root = Path(run_dir).resolve()
    try:
        f = (root / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return f if f.is_relative_to(root) and f.is_file() else None


def relative_paths(results: dict, run_dir: os.PathLike) -> dict:
    """Absolute paths inside ``run_dir`` -> relative to it (a moved or received run keeps its maps)."""
    root = Path(run_dir).resolve()
    for get, put in _file_slots(results):
        p = get()
        if isinstance(p, str) and os.path.isabs(p):
            try:
                put(Path(p).resolve().relative_to(root).as_posix())
            except ValueError:
                pass  # outside the run folder: check_run_files refuses it when the report is rebuilt
    return results


def check_run_files(results: dict, run_dir: os.PathLike) -> None:
    """One-line :class:`InputError` if results.json names a file outside ``run_dir`` (absolute, ``../``)."""
    for get, _ in _file_slots(results):
        p = get()
        if not isinstance(p, str):
            raise InputError(f"{Path(run_dir) / 'results.json'}: a file entry is {type(p).__name__}, not a path")
        inside = not os.path.isabs(p) and ".." not in Path(p).parts and "\x00" not in p
        if inside and (Path(run_dir) / p).exists():
            inside = run_file(run_dir, p) is not None  # a symlink out of the run folder
        if not inside:
            raise InputError(f"{Path(run_dir) / 'results.json'} names {p!r}, outside its run folder: refused "
                             f"(a report embeds only files inside the runs it is given)")


def read_results(run_dir: os.PathLike) -> dict:
    """A run folder's results.json, checked: one-line :class:`InputError` for anything but a readable
    idbench results file of this or an older schema version."""
    f = Path(run_dir) / "results.json"
    if not f.is_file():
        raise InputError(f"{f} not found (not an idbench run folder)")
    try:
        r = json.loads(f.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{f}: not UTF-8 text (not an idbench results.json)") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{f}: truncated or not JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(r, dict):
        raise InputError(f"{f}: holds a JSON {type(r).__name__}, not an idbench results object")
    schema = r.get("schema")
    if schema is not None:
        if not isinstance(schema, dict) or schema.get("name") != SCHEMA:
            raise InputError(f"{f}: foreign file (schema {schema!r}, expected {SCHEMA!r})")
        v = schema.get("version")
        if not isinstance(v, int) or v > SCHEMA_VERSION:
            raise InputError(f"{f}: schema version {v!r}, this idbench reads up to {SCHEMA_VERSION}; update idbench")
        _check_step_versions(f, schema.get("steps"))
    elif "encoders" not in r and "swappers" not in r:  # written before the schema stamp: it has one of them
        raise InputError(f"{f}: not an idbench results.json (no schema, encoders or swappers)")
    for key, kind in (("encoders", dict), ("swappers", dict), ("dataset", dict), ("failures", list),
                      ("provenance", dict)):
        if r.get(key) is not None and not isinstance(r[key], kind):
            raise InputError(f"{f}: '{key}' is a {type(r[key]).__name__}, expected a {kind.__name__}")
    for kind in ("encoders", "swappers"):
        for n, v in (r.get(kind) or {}).items():
            if not isinstance(v, dict):
                raise InputError(f"{f}: {kind} entry {n!r} is a {type(v).__name__}, expected an object")
    check_run_files(r, run_dir)
    from .samples import attach_samples

    return attach_samples(r, Path(run_dir))  # the per-sample arrays of samples.npz (no pickles) back in place


def protocol(results: dict) -> Dict[str, object]:
    """What must match for two runs' numbers to share a table: the dataset and the run settings."""
    ds = results.get("dataset") or {}
    args = (results.get("provenance") or {}).get("arguments") or {}
    out = {"dataset": ds.get("name"), "split": ds.get("split"), "n_items": ds.get("n_items")}
    out.update({k: args.get(k) for k in PROTOCOL_KEYS if k in args})
    return out


def check_mergeable(runs: Sequence[Tuple[str, dict]]) -> None:
    """One-line :class:`InputError` when runs used different datasets or protocols."""
    first_label, first = runs[0][0], protocol(runs[0][1])
    for label, r in runs[1:]:
        p = protocol(r)
        diff = [k for k in first if k in p and first[k] != p[k]]
        if diff:
            k = diff[0]
            raise InputError(f"runs {first_label} and {label} differ in {k} ({first[k]!r} vs {p[k]!r}): their "
                             f"numbers are not comparable, so they are not merged into one table; report them "
                             f"separately")


def unique_labels(dirs: Sequence[os.PathLike]) -> List[str]:
    """A short label per run folder: its name, with as many parent folders as needed to tell different
    folders apart (``a/x``, ``b/x``); the same folder given twice keeps one label."""
    full = [Path(os.path.abspath(d)).parts for d in dirs]
    n_distinct = len(set(full))
    for k in range(1, max(len(p) for p in full) + 1):
        labels = ["/".join(p[-k:]) for p in full]
        if len(set(labels)) == n_distinct:
            return labels
    return ["/".join(p) for p in full]


def unique_key(name: str, label: str, taken) -> str:
    """``name``, else ``label/name``, else ``label#k/name``: no run's entry replaces another's."""
    if name not in taken:
        return name
    key, k = f"{label}/{name}", 2
    while key in taken:
        key, k = f"{label}#{k}/{name}", k + 1
    return key


def import_files(results: dict, src: os.PathLike, out: os.PathLike, label: str) -> None:
    """Copy the files a run's results name into ``out/runs/<label>/`` and point the paths there, so a
    merged report's folder is self-contained too."""
    import shutil

    for get, put in _file_slots(results):
        f = run_file(src, get())
        if f is None:
            continue
        rel = Path("runs") / label / Path(get())
        dest = Path(out) / rel
        if dest.resolve() != f:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
        put(rel.as_posix())
