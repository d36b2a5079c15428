"""``bench prepare``: detect once, write aligned crops, their 68 landmarks and an index for training.

Input: a folder with one sub-folder per identity (images at any depth below it). Each image is
read and detected once (largest face; detections come from the content cache of
:func:`idbench.pipeline.detect_file` when present), then cut for every requested alignment:

* ``arcface112``: insightface's 5-point similarity warp to 112x112 (:func:`idbench.align.arcface_crop`);
* ``dlib150``: dlib's 150x150 face chip (padding 0.25, from dlib's 5 points; ``dlib.get_face_chip``).

The 68 iBUG landmarks are mapped through the same transform into crop coordinates (what the
blending augmentation and the nearest-landmark partner search use). Output layout::

    DATA_DIR/prepare.json                  what was run, counts, skipped images
    DATA_DIR/identities.txt                every identity with at least one face (label = line number)
    DATA_DIR/train_identities.txt          with --split-identities: the training identities
    DATA_DIR/heldout_identities.txt        ... and the held-out ones
    DATA_DIR/<alignment>/index.csv         crop,identity,label,source,face_score (crop relative to the folder)
    DATA_DIR/<alignment>/landmarks.npy     N x 68 x 2 float32, crop coordinates, same row order as index.csv
    DATA_DIR/<alignment>/crops/<identity>/<image>.png   RGBA: alpha 255 where the crop lies inside the photo

The alpha channel is the crop's validity map (0 on the black border where the warp read outside the
photo); the blending augmentation blends nothing there.

Rows are identical (same images, same order) across alignments: an image is kept only if every
alignment succeeded. Labels are integers over the sorted identity names of the whole folder; the
trainer re-numbers them over the identities it trains on.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from idbench.errors import InputError  # a ValueError: bad arguments are one line in bench prepare

PREPARE_VERSION = 1
ALIGNMENT_SIZES = {"arcface112": 112, "dlib150": 150}
INDEX_COLUMNS = ("crop", "identity", "label", "source", "face_score")


# --- geometry -----------------------------------------------------------------------------------

def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map N x 2 points through a 2 x 3 affine matrix."""
    p = np.asarray(points, np.float64)
    return (p @ np.asarray(m, np.float64)[:, :2].T + np.asarray(m, np.float64)[:, 2]).astype(np.float32)


MAX_LANDMARK_DISAGREEMENT = 0.25  # of the inter-ocular distance


def landmark_disagreement(landmarks68: np.ndarray, landmarks5: np.ndarray) -> float:
    """Mean distance between the 5 points implied by the 68 landmarks and the detector's 5 points,
    relative to the inter-ocular distance."""
    from idbench.faces import landmarks68_to_5

    lm5 = np.asarray(landmarks5, np.float64)
    d = np.linalg.norm(landmarks68_to_5(landmarks68).astype(np.float64) - lm5, axis=1).mean()
    return float(d / max(np.linalg.norm(lm5[1] - lm5[0]), 1e-6))


def consistent_landmarks(image: np.ndarray, face) -> None:
    """Make ``face.landmarks68`` / ``face.dlib5`` agree with ``face.landmarks5`` (in place) or raise ValueError.

    dlib's shape predictors follow the box they are given; a box from another detector (MTCNN boxes
    may run far outside a tight crop) can give landmarks unrelated to the face. Then both are
    re-fitted in the box where dlib's HOG detector would have put it
    (:func:`idbench.detectors.dlib_box_from_landmarks5`, the box detection itself uses).
    """
    from idbench.detectors import dlib_box_from_landmarks5
    from idbench.landmarks import dlib5, landmarks68

    if face.landmarks68 is None:
        face.landmarks68 = landmarks68(image, face.box)
    if landmark_disagreement(face.landmarks68, face.landmarks5) <= MAX_LANDMARK_DISAGREEMENT:
        return
    box = dlib_box_from_landmarks5(face.landmarks5)
    lm68 = landmarks68(image, box)
    err = landmark_disagreement(lm68, face.landmarks5)
    if err > MAX_LANDMARK_DISAGREEMENT:
        raise ValueError(f"68 landmarks disagree with the detector's 5 points ({err:.2f} x inter-ocular distance)")
    face.landmarks68 = lm68
    face.dlib5 = dlib5(image, box)


def crop_with_landmarks(image: np.ndarray, face, alignment: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crop, 68 landmarks in crop coordinates, validity map) of ``face`` for ``alignment``.

    The validity map (uint8 0/1, crop size) is 1 where the crop was read from inside the photo.
    """
    import cv2

    from idbench.align import arcface_crop, arcface_matrix, dlib_chip, dlib_chip_matrix
    from idbench.landmarks import dlib5

    consistent_landmarks(image, face)
    size = ALIGNMENT_SIZES.get(alignment)
    if alignment == "arcface112":
        m = arcface_matrix(face.landmarks5, size)
        crop = arcface_crop(image, face.landmarks5, size)
    elif alignment == "dlib150":
        if face.dlib5 is None:
            face.dlib5 = dlib5(image, face.box)
        m = dlib_chip_matrix(image, face, size)
        crop = dlib_chip(image, face, size)
    else:
        raise InputError(f"bench prepare supports alignments {sorted(ALIGNMENT_SIZES)}, got {alignment!r}")
    ones = np.ones(image.shape[:2], np.float32)
    valid = cv2.warpAffine(ones, np.asarray(m, np.float64), (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)
    return crop, apply_affine(m, face.landmarks68), (valid > 0.999).astype(np.uint8)


# --- identity split -----------------------------------------------------------------------------

def split_identities(identities: Sequence[str], heldout_fraction: float, seed: int = 0) -> Tuple[List[str], List[str]]:
    """Seeded split of identity names into (train, held-out); both lists sorted.

    ``heldout_fraction`` of the identities (rounded, at least one when the fraction is > 0 and
    there are at least two identities) are held out.
    """
    if not 0.0 <= heldout_fraction < 1.0:
        raise InputError(f"--split-identities takes a held-out fraction in [0, 1), got {heldout_fraction}")
    names = sorted(set(identities))
    n_held = int(round(heldout_fraction * len(names)))
    if heldout_fraction > 0 and len(names) >= 2:
        n_held = min(max(n_held, 1), len(names) - 1)
    perm = np.random.default_rng(seed).permutation(len(names))
    held = sorted(names[i] for i in perm[:n_held])
    train = sorted(n for n in names if n not in set(held))
    return train, held


def read_names(path: os.PathLike) -> List[str]:
    """Identity names, one a line, as :func:`write_names` escapes them (TAB/newline in a name survive)."""
    from idbench.escape import nfc, unfield

    text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    return [nfc(unfield(ln.strip())) for ln in text.split("\n") if ln.strip()]


def write_names(path: Path, names: Sequence[str]) -> None:
    from idbench.atomic import atomic_write
    from idbench.escape import field

    atomic_write(path, "".join(f"{field(n)}\n" for n in names))


# --- prepared data ------------------------------------------------------------------------------

@dataclass
class PreparedSet:
    """The rows of one alignment of a prepared folder."""

    root: Path  # DATA_DIR/<alignment>
    alignment: str
    crops: List[str]  # relative to root
    identities: List[str]
    labels: np.ndarray  # global integer labels (identities.txt order)
    sources: List[str]
    landmarks: np.ndarray  # N x 68 x 2, crop coordinates

    def __len__(self) -> int:
        return len(self.crops)

    def crop_path(self, i: int) -> Path:
        return self.root / self.crops[i]

    def read(self, i: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """(RGB uint8 crop ``i``, its float32 0/1 validity map or None when the file has no alpha)."""
        import cv2

        img = cv2.imread(str(self.crop_path(i)), cv2.IMREAD_UNCHANGED)
        if img is None or img.ndim != 3 or img.shape[2] not in (3, 4):
            from idbench.errors import ImageReadError

            raise ImageReadError(f"{self.crop_path(i)}: cannot read the prepared crop (re-run bench prepare)")
        valid = (img[:, :, 3] > 127).astype(np.float32) if img.shape[2] == 4 else None
        return np.ascontiguousarray(img[:, :, 2::-1]), valid

    def image(self, i: int) -> np.ndarray:
        """RGB uint8 crop ``i``."""
        return self.read(i)[0]

    def images(self, rows: Optional[Sequence[int]] = None) -> np.ndarray:
        rows = range(len(self)) if rows is None else rows
        return np.stack([self.image(i) for i in rows]) if len(rows) else np.zeros((0, 1, 1, 3), np.uint8)

    def subset(self, identities: Sequence[str]) -> "PreparedSet":
        keep = set(identities)
        rows = [i for i, n in enumerate(self.identities) if n in keep]
        return PreparedSet(self.root, self.alignment, [self.crops[i] for i in rows],
                           [self.identities[i] for i in rows], self.labels[rows], [self.sources[i] for i in rows],
                           self.landmarks[rows])


def load_prepared(data_dir: os.PathLike, alignment: str, identities: Optional[Sequence[str]] = None) -> PreparedSet:
    """Read ``DATA_DIR/<alignment>/index.csv`` and ``landmarks.npy`` (optionally only some identities)."""
    from idbench.errors import InputError

    root = Path(data_dir) / alignment
    index = root / "index.csv"
    if not index.is_file():
        have = sorted(p.parent.name for p in Path(data_dir).glob("*/index.csv"))
        raise InputError(f"{index} not found (prepared alignments: {', '.join(have) or 'none'}); "
                         f"run bench prepare --alignments {alignment}")
    with open(index, newline="") as f:
        rows = list(csv.DictReader(f))
    lm = np.load(root / "landmarks.npy")
    if len(lm) != len(rows):
        raise InputError(f"{root}: landmarks.npy has {len(lm)} rows, index.csv {len(rows)}; re-run bench prepare")
    s = PreparedSet(root, alignment, [r["crop"] for r in rows], [r["identity"] for r in rows],
                    np.array([int(r["label"]) for r in rows], np.int64), [r["source"] for r in rows],
                    lm.astype(np.float32))
    return s.subset(identities) if identities is not None else s


def _crop_name(item_path: Path, identity_root: Path) -> str:
    rel = item_path.relative_to(identity_root).with_suffix("")
    return "__".join(rel.parts) + ".png"


def prepare(input_dir: os.PathLike, out: os.PathLike, alignments: Sequence[str] = ("arcface112", "dlib150"),
            detector: str = "auto", cache=None, heldout_fraction: Optional[float] = None, seed: int = 0,
            progress: bool = True, device: str = "cpu") -> Dict:
    """Detect, align and write the prepared folder (see the module docstring); returns the summary."""
    import cv2
    from tqdm.auto import tqdm

    from idbench.bench.datasets import load_dataset
    from idbench.pipeline import detect_file

    for a in alignments:
        if a not in ALIGNMENT_SIZES:
            raise InputError(f"bench prepare supports alignments {sorted(ALIGNMENT_SIZES)}, got {a!r}")
    input_dir, out = Path(input_dir), Path(out)
    ds = load_dataset("folder", input_dir)
    out.mkdir(parents=True, exist_ok=True)
    kept: List[Tuple[str, Path, float, Dict[str, Tuple[np.ndarray, np.ndarray]]]] = []
    skipped: List[Tuple[str, str]] = []
    for item in tqdm(ds.items, desc="prepare", unit="img", disable=not progress):
        det = detect_file(item.path, detector, False, cache, device)
        if det.error:
            skipped.append((str(item.path), det.error))
            continue
        face = det.faces[0]
        try:
            image = det.image
            crops = {a: crop_with_landmarks(image, face, a) for a in alignments}
        except (ValueError, RuntimeError) as e:
            skipped.append((str(item.path), f"alignment failed: {e}"))
            continue
        kept.append((item.identity, item.path, float(face.score), crops))
    names = sorted({k[0] for k in kept})
    label_of = {n: i for i, n in enumerate(names)}
    write_names(out / "identities.txt", names)
    for a in alignments:
        root = out / a
        rows, lms = [], []
        for identity, path, score, crops in kept:
            crop, lm, valid = crops[a]
            rel = Path("crops") / identity / _crop_name(path, input_dir / identity)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            bgra = np.dstack([crop[:, :, ::-1], valid * 255]).astype(np.uint8)
            if not cv2.imwrite(str(root / rel), bgra):
                raise OSError(f"cannot write {root / rel}")
            rows.append({"crop": rel.as_posix(), "identity": identity, "label": label_of[identity],
                         "source": str(path), "face_score": f"{score:.4f}"})
            lms.append(lm)
        with open(root / "index.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=INDEX_COLUMNS)
            w.writeheader()
            w.writerows(rows)
        np.save(root / "landmarks.npy", np.asarray(lms, np.float32).reshape(len(rows), 68, 2))
    summary = {"version": PREPARE_VERSION, "input": str(input_dir), "alignments": list(alignments),
               "detector": detector, "images": len(ds.items), "faces": len(kept), "identities": len(names),
               "skipped": [{"path": p, "reason": r} for p, r in skipped]}
    if heldout_fraction is not None:
        train, held = split_identities(names, heldout_fraction, seed)
        write_names(out / "train_identities.txt", train)
        write_names(out / "heldout_identities.txt", held)
        summary.update(split={"heldout_fraction": heldout_fraction, "seed": seed, "train": len(train),
                              "heldout": len(held)})
    (out / "prepare.json").write_text(json.dumps(summary, indent=2))
    return summary
