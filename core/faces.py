"""The typed face record every detector returns and every aligner consumes.

A :class:`Face` is frozen: a changed face is a new record (:func:`dataclasses.replace`), so a record
shared by the pipeline, its cache keys and the swappers never changes under them. The one way to add
the 68 landmarks is :meth:`Face.with_landmarks68`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

# ArcFace / insightface 5-point order, in image coordinates (x, y):
LANDMARK5_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# "left" is the eye with the smaller x in the image (the subject's right eye), as in insightface.


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        box: (4,) float32, x1 y1 x2 y2 in pixels.
        score: detector confidence (dlib HOG/MMOD scores are not probabilities).
        landmarks5: (5, 2) float32 in ArcFace order (:data:`LANDMARK5_NAMES`).
        landmarks68: (68, 2) float32 iBUG 300-W order, when available.
        dlib5: (5, 2) float32 from dlib's 5-point predictor (used for dlib's 150x150 chip).
        detector: registry name of the detector that found it.
    """

    box: np.ndarray
    score: float
    landmarks5: np.ndarray
    landmarks68: Optional[np.ndarray] = None
    dlib5: Optional[np.ndarray] = None
    detector: str = ""

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def scaled(self, s: float) -> "Face":
        """The same face in an image resized by factor ``s``."""
        f = lambda a: None if a is None else (np.asarray(a, np.float32) * s)
        return replace(self, box=f(self.box), landmarks5=f(self.landmarks5), landmarks68=f(self.landmarks68),
                       dlib5=f(self.dlib5))

    def with_landmarks68(self, image: Optional[np.ndarray] = None,
                         landmarks68: Optional[np.ndarray] = None) -> "Face":
        """This face with its 68 landmarks: itself when it has them, else a copy with ``landmarks68`` (given)
        or with dlib's 68-point fit in its box on ``image`` (:func:`idbench.landmarks.landmarks68`)."""
        if self.landmarks68 is not None:
            return self
        if landmarks68 is None:
            if image is None:
                raise ValueError("this face has no 68 landmarks: give the image to fit them, or the landmarks")
            from .landmarks import landmarks68 as fit68  # dlib: imported only when a fit is needed

            landmarks68 = fit68(image, self.box)
        return replace(self, landmarks68=np.asarray(landmarks68, np.float32))

    def to_dict(self) -> dict:
        d = {"box": self.box.tolist(), "score": float(self.score), "landmarks5": self.landmarks5.tolist(),
             "detector": self.detector}
        if self.landmarks68 is not None:
            d["landmarks68"] = self.landmarks68.tolist()
        if self.dlib5 is not None:
            d["dlib5"] = self.dlib5.tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Face":
        g = lambda k: None if d.get(k) is None else np.asarray(d[k], np.float32)
        return cls(g("box"), float(d["score"]), g("landmarks5"), g("landmarks68"), g("dlib5"), d.get("detector", ""))


def landmarks68_to_5(lm68: np.ndarray) -> np.ndarray:
    """iBUG 68 points -> ArcFace 5 points (arcface_torch's IJB convention).

    Eye centres are the means of the eye corners (36, 39) and (42, 45), the nose tip is point 30,
    the mouth corners are points 48 and 54.
    """
    p = np.asarray(lm68, np.float32)
    if p.shape != (68, 2):
        raise ValueError(f"expected 68 x 2 landmarks, got {p.shape}")
    return np.stack([
        (p[36] + p[39]) / 2, (p[42] + p[45]) / 2, p[30], p[48], p[54]
    ]).astype(np.float32)


def largest_face(faces):
    return max(faces, key=lambda f: f.area) if faces else None
