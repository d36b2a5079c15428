"""68 landmarks of already aligned crops, computed once, in parallel, resumable, cached next to the data.

An ArcFace crop puts the five points on the template (:func:`idbench.align.arcface_template`), so no detection
is needed: the ``aligned`` detector (:class:`idbench.detectors.AlignedCrop`) runs dlib's 68-point predictor in the
box dlib's HOG detector would give for the template's points, as every detector fits its landmarks.

Cache (``SOURCE.idbench/`` beside ``train.rec`` or the crop folder)::

    landmarks68.npy          N x 68 x 2 float32, crop coordinates, the source's row order (memory-mapped)
    landmarks68.done.npy     one flag per chunk of CHUNK rows: an interrupted run continues where it stopped
    landmarks68.json         provenance: the source's fingerprint, row count, method, versions
    partners_KEY.npy / .json the nearest-landmark partner table of one candidate draw (rows, k, seed), int64

The cache is keyed by the source's content fingerprint (the ``.idx`` file / the folder listing): a different
source refuses it, and it is recomputed.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from idbench.atomic import atomic_file
from idbench.errors import InputError

CHUNK = 1024
METHOD = "detector aligned: dlib shape_predictor_68 in dlib_box_from_landmarks5(arcface_template(size))"
LANDMARKS_VERSION = 1


def _chunk_landmarks(source, span: Tuple[int, int]) -> np.ndarray:
    from idbench.detectors import create_detector

    det = create_detector("aligned")
    out = np.zeros((span[1] - span[0], 68, 2), np.float32)
    for r, i in enumerate(range(*span)):
        out[r] = det.detect(source.image(i))[0].landmarks68
    return out


def _paths(source) -> Tuple[Path, Path, Path]:
    d = source.cache_path()
    return d / "landmarks68.npy", d / "landmarks68.done.npy", d / "landmarks68.json"


def _provenance(source) -> dict:
    import dlib

    return {"version": LANDMARKS_VERSION, "fingerprint": source.fingerprint(), "rows": len(source),
            "method": METHOD, "dlib": dlib.__version__, "chunk": CHUNK}


def precompute_landmarks(source, workers: Optional[int] = None, progress: bool = False,
                         stop_after: Optional[int] = None) -> Path:
    """Compute the missing chunks of ``source``'s landmarks cache (see the module docstring); returns its path.

    ``stop_after``: compute at most this many chunks now (a test of resumption; an interrupted run is the same).
    """
    from tqdm.auto import tqdm

    from idbench.parallel import ordered_map

    lm_path, done_path, meta_path = _paths(source)
    lm_path.parent.mkdir(parents=True, exist_ok=True)
    prov = _provenance(source)
    n_chunks = -(-len(source) // CHUNK)
    fresh = not (meta_path.is_file() and json.loads(meta_path.read_text()) == prov and lm_path.is_file()
                 and done_path.is_file())
    if fresh:
        np.lib.format.open_memmap(lm_path, "w+", np.float32, (len(source), 68, 2)).flush()
        np.save(done_path, np.zeros(n_chunks, bool))
        meta_path.write_text(json.dumps(prov, indent=2))
    done = np.load(done_path)
    todo = [c for c in range(n_chunks) if not done[c]][:stop_after]
    spans = [(c * CHUNK, min(len(source), (c + 1) * CHUNK)) for c in todo]
    lm = np.load(lm_path, mmap_mode="r+")
    results = ordered_map(partial(_chunk_landmarks, source), spans, workers, min_items=2)
    for c, span, pts in tqdm(zip(todo, spans, results), total=len(todo), desc="landmarks", unit="chunk",
                             disable=not progress):
        lm[span[0]:span[1]] = pts
        lm.flush()
        done[c] = True
        with atomic_file(done_path) as tmp:  # a chunk counts once its rows are on disk
            np.save(tmp, done)
    return lm_path


def load_landmarks(source, compute: bool = True) -> np.ndarray:
    """The source's landmarks, memory-mapped (computed first where missing or stale, when ``compute``)."""
    lm_path, done_path, meta_path = _paths(source)
    ok = (meta_path.is_file() and json.loads(meta_path.read_text()) == _provenance(source) and done_path.is_file()
          and bool(np.load(done_path).all()))
    if not ok:
        if not compute:
            raise InputError(f"no complete landmarks cache for this source in {lm_path.parent}; run "
                             f"python -m idbench.bench.training.landmarks DATA")
        precompute_landmarks(source)
    return np.load(lm_path, mmap_mode="r")


def partner_table(source, k: int, seed: int) -> np.ndarray:
    """The nearest-landmark partner of every row of ``source`` (:func:`.data.nearest_partners`, candidates drawn
    as for prepared folders), computed once per (rows, k, seed) and memory-mapped from the cache afterwards."""
    import hashlib

    from .data import nearest_partners

    rows = getattr(source, "rows", None)
    key = hashlib.sha256(f"{source.fingerprint()}|{k}|{seed}".encode()
                         + (np.asarray(rows, np.int64).tobytes() if rows is not None else b"all")).hexdigest()[:20]
    path = source.cache_path() / f"partners_{key}.npy"
    if not path.is_file():
        table = nearest_partners(source.landmarks, source.identities, k, seed)
        with atomic_file(path) as tmp:
            np.save(tmp, table)
        path.with_suffix(".json").write_text(json.dumps(
            {"fingerprint": source.fingerprint(), "rows": len(source), "subset": rows is not None, "k": k,
             "seed": seed, "method": "idbench.swapper.blend.choose_partners on landmarks68.npy"}, indent=2))
    return np.load(path, mmap_mode="r")


def _main(argv=None) -> int:
    import argparse

    from .sources import open_source

    ap = argparse.ArgumentParser(prog="python -m idbench.bench.training.landmarks",
                                 description="precompute 68 landmarks of an aligned-crop source (resumable)")
    ap.add_argument("data", help="rec:DIR / aligned:DIR / a folder holding train.rec or aligned crops")
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args(argv)
    try:
        src = open_source(a.data, "arcface112")
        if src.kind == "prepared":
            raise InputError("a bench prepare folder has its landmarks already (landmarks.npy)")
        path = precompute_landmarks(src, a.workers, progress=True)
    except InputError as e:
        import sys

        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(src)} rows -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
