"""``pose.pnp``: head pose from dlib's 68 landmarks and the generic 3-D face model (the default pose)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from idbench.faces import Face

from .base import Estimator, landmarks68_of
from .geometry import POSE_COLUMNS, euler_from_rotation, solve_head_pose
from .registry import FOCAL, EstimatorSpec, register_estimator


class PnPPoseEstimator(Estimator):
    """Head pose from dlib's 68 landmarks and the generic 3-D model (:data:`MODEL_POINTS_3D`).

    ``solvePnP`` with a pinhole camera of focal length max(H, W) px centred on the image (the real
    camera is unknown; the angles depend little on it for faces that are small in the frame),
    then the rotation is written as idbench's (yaw, pitch, roll) (module docstring). The jaw
    outline, brows and lips are not used, so expressions barely move the estimate.

    dlib rather than MediaPipe: the 68 iBUG points come with every detected face (no second
    landmark model), the generic model is written in that order, and dlib's eye corners and nose
    are as stable as MediaPipe's for this purpose; the iris is not needed for head pose.
    """

    def __init__(self, spec, focal: Optional[float] = None):
        super().__init__(spec)
        self.focal = focal

    def rotation(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The head -> camera rotation matrix (3 x 3)."""
        return solve_head_pose(landmarks68_of(image, face), image.shape, self.focal)[0]

    def _estimate(self, image, face):
        return euler_from_rotation(self.rotation(image, face))


@register_estimator(EstimatorSpec(
    "pose.pnp", "pose", "yaw/pitch/roll from 68 dlib landmarks + a generic 3-D face model (cv2.solvePnP); offline",
    POSE_COLUMNS, units="degrees", paper="generic-model PnP head pose (e.g. Murphy-Chutorian & Trivedi, TPAMI 2009)",
    licence="idbench (MIT); model points written for idbench", options=(FOCAL,)))
def _pose_pnp(spec, weights_path=None, device="cpu", focal: Optional[float] = None):
    return PnPPoseEstimator(spec, focal)
