"""``expression.landmarks``: pose-normalised geometry of dlib's 68 landmarks (the default expression)."""

from __future__ import annotations

import numpy as np

from .base import Estimator, landmarks68_of
from .geometry import MODEL_POINTS_3D
from .registry import EstimatorSpec, register_estimator

EXPRESSION_COLUMNS = (
    "mouth_open",        # inner-lip gap: mean of |62-66|, |61-67|, |63-65| vertical distances
    "mouth_width",       # 48 -> 54
    "lip_corner_right",  # height of corner 48 above the inner-lip centre (> 0: raised, smile)
    "lip_corner_left",   # the same for corner 54
    "upper_lip_raise",   # -(subnasale 33 -> upper-lip top 51 height): larger when the upper lip is raised
    "jaw_drop",          # subnasale (33) -> chin (8)
    "eye_open_right",    # lid gap of the subject's right eye: mean of 37-41, 38-40
    "eye_open_left",     # 43-47, 44-46
    "brow_raise_right",  # eye centre (36-41) minus the mean height of brow points 17-21
    "brow_raise_left",   # eye centre (42-47) minus brow points 22-26
    "brow_inner_gap",    # 21 -> 22 horizontal (smaller: frown)
)
_RIGID_2D = (27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45)


def _frontal_reference() -> np.ndarray:
    """Frontal 2-D reference of the rigid points: the 3-D model seen from the front, IOD (36-45) = 1."""
    ref = MODEL_POINTS_3D[:, :2] / 90.0
    return ref


class LandmarkExpressionEstimator(Estimator):
    """Expression as pose-normalised geometry of dlib's 68 landmarks (a landmark proxy for 3DMM expression).

    1. Similarity Procrustes (rotation, scale, translation; Umeyama) of the rigid points -- nose
       27-35 and eye corners 36, 39, 42, 45 -- onto the frontal view of the generic 3-D model
       (:data:`MODEL_POINTS_3D`) scaled to an inter-ocular distance (outer corners 36-45) of 1.
       This removes position, size and in-plane rotation (roll).
    2. Foreshortening: x is rescaled so that the outer eye corners are 1 apart horizontally, y so
       that the eye-corner line to subnasale height equals the model's (first-order correction of
       yaw and pitch; both factors clipped to [0.5, 2]).
    3. The 11 :data:`EXPRESSION_COLUMNS`, all in units of the inter-ocular distance; "right"/"left"
       are the subject's. Neutral faces give values near those of the mean face, e.g. mouth_open ~ 0.

    This is not a 3DMM: the values carry some identity (lip thickness, brow height) and, beyond
    ~30 degrees of yaw, pose. Use it to compare a swap with its target (the same estimator on
    both), as a dependency-free stand-in for the 64 expression coefficients of ``expression.deep3d``.

    dlib rather than MediaPipe: the iBUG-68 points are on every detected face already and name the
    mouth, lid and brow points these measures need; MediaPipe 0.10.21's legacy face mesh gives 478
    points but no expression output (its blendshapes need the Tasks API and a downloaded model).
    """

    def _estimate(self, image, face):
        return expression_features(landmarks68_of(image, face))


def normalise_landmarks(lm68: np.ndarray) -> np.ndarray:
    """Steps 1-2 of :class:`LandmarkExpressionEstimator`: 68 x 2 landmarks in frontal IOD units."""
    from idbench.align import similarity_transform

    lm = np.asarray(lm68, np.float64)
    ref = _frontal_reference()
    idx = list(_RIGID_2D)
    m = similarity_transform(lm[idx], ref[idx])
    p = lm @ m[:, :2].T + m[:, 2]
    c = p[idx].mean(0)
    sx = (ref[45, 0] - ref[36, 0]) / max(p[45, 0] - p[36, 0], 1e-6)
    eye_y = p[[36, 39, 42, 45], 1].mean()
    ref_eye_y = ref[[36, 39, 42, 45], 1].mean()
    sy = (ref[33, 1] - ref_eye_y) / max(p[33, 1] - eye_y, 1e-6)
    s = np.clip([sx, sy], 0.5, 2.0)
    return c + (p - c) * s


def expression_features(lm68: np.ndarray) -> np.ndarray:
    """The 11 :data:`EXPRESSION_COLUMNS` of 68 landmarks (see :class:`LandmarkExpressionEstimator`)."""
    p = normalise_landmarks(lm68)
    y, x = p[:, 1], p[:, 0]
    lip_centre = (y[62] + y[66]) / 2
    return np.array([
        np.mean([y[66] - y[62], y[67] - y[61], y[65] - y[63]]),
        float(np.linalg.norm(p[54] - p[48])),
        lip_centre - y[48],
        lip_centre - y[54],
        -(y[51] - y[33]),
        y[8] - y[33],
        np.mean([y[41] - y[37], y[40] - y[38]]),
        np.mean([y[47] - y[43], y[46] - y[44]]),
        y[36:42].mean() - y[17:22].mean(),
        y[42:48].mean() - y[22:27].mean(),
        x[22] - x[21],
    ])


@register_estimator(EstimatorSpec(
    "expression.landmarks", "expression",
    "11 pose-normalised 68-landmark measures (mouth, lip corners, eyes, brows) in IOD units; offline",
    EXPRESSION_COLUMNS, units="inter-ocular distances", paper="landmark proxy for 3DMM expression",
    licence="idbench (MIT)"))
def _expression_landmarks(spec, weights_path=None, device="cpu"):
    return LandmarkExpressionEstimator(spec)
