"""Parity of ``dlib.resnet_v1_torch`` (PyTorch port) with dlib's own face descriptor, on real faces.

For every image in ``../shared/data/faces`` (MANIFEST.csv): dlib's HOG detector (upsample 1),
the largest face, dlib's 5-point shape predictor, ``dlib.get_face_chip(size=150, padding=0.25)``;
then dlib's ``compute_face_descriptor(chip)`` against the torch port's raw (not normalised)
embedding of the same chip. Reports the worst max-abs difference and the worst cosine and exits
non-zero when they miss the targets (max abs diff < 1e-3, cosine > 0.9999).

    .venv/bin/python -m idbench.bench.dlib_torch_parity [--faces DIR] [--limit N] [--device cpu|cuda]

Images where the detector finds nothing still get compared, on a chip cut from a centred box
(the network, not the detector, is under test); they are counted in the report.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]  # the checkout (editable install)
DEFAULT_FACES = REPO.parent / "shared" / "data" / "faces"
MAX_ABS_TARGET = 1e-3
COSINE_TARGET = 0.9999


def dlib_models_dir() -> Path:
    from idbench.weights import package_dir

    d = package_dir("face_recognition_models")
    if d is None:
        raise SystemExit("face_recognition_models is not installed (pip install face-recognition-models)")
    return d / "models"


def manifest_paths(faces: Path, limit: Optional[int] = None) -> List[Path]:
    """Images listed in MANIFEST.csv; with ``limit``, an evenly spread subset."""
    with open(faces / "MANIFEST.csv") as f:
        paths = [faces / row["path"] for row in csv.DictReader(f)]
    if limit is not None and limit < len(paths):
        idx = np.linspace(0, len(paths) - 1, limit).round().astype(int)
        paths = [paths[i] for i in idx]
    return paths


def dlib_chips(paths: List[Path]) -> Tuple[np.ndarray, int]:
    """150x150 RGB dlib chips (largest HOG face, 5 points); returns (chips, number of fallback boxes)."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_models_dir() / "shape_predictor_5_face_landmarks.dat"))
    chips, fallback = [], 0
    for p in paths:
        img = dlib.load_rgb_image(str(p))
        dets = detector(img, 1)
        if len(dets):
            box = max(dets, key=lambda r: r.width() * r.height())
        else:
            fallback += 1
            h, w = img.shape[:2]
            s = min(h, w) // 2
            box = dlib.rectangle((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2)
        shape = predictor(img, box)
        chips.append(dlib.get_face_chip(img, shape, size=150, padding=0.25))
    return np.stack(chips), fallback


def dlib_descriptors(chips: np.ndarray) -> np.ndarray:
    """dlib's own descriptors, one ``compute_face_descriptor(chip)`` call per chip (float64)."""
    import dlib

    from idbench.encoders.dlib_torch import DLIB_RESNET_DAT
    from idbench.weights import resolve_weights

    net = dlib.face_recognition_model_v1(str(resolve_weights(DLIB_RESNET_DAT)))
    return np.array([np.array(net.compute_face_descriptor(np.ascontiguousarray(c))) for c in chips])


def torch_descriptors(chips: np.ndarray, device: str = "cpu") -> np.ndarray:
    from idbench.encoders import create_encoder

    enc = create_encoder("dlib.resnet_v1_torch", device=device)
    return enc.embed(chips, normalise=False).astype(np.float64)


def compare(ours: np.ndarray, ref: np.ndarray) -> dict:
    max_abs = np.abs(ours - ref).max(axis=1)
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    return dict(
        faces=int(len(ref)),
        worst_max_abs_diff=float(max_abs.max()),
        mean_max_abs_diff=float(max_abs.mean()),
        worst_cosine=float(cos.min()),
        worst_face=int(max_abs.argmax()),
        ref_norm_mean=float(np.linalg.norm(ref, axis=1).mean()),
    )


def passes(report: dict) -> bool:
    return report["worst_max_abs_diff"] < MAX_ABS_TARGET and report["worst_cosine"] > COSINE_TARGET


def main(argv: Optional[List[str]] = None) -> int:
    from idbench.bench.cli.options import Device, add_argument  # bench's --device

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces", type=Path, default=DEFAULT_FACES, help="folder with MANIFEST.csv")
    ap.add_argument("--limit", type=int, default=None, help="an evenly spread subset of this many images")
    add_argument(ap, Device, default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = ap.parse_args(argv)

    if not (args.faces / "MANIFEST.csv").is_file():
        print(f"no MANIFEST.csv in {args.faces}; nothing to compare", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    paths = manifest_paths(args.faces, args.limit)
    t0 = time.perf_counter()
    chips, fallback = dlib_chips(paths)
    t1 = time.perf_counter()
    ref = dlib_descriptors(chips)
    t2 = time.perf_counter()
    ours = torch_descriptors(chips, args.device)
    t3 = time.perf_counter()

    report = compare(ours, ref)
    report.update(images=len(paths), detector_fallbacks=fallback, worst_path=str(paths[report["worst_face"]]),
                  device=args.device, seconds=dict(chips=round(t1 - t0, 1), dlib=round(t2 - t1, 1),
                                                   torch=round(t3 - t2, 1)))
    report["pass"] = passes(report)
    print(f"faces compared:        {report['faces']} ({fallback} without a HOG detection, centred box used)")
    print(f"worst max |diff|:      {report['worst_max_abs_diff']:.3e}  (target < {MAX_ABS_TARGET:g}; "
          f"mean over faces {report['mean_max_abs_diff']:.3e}; worst {report['worst_path']})")
    print(f"worst cosine:          {report['worst_cosine']:.9f}  (1 - cos = {1 - report['worst_cosine']:.2e}; "
          f"target > {COSINE_TARGET})")
    print(f"mean |dlib descriptor|: {report['ref_norm_mean']:.4f}")
    print(f"time: chips {report['seconds']['chips']} s, dlib {report['seconds']['dlib']} s, "
          f"torch ({args.device}) {report['seconds']['torch']} s")
    print("PASS" if report["pass"] else "FAIL")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
