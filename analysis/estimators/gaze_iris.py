"""``gaze.iris`` / ``gaze.iris_head``: MediaPipe iris centres in an eyeball model, rotated by ``pose.pnp``."""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from idbench.errors import NoFaceError
from idbench.faces import Face

from .base import Estimator, landmarks68_of
from .geometry import GAZE_COLUMNS, camera_matrix, gaze_angles, solve_head_pose
from .registry import FOCAL, EstimatorSpec, register_estimator

# MediaPipe face mesh indices (refine_landmarks=True): per eye, the image-left and image-right
# corners and the iris centre.
_MP_EYES = {
    "right": dict(corner_a=33, corner_b=133, iris=468),  # the subject's right eye = image left
    "left": dict(corner_a=362, corner_b=263, iris=473),
}
EYE_RADIUS_MM = 11.0  # eye rotation centre -> apparent pupil/iris centre (eyeball radius ~12 mm)
# Height of the iris centre above the eye corners' midpoint for a level gaze: the median over 120 photos of
# ../shared/data/faces (people mostly looking into the camera) of the measured vertical offset.
IRIS_RAISE_MM = 1.5


def _face_mesh(max_faces: int = 1):
    import os

    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ log lines are noise for users
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import mediapipe as mp

    return mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=max_faces,
                                           min_detection_confidence=0.3)


class IrisGazeEstimator(Estimator):
    """Gaze from the iris centre's position in the eye (MediaPipe face mesh + iris, 478 points) and
    the head pose of ``pose.pnp``.

    Eyeball model: each eye turns about a centre that projects to the midpoint ``c`` of its two
    corners (MediaPipe 33/133 and 362/263); the iris centre (468, 473) sits ``r = 11 mm`` in front
    of it along the gaze direction ``q`` (camera coordinates, unit). Under weak perspective at the
    head's distance (``s = f / t_z`` pixels per mm from the PnP fit of :func:`solve_head_pose`)::

        iris - c = s * r * (q_x, q_y)        =>   (q_x, q_y) = (iris - c) / (s r),  q_z = -sqrt(1 - q_x^2 - q_y^2)

    i.e. the offset of the iris from the eye centre normalised by the eye's size (``s r`` is 0.39
    eye widths of the 28 mm model eye; the scale comes from the whole face, so an eye foreshortened
    by head yaw is not mistaken for a wider gaze). Both eyes' offsets are averaged. The iris of an
    eye looking straight ahead of a turned head is displaced towards the turn (it sits in front of
    the corners), which this model accounts for and a purely 2-D "iris position between the corners"
    ratio does not. Vertical gaze from the iris is coarse (the lids follow the eye): treat pitch
    as a rough value.

    ``frame="camera"`` (``gaze.iris``): (pitch, yaw) of ``q``, comparable with L2CS-Net.
    ``frame="head"`` (``gaze.iris_head``): of ``R^T q``, the eyes relative to the head
    (0, 0 = looking where the face points).

    The face mesh runs on a square crop of twice the face box around its centre (so the right face
    is measured in a crowd); if it finds no face there it tries the whole image and keeps the mesh
    nearest the box. No mesh: :class:`~idbench.errors.NoFaceError`.

    MediaPipe rather than dlib for the eyes: dlib's 68 points have eye corners and lids but no
    pupil or iris; mediapipe 0.10.21 ships the face-mesh and iris TFLite models in its wheel
    (``FaceMesh(static_image_mode=True, refine_landmarks=True)``, 478 points, 468-477 the irises), so
    it runs offline. The head pose still comes from dlib's landmarks, as ``pose.pnp``.
    """

    def __init__(self, spec, frame: str = "camera", focal: Optional[float] = None):
        super().__init__(spec)
        if frame not in ("camera", "head"):
            raise ValueError(f"frame must be 'camera' or 'head', got {frame!r}")
        self.frame = frame
        self.focal = focal
        self._mesh = None

    def mesh(self, image: np.ndarray, face: Face) -> np.ndarray:
        """MediaPipe's 478 landmarks (x, y in image pixels) of ``face``."""
        import cv2

        if self._mesh is None:
            self._mesh = _face_mesh()
        box = np.asarray(face.box, np.float64)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = 2.0 * max(box[2] - box[0], box[3] - box[1], 8.0)
        x0, y0 = cx - side / 2, cy - side / 2
        out = min(512.0, max(256.0, side))
        s = out / side
        m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]])
        crop = cv2.warpAffine(image, m, (int(out), int(out)), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        pts = self._run(self._mesh, crop)
        if pts is not None:
            return pts / s + np.array([x0, y0])
        with _face_mesh(8) as fm:
            pts = self._run(fm, image, box)
        if pts is None:
            raise NoFaceError("MediaPipe face mesh found no face at the given box (needed for the iris)")
        return pts

    @staticmethod
    def _run(fm, img: np.ndarray, box=None) -> Optional[np.ndarray]:
        res = fm.process(np.ascontiguousarray(img))
        if not res.multi_face_landmarks:
            return None
        h, w = img.shape[:2]
        meshes = [np.array([[p.x * w, p.y * h] for p in f.landmark], np.float64) for f in res.multi_face_landmarks]
        meshes = [m for m in meshes if len(m) >= 478]
        if not meshes:
            return None
        if box is None:
            return meshes[0]
        c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        return min(meshes, key=lambda m: float(np.linalg.norm(m[:468].mean(0) - c)))

    @staticmethod
    def iris_offset(mesh: np.ndarray) -> np.ndarray:
        """Mean over both eyes of (iris centre - corners' midpoint), in pixels."""
        offs = [mesh[ix["iris"]] - (mesh[ix["corner_a"]] + mesh[ix["corner_b"]]) / 2 for ix in _MP_EYES.values()]
        return np.mean(offs, axis=0)

    def gaze_direction(self, image: np.ndarray, face: Face) -> Tuple[np.ndarray, np.ndarray]:
        """(q, R): the unit gaze direction in camera coordinates and the head rotation."""
        mesh = self.mesh(image, face)
        R, t, _ = solve_head_pose(landmarks68_of(image, face), image.shape, self.focal)
        s = camera_matrix(image.shape, self.focal)[0, 0] / t[2]  # px per mm at the head
        rest = (R @ np.array([0.0, -IRIS_RAISE_MM, 0.0]))[:2]
        v = (self.iris_offset(mesh) / s - rest) / EYE_RADIUS_MM
        n = float(np.linalg.norm(v))
        if n > 0.99:
            v = v * (0.99 / n)
        q = np.array([v[0], v[1], -math.sqrt(max(1.0 - float(v @ v), 0.0))])
        return q, R

    def _estimate(self, image, face):
        q, R = self.gaze_direction(image, face)
        return gaze_angles(q if self.frame == "camera" else R.T @ q)


@register_estimator(EstimatorSpec(
    "gaze.iris", "gaze", "pitch/yaw: MediaPipe iris centre in the eye (eyeball model) rotated by pose.pnp; offline",
    GAZE_COLUMNS, units="degrees", paper="MediaPipe Iris (Ablavatski et al., CVPRW 2020); geometric eyeball model",
    licence="mediapipe: Apache-2.0", options=(FOCAL,)))
def _gaze_iris(spec, weights_path=None, device="cpu", focal: Optional[float] = None):
    return IrisGazeEstimator(spec, "camera", focal)


@register_estimator(EstimatorSpec(
    "gaze.iris_head", "gaze", "pitch/yaw of the eyes relative to the head (MediaPipe iris + pose.pnp); offline",
    GAZE_COLUMNS, units="degrees", paper="MediaPipe Iris (Ablavatski et al., CVPRW 2020)",
    licence="mediapipe: Apache-2.0"))
def _gaze_iris_head(spec, weights_path=None, device="cpu"):
    return IrisGazeEstimator(spec, "head")
