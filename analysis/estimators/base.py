"""The :class:`Estimator` base class and the input checks every estimator shares."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from idbench.errors import InputError, NoFaceError
from idbench.faces import Face

from .registry import EstimatorSpec


class Estimator:
    """Base class: subclasses implement :meth:`_estimate` (one face) or :meth:`_estimate_batch`."""

    def __init__(self, spec: EstimatorSpec, weights_path: Optional[Path] = None):
        self.spec = spec
        self.weights_path = weights_path

    @property
    def columns(self) -> Tuple[str, ...]:
        return self.spec.columns

    def estimate(self, image_rgb: np.ndarray, face: Optional[Face] = None) -> np.ndarray:
        """The estimate for one face: float64 vector of ``len(spec.columns)`` values."""
        image_rgb = check_image(image_rgb)
        face = face_or_detect(image_rgb, face)
        return self._finish(self._estimate_batch([image_rgb], [face])[0])

    def estimate_batch(self, images: Sequence[np.ndarray], faces: Sequence[Optional[Face]]) -> np.ndarray:
        """Estimates for N (image, face) pairs (the same image may repeat): N x k float64."""
        if len(images) != len(faces):
            raise InputError(f"estimate_batch: {len(images)} images but {len(faces)} faces")
        if not len(images):
            return np.zeros((0, len(self.columns)))
        imgs = [check_image(im) for im in images]
        fs = [face_or_detect(im, f) for im, f in zip(imgs, faces)]
        return np.stack([self._finish(r) for r in self._estimate_batch(imgs, fs)])

    def as_dict(self, values: np.ndarray) -> Dict[str, float]:
        return {c: float(v) for c, v in zip(self.columns, values)}

    def _finish(self, v) -> np.ndarray:
        v = np.asarray(v, np.float64).reshape(-1)
        if v.shape != (len(self.columns),):
            raise RuntimeError(f"{self.spec.name} returned {v.shape} values for {len(self.columns)} columns")
        return v

    def _estimate_batch(self, images, faces):
        return [self._estimate(im, f) for im, f in zip(images, faces)]

    def _estimate(self, image: np.ndarray, face: Face) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.name}, weights={self.weights_path})"


def check_image(image: np.ndarray) -> np.ndarray:
    """The image as a uint8 RGB H x W x 3 array, or a one-line InputError."""
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise InputError(f"estimators take uint8 RGB images H x W x 3, got {a.shape} {a.dtype}")
    return a


def face_or_detect(image: np.ndarray, face: Optional[Face]) -> Face:
    """The given face, or the first face the ``auto`` detector finds (none: NoFaceError)."""
    if face is not None:
        return face
    from idbench.detectors import create_detector

    faces = create_detector("auto").detect(image)
    if not faces:
        raise NoFaceError("no face found in the image (pass a Face to estimate a given box)")
    return faces[0]


def landmarks68_of(image: np.ndarray, face: Face) -> np.ndarray:
    """dlib's 68 landmarks of the face (:meth:`~idbench.faces.Face.with_landmarks68`: fitted when the detector gave none)."""
    lm = np.asarray(face.with_landmarks68(image).landmarks68, np.float64)
    if lm.shape != (68, 2):
        raise InputError(f"expected 68 x 2 landmarks, got {lm.shape}")
    return lm
