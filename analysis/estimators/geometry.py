"""Geometry shared by the landmark estimators: the generic 3-D face model, Euler angles, mirroring,
gaze vectors and the PnP head-pose fit (conventions: see :mod:`idbench.analysis.estimators`)."""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

from idbench.errors import InputError, NoFaceError

POSE_COLUMNS = ("yaw", "pitch", "roll")
GAZE_COLUMNS = ("pitch", "yaw")


def _model_points() -> np.ndarray:
    """The generic 3-D face model: iBUG-68 indices -> (x, y, z) in millimetres (NaN: not modelled).

    Frame: origin at the sellion (point 27, deepest point of the nasal bridge), x towards the
    subject's left (image right for a frontal face), y down, z from the face into the head (points
    nearer the camera than the sellion have z < 0). Rounded adult averages written for idbench
    from standard facial anthropometry (Farkas, *Anthropometry of the Head and Face*, 1994):
    biocular width (ex-ex, 36-45) 90 mm, intercanthal width (en-en, 39-42) 34 mm, eye fissure
    28 mm long and 8 mm open, sellion to subnasale (27-33) 46 mm, nose width (31-35) 28 mm, nose
    tip 20 mm in front of the sellion, mouth width (48-54) 50 mm; eye corners 16-24 mm behind the
    sellion. Only the 23 points that do not move with expression are modelled: the nose (27-35),
    the eyes (36-47) and the mouth corners (48, 54, which move little with most expressions but
    constrain the lower face). The jaw outline (0-16) is a silhouette that slides over the face as
    it turns, and brows and lips move with expression, so none of them is used for pose. Checked
    against the BFM mean face (68 points of Deep3DFaceRecon's ``similarity_Lm3D_all.mat``) and
    insightface's ``meanshape_68``: all points within 6 mm after scaling to the same biocular width.
    """
    p = np.full((68, 3), np.nan)
    p[27] = (0, 0, 0)
    p[28] = (0, 11, -7)
    p[29] = (0, 22, -14)
    p[30] = (0, 32, -20)  # pronasale (nose tip)
    p[31] = (-14, 44, 3)
    p[32] = (-8, 45, -2)
    p[33] = (0, 46, -5)  # subnasale
    right_eye = {36: (-45, 1, 24), 37: (-37, -3, 16), 38: (-28, -4, 15), 39: (-17, 1, 18),
                 40: (-27, 4, 16), 41: (-37, 4, 18)}  # the subject's right eye (image left)
    for i, v in right_eye.items():
        p[i] = v
    p[48] = (-25, 69, 11)  # mouth corner, subject's right
    for i, j in MIRROR68:
        if np.isnan(p[j]).any() and not np.isnan(p[i]).any():
            p[j] = (-p[i][0], p[i][1], p[i][2])
    return p


def _mirror_pairs() -> Tuple[Tuple[int, int], ...]:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17, 26), (18, 25), (19, 24), (20, 23), (21, 22)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]  # mouth
    return tuple(pairs)


MIRROR68 = _mirror_pairs()
MODEL_POINTS_3D = _model_points()
POSE_POINTS = tuple(int(i) for i in np.flatnonzero(~np.isnan(MODEL_POINTS_3D[:, 0])))


def mirror_landmarks68(lm68: np.ndarray, width: int) -> np.ndarray:
    """The 68 landmarks of the horizontally flipped image (``image[:, ::-1]`` of width ``width``).

    x becomes ``width - 1 - x`` and left/right points swap indices (point 36, the image-left outer
    eye corner, is the mirror of point 45, and so on), so the result is again in iBUG order.
    """
    lm = np.asarray(lm68, np.float64).copy()
    lm[:, 0] = width - 1 - lm[:, 0]
    out = lm.copy()
    for i, j in MIRROR68:
        out[i], out[j] = lm[j], lm[i]
    return out


def _rx(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head -> camera rotation for idbench's (yaw, pitch, roll) in degrees (module docstring)."""
    y, p, r = np.deg2rad([yaw, pitch, roll])
    return _ry(y) @ _rx(-p) @ _rz(r)


def euler_from_rotation(R: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees of a head -> camera rotation; inverse of :func:`rotation_from_euler`."""
    R = np.asarray(R, np.float64)
    yaw = math.atan2(R[0, 2], R[2, 2])
    pitch = math.asin(float(np.clip(R[1, 2], -1.0, 1.0)))
    roll = math.atan2(R[1, 0], R[1, 1])
    return np.rad2deg([yaw, pitch, roll])


def gaze_angles(g: np.ndarray) -> np.ndarray:
    """(pitch, yaw) in degrees of a 3-D gaze direction in camera coordinates (module convention)."""
    g = np.asarray(g, np.float64)
    g = g / max(float(np.linalg.norm(g)), 1e-12)
    return np.rad2deg([math.asin(float(np.clip(-g[1], -1, 1))), math.atan2(-g[0], -g[2])])


def gaze_vector(pitch: float, yaw: float) -> np.ndarray:
    p, y = np.deg2rad([pitch, yaw])
    return np.array([-math.cos(p) * math.sin(y), -math.sin(p), -math.cos(p) * math.cos(y)])


def camera_matrix(shape: Sequence[int], focal: Optional[float] = None) -> np.ndarray:
    """Pinhole intrinsics for an image of ``shape`` (H, W, ...): focal = max(H, W) px unless given,
    principal point at the pixel centre ((W - 1) / 2, (H - 1) / 2), so a flipped image has the mirrored camera."""
    h, w = shape[:2]
    f = float(focal or max(h, w))
    return np.array([[f, 0, (w - 1) / 2.0], [0, f, (h - 1) / 2.0], [0, 0, 1]], np.float64)


def solve_head_pose(lm68: np.ndarray, image_shape: Sequence[int], focal: Optional[float] = None
                    ) -> Tuple[np.ndarray, np.ndarray, float]:
    """Fit the generic model to 68 landmarks: (R head -> camera, t in mm, RMS reprojection error in px).

    ``cv2.solvePnP`` on the 23 modelled points (:data:`POSE_POINTS`), from both EPnP and a frontal
    start at the distance the eye spacing implies, refined with Levenberg-Marquardt; the solution
    with the smaller reprojection error (and the face in front of the camera) wins.
    """
    import cv2

    lm = np.asarray(lm68, np.float64)
    idx = list(POSE_POINTS)
    obj = MODEL_POINTS_3D[idx].astype(np.float64)
    img = lm[idx].astype(np.float64)
    if not np.all(np.isfinite(img)):
        raise InputError("landmarks contain NaN or inf")
    K = camera_matrix(image_shape, focal)
    dist = np.zeros(4)
    f = K[0, 0]
    iod = max(float(np.linalg.norm(lm[45] - lm[36])), 1e-3)
    z0 = f * 90.0 / iod
    c = lm[idx].mean(0)
    starts = [(np.zeros(3), np.array([(c[0] - K[0, 2]) * z0 / f, (c[1] - K[1, 2]) * z0 / f - 25.0, z0]))]
    ok, rv, tv = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_EPNP)
    if ok and tv[2, 0] > 0:
        starts.append((rv.reshape(3), tv.reshape(3)))
    best = None
    for rv0, tv0 in starts:
        ok, rv, tv = cv2.solvePnP(obj, img, K, dist, rv0.reshape(3, 1).copy(), tv0.reshape(3, 1).copy(),
                                  useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
        if not ok or tv[2, 0] <= 0:
            continue
        proj, _ = cv2.projectPoints(obj, rv, tv, K, dist)
        err = float(np.sqrt(((proj.reshape(-1, 2) - img) ** 2).sum(1).mean()))
        if best is None or err < best[2]:
            best = (cv2.Rodrigues(rv)[0], tv.reshape(3), err)
    if best is None:
        raise NoFaceError("head pose: solvePnP found no solution with the face in front of the camera")
    return best
