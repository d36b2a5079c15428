"""The face record an encoder's official recipe crops from, when that recipe names its own detector.

FaceNet's recipe (facenet-pytorch) crops MTCNN's box plus a margin; a dlib-HOG box of the same face is
shaped differently (IoU 0.6-0.8 on real photos), so a run whose detector is not MTCNN hands FaceNet the
MTCNN face that overlaps the run's face most. Other encoders keep the run's face unchanged.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from idbench.errors import IdbenchError
from idbench.faces import Face

MIN_IOU = 0.3  # below this the recipe detector's best face is a different face (measured matches are >= 0.5)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x1 y1 x2 y2 boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@lru_cache(maxsize=4)
def _detector(name: str, device: str):
    from idbench.detectors import create_detector

    return create_detector(name, device)


def recipe_face(image: np.ndarray, face: Face, detector: str, device: str = "cpu") -> Face:
    """``face`` as ``detector`` finds it in ``image`` ("" or the face's own detector: ``face`` itself).

    Raises :class:`IdbenchError` when ``detector`` finds no face overlapping ``face`` (IoU < MIN_IOU).
    """
    if not detector or face.detector == detector:
        return face
    found = _detector(detector, device).detect(image)
    ious = [box_iou(np.asarray(face.box, np.float64), np.asarray(f.box, np.float64)) for f in found]
    if not ious or max(ious) < MIN_IOU:
        raise IdbenchError(f"the recipe's detector {detector} finds no face matching the {face.detector or 'run'} "
                           f"face at {np.round(face.box).astype(int).tolist()} (best IoU "
                           f"{max(ious) if ious else 0:.2f})")
    return found[int(np.argmax(ious))]


def encoder_crop(image: np.ndarray, face: Face, spec, device: str = "cpu") -> np.ndarray:
    """The aligned crop ``spec`` (an EncoderSpec) takes: its recipe's face, alignment, size and fit direction."""
    from idbench.align import align_face

    h, w = spec.input_size
    return align_face(image, recipe_face(image, face, spec.box_detector, device), spec.alignment, h, spec.fit,
                      w if w < h else None)
