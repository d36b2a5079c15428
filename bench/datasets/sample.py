"""The ``sample`` dataset (the default): faces from photos that installed packages ship, augmented."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from idbench.errors import IdbenchError
from idbench.registry import Option
from idbench.weights import idbench_home

from . import Dataset, DatasetSpec, register_dataset
from .folder import folder_dataset

SAMPLE_IMAGES = (
    ("insightface", "data/images/t1.jpg"),
    ("insightface", "data/images/Tom_Hanks_54745.png"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ("skimage", "data/astronaut.png"),
)


@register_dataset(DatasetSpec(
    "sample", "embedded default: the face photos that installed packages ship (tiny; see report)", options=(
        Option("root", None, "where the sample is written (default: $IDBENCH_HOME/sample)"),
        Option("views", 4, "images per identity (the photo and augmented views)"),
        Option("seed", 0, "seed of the augmentations"))))
def _sample(spec, weights, device, **options) -> Dataset:
    return sample_dataset(**options)


def sample_dataset(root=None, views: int = 4, seed: int = 0) -> Dataset:
    """Faces from images shipped inside installed packages, one identity per face.

    There is one photo per person, so each identity's other "images" are augmented views of the
    same photo (flip, scale, rotation, brightness, JPEG re-encoding). Positive pairs are therefore
    much easier than on real data; the sample exists to run the whole pipeline offline, not to rank
    encoders. A HOG face is kept only when MTCNN, an independent CNN detector, confirms it
    (:func:`confirmed_faces`): HOG alone takes the mission patch on scikit-image's astronaut for a face.
    """
    import cv2

    from idbench.imageio import read_image
    from idbench.weights import package_dir

    out = (Path(root) if root else idbench_home() / "sample") / f"v{SAMPLE_VERSION}-views{views}-seed{seed}"
    marker = out.with_name(out.name + ".json")  # beside the folder: the dataset root holds only faces
    if marker.is_file():
        return _sample_from(out)
    rng = np.random.default_rng(seed)
    n = 0
    for pkg, rel in SAMPLE_IMAGES:
        base = package_dir(pkg)
        if base is None or not (base / rel).is_file():
            continue
        img = read_image(base / rel)
        for k, face in confirmed_faces(img):
            ident = f"{Path(rel).stem}_{k}".lower()
            x1, y1, x2, y2 = face.box
            m = 0.8 * face.width
            h, w = img.shape[:2]
            crop = img[int(max(y1 - m, 0)):int(min(y2 + m, h)), int(max(x1 - m, 0)):int(min(x2 + m, w))]
            d = out / ident
            d.mkdir(parents=True, exist_ok=True)
            for v in range(views):
                view = crop if v == 0 else _augment(crop, rng)
                cv2.imwrite(str(d / f"{v:02d}.jpg"), np.ascontiguousarray(view[:, :, ::-1]),
                            [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96)) if v else 95])
            n += 1
    if n < 3:
        raise IdbenchError("the embedded sample needs insightface, matplotlib and scikit-image installed")
    marker.write_text(json.dumps({"identities": n, "views": views, "seed": seed, "version": SAMPLE_VERSION}))
    return _sample_from(out)


SAMPLE_VERSION = 2  # 2: faces confirmed by MTCNN (v1 held the astronaut's mission patch)


def confirmed_faces(img: np.ndarray, min_width: float = 60, min_iou: float = 0.3):
    """(index, face) of dlib-HOG's faces at least ``min_width`` px wide that MTCNN also finds
    (a box overlapping with IoU >= ``min_iou``); the index is HOG's, so identity names are stable."""
    from idbench.detectors import create_detector

    others = [f.box for f in create_detector("mtcnn").detect(img)]
    return [(k, f) for k, f in enumerate(create_detector("dlib-hog").detect(img))
            if f.width >= min_width and any(_iou(f.box, b) >= min_iou for b in others)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(0.0, float(x2 - x1)) * max(0.0, float(y2 - y1))
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def _sample_from(out: Path) -> Dataset:
    d = folder_dataset(out)
    n_id = len(d.identities)
    d.name = "sample"
    d.description = (f"EMBEDDED SAMPLE, VERY SMALL: {n_id} faces found in photos shipped by installed packages "
                     f"(insightface, matplotlib, scikit-image), {len(d.items)} images; each identity's other images "
                     f"are augmented views of ONE photo, so positives are far easier than on real data. "
                     f"Use it to check the pipeline, not to rank encoders.")
    return d


def _augment(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    h, w = crop.shape[:2]
    ang = rng.uniform(-12, 12)
    s = rng.uniform(0.85, 1.15)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, s)
    m[:, 2] += rng.uniform(-0.05, 0.05, 2) * [w, h]
    out = cv2.warpAffine(crop, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    gain = rng.uniform(0.75, 1.25)
    bias = rng.uniform(-20, 20)
    return np.clip(out.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
