"""dlib's shipped landmark predictors (68-point iBUG and 5-point), loaded once and shared."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .errors import WeightsFormatError
from .weights import DLIB_MODELS, WeightSource, resolve_weights

SHAPE68 = WeightSource(
    "shape_predictor_68_face_landmarks.dat", "PyPI package face-recognition-models", search=(DLIB_MODELS,),
    min_bytes=1_000_000,
)
SHAPE5 = WeightSource(
    "shape_predictor_5_face_landmarks.dat", "PyPI package face-recognition-models", search=(DLIB_MODELS,),
    min_bytes=1_000_000,
)


@lru_cache(maxsize=None)
def _predictor(which: str):
    import dlib

    path = resolve_weights(SHAPE68 if which == "68" else SHAPE5)
    try:
        return dlib.shape_predictor(str(path))
    except RuntimeError as e:
        raise WeightsFormatError(f"{path}: not a dlib shape predictor ({str(e).splitlines()[0]})") from None


def preload_predictors() -> None:
    """Load both predictors now (they are otherwise loaded by the first face)."""
    _predictor("68")
    _predictor("5")


def _rect(box):
    import dlib

    x1, y1, x2, y2 = [int(round(float(v))) for v in box]
    return dlib.rectangle(x1, y1, x2, y2)


def _points(shape) -> np.ndarray:
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def landmarks68(image: np.ndarray, box) -> np.ndarray:
    """68 iBUG landmarks (x, y) of the face in ``box`` (x1 y1 x2 y2) of an RGB uint8 image."""
    return _points(_predictor("68")(image, _rect(box)))


def dlib5(image: np.ndarray, box) -> np.ndarray:
    """dlib's 5 points (two corners per eye, nose base), the shape its face chips are cut from."""
    return _points(_predictor("5")(image, _rect(box)))


def dlib_shape(points: np.ndarray, box):
    """A ``dlib.full_object_detection`` from stored points (dlib's own points are integers)."""
    import dlib

    pts = dlib.points()
    for x, y in np.asarray(points):
        pts.append(dlib.point(int(round(float(x))), int(round(float(y)))))
    return dlib.full_object_detection(_rect(box), pts)
