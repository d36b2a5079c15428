"""Attribute estimators: head pose, gaze, expression (and 3DMM shape) of a detected face.

A subpackage, one module per estimator: :mod:`.registry` (specs, ``create_estimator``), :mod:`.base`
(the :class:`Estimator` base), :mod:`.geometry` (3-D face model, Euler angles, PnP), :mod:`.pose_pnp`,
:mod:`.gaze_iris`, :mod:`.expression_landmarks`, :mod:`.networks` (what the torch estimators share),
:mod:`.hopenet`, :mod:`.l2cs`, :mod:`.deep3d`. Importing it imports neither torch nor OpenCV.

One registry, one contract::

    >>> from idbench.analysis.estimators import create_estimator, list_estimators
    >>> est = create_estimator("pose.pnp")            # or "pose" (the kind's default)
    >>> est.estimate(image_rgb, face)                  # -> array([yaw, pitch, roll]) in degrees
    >>> est.spec.columns                               # ('yaw', 'pitch', 'roll')
    >>> est.estimate_batch(images, faces)              # -> N x 3

``image_rgb`` is a uint8 RGB H x W x 3 image (:func:`idbench.imageio.read_image`), ``face`` a
:class:`idbench.faces.Face` from :func:`idbench.detectors.create_detector` (``None``: the largest
face the ``auto`` detector finds). Every estimate is a float64 vector whose entries are named by
``spec.columns``. An estimator that cannot measure a face raises :class:`idbench.errors.NoFaceError`.

Conventions (shared by every estimator of a kind, so that they can be swapped in the metrics of
:mod:`idbench.analysis.attributes`):

**Angles** are in degrees, camera coordinates x right (image), y down, z forward (into the scene).

* **pose** ``(yaw, pitch, roll)``: the head rotation ``R`` (head -> camera) written as
  ``R = Ry(yaw) @ Rx(-pitch) @ Rz(roll)`` with the head frame equal to the camera frame for a frontal,
  upright face (x towards the subject's left = image right, y down, z from the face into the head).
  **yaw > 0**: the face turns towards image left (the subject's right); **pitch > 0**: the face
  looks up; **roll > 0**: the face rotates clockwise in the image (the subject's left eye goes down).
  yaw and pitch are exactly the gaze-convention angles (below) of the head's forward direction;
  this is also HopeNet's (300W-LP) sign convention, so ``pose.hopenet`` needs no sign change. A
  horizontal flip of the image negates yaw and roll and keeps pitch.
* **gaze** ``(pitch, yaw)``: direction ``g = (-cos p sin y, -sin p, -cos p cos y)`` in camera
  coordinates (the MPIIGaze / ETH-XGaze / Gaze360 convention used by L2CS-Net and by
  :func:`idbench.analysis.gaze_vectors`): (0, 0) looks into the camera, **yaw > 0** looks towards
  image left (the subject's right), **pitch > 0** looks up.
* **expression**: a fixed-length named vector; what the entries mean depends on the estimator
  (landmark geometry for ``expression.landmarks``, Basel/FaceWarehouse 3DMM expression coefficients
  for ``expression.deep3d``). Compare only vectors of the same estimator.
* **shape** (``shape.deep3d``): the 80 identity (shape) coefficients of the BFM 3DMM, for
  :func:`idbench.analysis.shape_error`.

Registered estimators (``bench list estimators``):

=========================  ====================================================================
``pose.pnp``               68 dlib landmarks + a generic 3-D face model, ``cv2.solvePnP`` (default)
``pose.hopenet``           HopeNet (Ruiz et al., CVPRW 2018), ``hopenet_robust_alpha1.pkl``
``gaze.iris``              MediaPipe iris landmarks + eyeball model, combined with ``pose.pnp`` (default)
``gaze.iris_head``         the same, eye-in-head angles (head frame)
``gaze.l2cs``              L2CS-Net (Abdelrahman et al., 2022), ``L2CSNet_gaze360.pkl``
``expression.landmarks``   pose-normalised 68-landmark geometry, 11 named values (default)
``expression.deep3d``      Deep3DFaceRecon (Deng et al., CVPRW 2019) 64 expression coefficients
``shape.deep3d``           Deep3DFaceRecon 80 identity coefficients
=========================  ====================================================================

Why dlib's landmarks for pose and expression, MediaPipe for gaze: every detector of
:mod:`idbench.detectors` already attaches dlib's 68 iBUG points to each face (no second model
run, the same points the aligners use), and the iBUG order is what generic 3-D face models and
expression measures are written for. dlib's 68 points have no pupil or iris, so gaze needs
MediaPipe's face mesh with its iris refinement (478 points, 468-477 the two irises). mediapipe is
pinned to 0.10.21, whose wheel ships the face-mesh and iris TFLite models for the legacy
``mediapipe.solutions.face_mesh`` API, so it runs offline; the newer Tasks API
(``FaceLandmarker``, which also gives blendshapes) needs a separately downloaded ``.task`` file.

Weights of the torch estimators are read by the one checkpoint reader (:mod:`idbench.checkpoints`):
a file that pickles Python objects is refused unless ``create_estimator(name, allow_pickle=True)`` (or
``IDBENCH_ALLOW_PICKLE=1``) says it is trusted.
"""

from __future__ import annotations

from . import deep3d, expression_landmarks, gaze_iris, hopenet, l2cs, pose_pnp  # noqa: F401  (register)
from .base import Estimator
from .deep3d import DEEP3D_LM3D, DEEP3D_PARTS, DEEP3D_WEIGHTS, Deep3DEstimator, deep3d_align
from .expression_landmarks import (EXPRESSION_COLUMNS, LandmarkExpressionEstimator, expression_features,
                                   normalise_landmarks)
from .gaze_iris import IrisGazeEstimator
from .geometry import (GAZE_COLUMNS, MIRROR68, MODEL_POINTS_3D, POSE_COLUMNS, POSE_POINTS, camera_matrix,
                       euler_from_rotation, gaze_angles, gaze_vector, mirror_landmarks68, rotation_from_euler,
                       solve_head_pose)
from .hopenet import HOPENET_WEIGHTS, HopeNetEstimator
from .l2cs import L2CS_WEIGHTS, L2CSEstimator
from .pose_pnp import PnPPoseEstimator
from .registry import (ESTIMATORS, KIND_DEFAULTS, KINDS, EstimatorSpec, create_estimator, get_spec, list_estimators,
                       register_estimator, resolve_name, weights_status)

__all__ = ["EstimatorSpec", "Estimator", "ESTIMATORS", "KINDS", "KIND_DEFAULTS", "create_estimator", "list_estimators",
           "get_spec", "register_estimator", "resolve_name", "weights_status", "rotation_from_euler",
           "euler_from_rotation", "mirror_landmarks68", "MODEL_POINTS_3D", "EXPRESSION_COLUMNS", "POSE_COLUMNS",
           "GAZE_COLUMNS", "camera_matrix", "solve_head_pose", "gaze_angles", "gaze_vector", "PnPPoseEstimator",
           "IrisGazeEstimator", "LandmarkExpressionEstimator", "HopeNetEstimator", "L2CSEstimator", "Deep3DEstimator",
           "deep3d_align", "expression_features", "normalise_landmarks", "DEEP3D_PARTS", "DEEP3D_LM3D",
           "DEEP3D_WEIGHTS", "MIRROR68", "POSE_POINTS", "HOPENET_WEIGHTS", "L2CS_WEIGHTS"]
