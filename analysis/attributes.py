"""Attribute errors of face swaps: pose, gaze, expression, shape, and the relative form.

Inputs are N x k arrays of per-image attribute estimates (one row per swap), the target's
(or source's) row aligned with the swap's row. Conventions:

* FaceShifter (Li et al., 2019/2020) and the works that copy its table (SimSwap, HifiFace,
  ReliableSwap, ...): pose error = L2 distance of (yaw, pitch, roll), expression error = L2
  distance of 3DMM expression coefficients, both target vs swap, averaged over swaps.
* BlendFace (Shiohara et al., ICCV 2023): the same quantities as **L1** distances
  (``sum_k |t_k - s_k|`` per swap), plus gaze.

Every function reports both forms: per swap ``l1 = sum_k |t_k - s_k|`` and
``l2 = sqrt(sum_k (t_k - s_k)^2)``, and their means over swaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Tuple

import numpy as np

from ._checks import as_matrix, as_scores, same_shape

__all__ = ["PoseErrorResult", "GazeErrorResult", "VectorErrorResult", "pose_error", "gaze_error",
           "expression_error", "shape_error", "relative_error", "gaze_vectors"]


@dataclass(frozen=True)
class VectorErrorResult:
    """Per-swap distances between two attribute vectors and their means.

    ``l1[i] = sum_k |a_ik - b_ik|``, ``l2[i] = ||a_i - b_i||_2``; ``mean_l1``/``mean_l2`` their
    means over the N swaps.
    """

    mean_l1: float
    mean_l2: float
    l1: np.ndarray = field(repr=False)
    l2: np.ndarray = field(repr=False)

    @property
    def n(self) -> int:
        return int(len(self.l1))

    def to_dict(self) -> Dict[str, Any]:
        return {"mean_l1": self.mean_l1, "mean_l2": self.mean_l2, "n": self.n}


@dataclass(frozen=True)
class PoseErrorResult(VectorErrorResult):
    """Head-pose error in degrees; adds the mean absolute error of each angle.

    ``mae_yaw = mean_i |yaw_t - yaw_s|`` (same for pitch and roll); ``mae`` = the three
    as a tuple (yaw, pitch, roll).
    """

    mae_yaw: float = 0.0
    mae_pitch: float = 0.0
    mae_roll: float = 0.0

    @property
    def mae(self) -> Tuple[float, float, float]:
        return self.mae_yaw, self.mae_pitch, self.mae_roll

    def to_dict(self) -> Dict[str, Any]:
        d = super().to_dict()
        d.update(mae_yaw=self.mae_yaw, mae_pitch=self.mae_pitch, mae_roll=self.mae_roll)
        return d


@dataclass(frozen=True)
class GazeErrorResult(VectorErrorResult):
    """Gaze error: ``angles[i]`` = angle in degrees between the two 3-D gaze directions,
    ``mean_angle`` their mean; ``l1``/``l2`` are on the (pitch, yaw) degrees themselves."""

    mean_angle: float = 0.0
    angles: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def to_dict(self) -> Dict[str, Any]:
        d = super().to_dict()
        d["mean_angle"] = self.mean_angle
        return d


def _pair(a: Any, b: Any, name_a: str, name_b: str, cols: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    x = as_matrix(a, name_a, cols or None)
    y = as_matrix(b, name_b, cols or None)
    same_shape(x, y, name_a, name_b)
    return x, y


def _distances(x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    d = x - y
    return np.abs(d).sum(axis=1), np.sqrt((d * d).sum(axis=1))


def pose_error(target: Any, swapped: Any) -> PoseErrorResult:
    """Head-pose error between target and swap; N x 3 arrays of (yaw, pitch, roll) in degrees.

    ``l2_i = ||pose_t,i - pose_s,i||_2`` (FaceShifter's "pose" column, mean over swaps),
    ``l1_i = sum |pose_t,i - pose_s,i|`` (BlendFace's form), and the per-angle mean absolute
    errors. Angles are compared as plain numbers (no wrap-around at +-180 degrees: face
    poses lie well inside +-90). Lower is better.
    """
    t, s = _pair(target, swapped, "target", "swapped", 3)
    l1, l2 = _distances(t, s)
    mae = np.abs(t - s).mean(axis=0)
    return PoseErrorResult(float(l1.mean()), float(l2.mean()), l1, l2,
                           float(mae[0]), float(mae[1]), float(mae[2]))


def gaze_vectors(pitch_yaw: Any) -> np.ndarray:
    """Unit 3-D gaze directions from N x 2 (pitch, yaw) angles in degrees.

    ``x = -cos(p) sin(y)``, ``y = -sin(p)``, ``z = -cos(p) cos(y)``: camera coordinates with
    the gaze pointing towards the camera (-z) at p = y = 0, the MPIIGaze (Zhang et al.,
    CVPR 2015) / ETH-XGaze (Zhang et al., ECCV 2020) convention.
    """
    a = np.deg2rad(as_matrix(pitch_yaw, "pitch_yaw", 2))
    p, y = a[:, 0], a[:, 1]
    return np.stack([-np.cos(p) * np.sin(y), -np.sin(p), -np.cos(p) * np.cos(y)], axis=1)


def gaze_error(target: Any, swapped: Any) -> GazeErrorResult:
    """Gaze error between target and swap; N x 2 arrays of (pitch, yaw) in degrees.

    ``angle_i = atan2(||g_t x g_s||, g_t . g_s)`` in degrees, with ``g`` the unit gaze
    vectors of :func:`gaze_vectors` (MPIIGaze/ETH-XGaze convention; the standard "angular
    error" of gaze estimation, computed with atan2 for accuracy at small angles);
    ``mean_angle`` = mean over swaps. Also the L1 (BlendFace's form) and L2 distances of the
    (pitch, yaw) degrees. Lower is better.
    """
    t, s = _pair(target, swapped, "target", "swapped", 2)
    gt, gs = gaze_vectors(t), gaze_vectors(s)
    cross = np.linalg.norm(np.cross(gt, gs), axis=1)
    dot = np.einsum("ij,ij->i", gt, gs)
    angles = np.rad2deg(np.arctan2(cross, dot))
    l1, l2 = _distances(t, s)
    return GazeErrorResult(float(l1.mean()), float(l2.mean()), l1, l2, float(angles.mean()), angles)


def expression_error(target: Any, swapped: Any) -> VectorErrorResult:
    """Expression error between target and swap; N x k expression vectors (e.g. 3DMM
    expression coefficients, blendshape scores or normalised landmarks).

    ``l2_i = ||e_t,i - e_s,i||_2`` (FaceShifter's "expression" column) and
    ``l1_i = sum_k |e_t,ik - e_s,ik|`` (BlendFace's form), averaged over swaps. Lower is better.
    """
    t, s = _pair(target, swapped, "target", "swapped")
    l1, l2 = _distances(t, s)
    return VectorErrorResult(float(l1.mean()), float(l2.mean()), l1, l2)


def shape_error(source: Any, swapped: Any) -> VectorErrorResult:
    """Face-shape error between **source** and swap; N x k 3DMM shape (identity) coefficients.

    A swap should carry the source's face shape (HifiFace, Wang et al., IJCAI 2021, "shape"
    column, from 3D face reconstruction coefficients): ``l1_i = sum_k |c_src,ik - c_swap,ik|`` and
    ``l2_i = ||c_src,i - c_swap,i||_2``, averaged over swaps. Lower is better.
    """
    t, s = _pair(source, swapped, "source", "swapped")
    l1, l2 = _distances(t, s)
    return VectorErrorResult(float(l1.mean()), float(l2.mean()), l1, l2)


def relative_error(d_right: Any, d_wrong: Any) -> float:
    """Share of swaps closer to the right reference than to the wrong one, ties counting 1/2.

    ``R = (1/N) sum_i [ 1(d_right_i < d_wrong_i) + 0.5 * 1(d_right_i = d_wrong_i) ]``

    E.g. for pose, ``d_right`` = distance swap-to-target and ``d_wrong`` = swap-to-source
    (the pose should come from the target); for identity, ``d_right`` = distance to the
    source and ``d_wrong`` = distance to the target. 1 = always closer to the right
    reference, 0.5 = undecided, higher is better. BlendFace reports "relative" ("-R")
    versions of its metrics, but their exact formula is not public: this is idbench's own
    definition, not a reproduction of the paper's numbers.
    """
    r = as_scores(d_right, "d_right")
    w = as_scores(d_wrong, "d_wrong")
    same_shape(r, w, "d_right", "d_wrong")
    return float(np.mean((r < w) + 0.5 * (r == w)))
