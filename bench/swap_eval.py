"""Swap evaluation: both conventions in use, for every swapper given with ``--swappers``.

For each (target, source) pair and its swapped image:

* FaceShifter line: top-1 ID retrieval of the swap among all dataset faces with an evaluator encoder
  (``--id-encoders``; a hit when the nearest face belongs to the source identity / source video),
  pose error (L2 of yaw/pitch/roll) and expression error (L2) between target and swap;
* BlendFace's: identity cosine distance swap vs source per encoder, expression, pose and gaze L1
  distances target vs swap, and their relative forms (:func:`idbench.analysis.relative_error`:
  the share of swaps closer to the right reference than to the wrong one).

Swappers: ``blend`` (pseudo-swaps), ``ffpp:<Method>`` (FaceForensics++'s own manipulated videos),
``results:DIR`` (any method's outputs: ``<target>_<source>`` images, frame folders or videos, or a
``manifest.csv`` with ``source,target,result`` columns).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from idbench.errors import IdbenchError

ESTIMATOR_DEFAULTS = {"pose": "pose.pnp", "expression": "expression.landmarks", "gaze": "gaze.iris"}


@dataclass
class SwapSample:
    target_row: int  # row (face) of the target in the run's embedding table
    source_label: str  # identity (FF++: video id) of the source
    image: np.ndarray  # swapped image, RGB uint8
    name: str
    source_row: Optional[int] = None  # the source face's row when known (else the source's first face)


def _rows_by_label(labels: np.ndarray) -> Dict[str, np.ndarray]:
    return {l: np.flatnonzero(labels == l) for l in sorted(set(labels.tolist()))}


def _frame_row(rows: np.ndarray, table, frame: Optional[int], frames_of_row) -> int:
    if frame is None or not len(rows):
        return int(rows[0])
    return int(min(rows, key=lambda r: abs((frames_of_row[r] or 0) - frame)))


def iter_blend(cfg, table, labels) -> Iterator[SwapSample]:
    """Pseudo-swaps: each face's inner face onto a seeded random face of another identity."""
    from idbench.swapper.blend import swap_frames

    rng = np.random.default_rng(cfg.seed + 1)
    n = len(labels)
    for t in range(n):
        others = np.flatnonzero(labels != labels[t])
        if not len(others):
            continue
        s = int(rng.choice(others))
        src, tgt = table.images_by_row[s], table.images_by_row[t]
        try:
            res = swap_frames(src.image, table.faces[s], tgt.image, table.faces[t], seed=cfg.seed)
        except Exception as e:
            yield SwapSample(t, str(labels[s]), None, f"error: {e}")
            continue
        yield SwapSample(t, str(labels[s]), res.image, f"{labels[t]}<-{labels[s]}", s)


def iter_ffpp(cfg, method: str, ds, table, labels, frames_of_row) -> Iterator[SwapSample]:
    from idbench.swapper.ffpp import iter_ffpp_method

    rows = _rows_by_label(labels)
    for target, source, frame, image in iter_ffpp_method(ds.root, method, compression=cfg.compression,
                                                         frames=cfg.frames, pairs=getattr(ds, "video_pairs", None)):
        if target not in rows or source not in rows:
            continue
        yield SwapSample(_frame_row(rows[target], table, frame, frames_of_row), source, image,
                         f"{target}_{source}#{frame}", _frame_row(rows[source], table, frame, frames_of_row))


_PAIR = re.compile(r"^(?P<t>[^_/]+)_(?P<s>[^_/]+)$")


def iter_results(cfg, directory: Path, table, labels, frames_of_row) -> Iterator[SwapSample]:
    """Read a method's own outputs (see module docstring)."""
    from idbench.errors import IdbenchError
    from idbench.imageio import IMAGE_EXTS, read_image

    directory = Path(directory)
    if not directory.is_dir():
        raise IdbenchError(f"results folder {directory} does not exist")
    rows = _rows_by_label(labels)
    manifest = directory / "manifest.csv"
    if manifest.is_file():
        path_row = {p: r for r, p in enumerate(table.paths)}
        with open(manifest) as f:
            for rec in csv.DictReader(f):
                t = path_row.get(str(Path(rec["target"]))) if rec.get("target") else None
                s_row = path_row.get(str(Path(rec["source"]))) if rec.get("source") else None
                if t is None or s_row is None:
                    continue
                res = Path(rec["result"])
                res = res if res.is_absolute() else directory / res
                yield SwapSample(t, str(labels[s_row]), read_image(res), res.name, s_row)
        return
    for entry in sorted(directory.iterdir()):
        m = _PAIR.match(entry.stem if entry.is_file() else entry.name)
        if not m or m["t"] not in rows or m["s"] not in rows:
            continue
        if entry.is_dir():
            for f in sorted(entry.iterdir()):
                if f.suffix.lower() in IMAGE_EXTS:
                    fr = int(f.stem) if f.stem.isdigit() else None
                    yield SwapSample(_frame_row(rows[m["t"]], table, fr, frames_of_row), m["s"], read_image(f),
                                     f"{entry.name}/{f.name}")
        elif entry.suffix.lower() in IMAGE_EXTS:
            yield SwapSample(int(rows[m["t"]][0]), m["s"], read_image(entry), entry.name)
        elif entry.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv"):
            from idbench.swapper.ffpp import iter_video_frames

            for fr, img in iter_video_frames(entry, cfg.frames):
                yield SwapSample(_frame_row(rows[m["t"]], table, fr, frames_of_row), m["s"], img,
                                 f"{entry.name}#{fr}")


def _estimators(device: str):
    try:
        from idbench.analysis.estimators import create_estimator
    except ImportError:
        return {}
    out = {}
    for kind, name in ESTIMATOR_DEFAULTS.items():
        try:
            out[kind] = (name, create_estimator(name))
        except Exception:  # an estimator whose model is unavailable is reported as absent
            continue
    return out


def evaluate_swappers(cfg, ds, table, labels, encoders, cache, out_dir) -> dict:
    from tqdm.auto import tqdm

    from idbench import analysis as M
    from idbench.align import align_face
    from idbench.detectors import create_detector

    frames_of_row = []
    frame_of_path = {str(it.path): it.frame for it in ds.items}
    frames_of_row = [frame_of_path.get(p) for p in table.paths]
    id_encs = cfg.id_encoders or list(encoders)[:1]
    for n in id_encs:
        if n not in encoders:
            from idbench.encoders import create_encoder

            encoders = dict(encoders)
            encoders[n] = create_encoder(n, cfg.weights.get(n), cfg.device)
    missing = [n for n in id_encs if n not in table.embeddings]
    if missing:
        from idbench.encoders.pipeline import embed_detected

        extra = embed_detected(table.images, {n: encoders[n] for n in missing}, cfg.detector, cache, cfg.progress)
        for n in missing:
            table.embeddings[n] = extra.embeddings[n]
    estimators = _estimators(cfg.device)
    det = create_detector(cfg.detector, cfg.device)
    results = {}
    for spec in cfg.swappers:
        if spec == "blend":
            it = iter_blend(cfg, table, labels)
        elif spec.startswith("ffpp:"):
            it = iter_ffpp(cfg, spec.split(":", 1)[1], ds, table, labels, frames_of_row)
        elif spec.startswith("results:"):
            it = iter_results(cfg, Path(spec.split(":", 1)[1]), table, labels, frames_of_row)
        else:
            from idbench.errors import UnknownNameError

            raise UnknownNameError("swapper", spec, ["blend", "ffpp:<Method>", "results:<DIR>"])
        emb: Dict[str, list] = {n: [] for n in encoders}
        tgt_rows, src_labels, names, errors = [], [], [], []
        est_t: Dict[str, list] = {k: [] for k in estimators}
        est_s: Dict[str, list] = {k: [] for k in estimators}
        est_src: Dict[str, list] = {k: [] for k in estimators}
        est_fail: Dict[str, List[str]] = {}
        row_memo: Dict[Tuple[str, int], np.ndarray] = {}

        def row_estimate(kind, est, row):
            """Attributes of a dataset face, estimated once per run (targets and sources recur)."""
            if (kind, row) not in row_memo:
                row_memo[(kind, row)] = est.estimate(table.images_by_row[row].image, table.faces[row])
            return row_memo[(kind, row)]
        rows = _rows_by_label(labels)
        for sample in tqdm(it, desc=f"swaps {spec}", disable=not cfg.progress):
            if sample.image is None:
                errors.append(sample.name)
                continue
            faces = det.detect(sample.image)
            face = faces[0] if faces else table.faces[sample.target_row]
            for n, enc in encoders.items():
                crop = align_face(sample.image, face, enc.spec.alignment, enc.spec.input_size[0])
                emb[n].append(enc.embed(crop[None])[0])
            sr = sample.source_row if sample.source_row is not None else int(rows[sample.source_label][0])
            for k, (ename, est) in estimators.items():
                try:  # an estimator that cannot read one face loses that sample only, for that column
                    trio = (est.estimate(sample.image, face),
                            row_estimate(k, est, sample.target_row), row_estimate(k, est, sr))
                except IdbenchError as e:
                    est_fail.setdefault(k, []).append(f"{sample.name}: {e}")
                    trio = (None, None, None)
                est_s[k].append(trio[0])
                est_t[k].append(trio[1])
                est_src[k].append(trio[2])
            tgt_rows.append(sample.target_row)
            src_labels.append(sample.source_label)
            names.append(sample.name)
        if not tgt_rows:
            results[spec] = {"summary": {}, "errors": errors, "n": 0}
            continue
        tgt_rows_a = np.array(tgt_rows)
        src_labels_a = np.array(src_labels)
        summary, directions, per_sample = {}, {}, {"name": names, "target_row": tgt_rows, "source": src_labels}
        for n in encoders:
            e = np.array(emb[n], np.float32)
            E = table.embeddings[n]
            src_mean = np.stack([M_norm(E[rows[s]].mean(0)) for s in src_labels_a])
            d_src = 1 - np.einsum("ij,ij->i", e, src_mean)
            d_tgt = 1 - np.einsum("ij,ij->i", e, E[tgt_rows_a])
            summary[f"id_distance[{n}]"], directions[f"id_distance[{n}]"] = float(d_src.mean()), "lower"
            summary[f"id_relative[{n}]"], directions[f"id_relative[{n}]"] = float(
                M.relative_error(d_src, d_tgt)), "higher"
            per_sample[f"id_distance[{n}]"] = d_src.tolist()
            if n in id_encs:
                r = M.id_retrieval(e, src_labels_a, E, labels, k=1)
                summary[f"id_retrieval_top1[{n}]"], directions[f"id_retrieval_top1[{n}]"] = float(r.accuracy), "higher"
        for k, (ename, _) in estimators.items():
            ok = [i for i in range(len(est_t[k])) if est_t[k][i] is not None]
            if not ok:
                continue
            t = np.array([est_t[k][i] for i in ok], np.float64)
            s = np.array([est_s[k][i] for i in ok], np.float64)
            src_attr = np.array([est_src[k][i] for i in ok], np.float64)
            if k == "pose":
                r = M.pose_error(t, s)
                summary[f"pose_l2[{ename}]"], directions[f"pose_l2[{ename}]"] = float(r.mean_l2), "lower"
                summary[f"pose_l1[{ename}]"], directions[f"pose_l1[{ename}]"] = float(r.mean_l1), "lower"
            elif k == "expression":
                r = M.expression_error(t, s)
                summary[f"expression_l2[{ename}]"], directions[f"expression_l2[{ename}]"] = float(r.mean_l2), "lower"
                summary[f"expression_l1[{ename}]"], directions[f"expression_l1[{ename}]"] = float(r.mean_l1), "lower"
            elif k == "gaze":
                r = M.gaze_error(t, s)
                summary[f"gaze_l1[{ename}]"], directions[f"gaze_l1[{ename}]"] = float(r.mean_l1), "lower"
                summary[f"gaze_angular[{ename}]"], directions[f"gaze_angular[{ename}]"] = float(r.mean_angle), "lower"
            # relative form: is the swap closer to the target's attribute than to the source's?
            if len(src_attr) == len(s):
                d_right = np.abs(s - t).sum(1)
                d_wrong = np.abs(s - src_attr).sum(1)
                summary[f"{k}_relative[{ename}]"], directions[f"{k}_relative[{ename}]"] = float(
                    M.relative_error(d_right, d_wrong)), "higher"
            per_sample[f"{k}_target"] = [None if v is None else np.asarray(v).tolist() for v in est_t[k]]
            per_sample[f"{k}_swapped"] = [None if v is None else np.asarray(v).tolist() for v in est_s[k]]
            summary[f"{k}_n[{ename}]"], directions[f"{k}_n[{ename}]"] = len(ok), ""
        summary["n_swaps"], directions["n_swaps"] = len(tgt_rows), ""
        results[spec] = {"summary": summary, "directions": directions, "per_sample": per_sample, "errors": errors,
                         "estimator_failures": est_fail,
                         "estimators": {k: v[0] for k, v in estimators.items()}, "id_encoders": id_encs}
    return results


def M_norm(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


