"""Attribute estimators: head pose, gaze, expression (and 3DMM shape) of a detected face.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from idbench.errors import InputError, NoFaceError, WeightsFormatError
from idbench.faces import Face, landmarks68_to_5
from idbench.registry import Registry
from idbench.weights import WeightSource, resolve_weights

KINDS = ("pose", "gaze", "expression", "shape")
KIND_DEFAULTS = {"pose": "pose.pnp", "gaze": "gaze.iris", "expression": "expression.landmarks",
                 "shape": "shape.deep3d"}

__all__ = ["EstimatorSpec", "Estimator", "ESTIMATORS", "KIND_DEFAULTS", "create_estimator", "list_estimators",
           "get_spec", "register_estimator", "resolve_name", "weights_status", "rotation_from_euler",
           "euler_from_rotation", "mirror_landmarks68", "MODEL_POINTS_3D", "EXPRESSION_COLUMNS"]


@dataclass(frozen=True)
class EstimatorSpec:
    """What an estimator measures and gives back.

    Attributes:
        name: registry name, ``kind.method`` (``pose.pnp``).
        kind: ``pose`` | ``gaze`` | ``expression`` | ``shape``.
        description: one line for ``bench list estimators``.
        columns: names of the entries of each estimate, in order.
        weights: the weight file(s); empty when none is needed.
        units: ``degrees`` or ``coefficients`` / ``IOD units``.
        paper, licence: provenance.
    """

    name: str
    kind: str
    description: str
    columns: Tuple[str, ...]
    weights: Tuple[WeightSource, ...] = ()
    units: str = ""
    paper: str = ""
    licence: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if not self.columns:
            raise ValueError(f"{self.name}: an estimator needs named output columns")


ESTIMATORS: Registry[EstimatorSpec] = Registry("estimator")


def register_estimator(spec: EstimatorSpec) -> Callable:
    """Decorator: register ``factory(spec, weights_path, device, **options) -> Estimator``."""
    return ESTIMATORS.register(spec.name, spec)


def resolve_name(name: str) -> str:
    """A kind (``pose``) stands for its default estimator (``pose.pnp``)."""
    return KIND_DEFAULTS.get(name, name)


def get_spec(name: str) -> EstimatorSpec:
    return ESTIMATORS.spec(resolve_name(name))


def list_estimators(pattern: Optional[str] = None, kind: Optional[str] = None) -> List[str]:
    names = ESTIMATORS.names(pattern)
    return [n for n in names if kind is None or ESTIMATORS.spec(n).kind == kind]


def weights_status(name: str) -> str:
    """'present', 'missing', 'corrupt' or 'none needed'."""
    from idbench.weights import weights_presence

    return weights_presence(get_spec(name).weights)


def create_estimator(name: str, weights: Optional[Union[str, Path]] = None, device: str = "cpu",
                     **options) -> "Estimator":
    """Build a registered estimator (a kind name gives its default); resolves the weight file first.

    Missing weights raise :class:`~idbench.errors.WeightsNotFoundError` (naming every place looked
    in), unreadable or wrong files :class:`~idbench.errors.WeightsFormatError`.
    """
    name = resolve_name(name)
    spec = ESTIMATORS.spec(name)
    path = resolve_weights(spec.weights[0], weights) if spec.weights else None
    return ESTIMATORS.factory(name)(spec, path, device, **options)


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
        image_rgb = _check_image(image_rgb)
        face = _face_or_detect(image_rgb, face)
        return self._finish(self._estimate_batch([image_rgb], [face])[0])

    def estimate_batch(self, images: Sequence[np.ndarray], faces: Sequence[Optional[Face]]) -> np.ndarray:
        """Estimates for N (image, face) pairs (the same image may repeat): N x k float64."""
        if len(images) != len(faces):
            raise InputError(f"estimate_batch: {len(images)} images but {len(faces)} faces")
        if not len(images):
            return np.zeros((0, len(self.columns)))
        imgs = [_check_image(im) for im in images]
        fs = [_face_or_detect(im, f) for im, f in zip(imgs, faces)]
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


def _check_image(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise InputError(f"estimators take uint8 RGB images H x W x 3, got {a.shape} {a.dtype}")
    return a


def _face_or_detect(image: np.ndarray, face: Optional[Face]) -> Face:
    if face is not None:
        return face
    from idbench.detectors import create_detector

    faces = create_detector("auto").detect(image)
    if not faces:
        raise NoFaceError("no face found in the image (pass a Face to estimate a given box)")
    return faces[0]


def _landmarks68(image: np.ndarray, face: Face) -> np.ndarray:
    if face.landmarks68 is None:
        from idbench.landmarks import landmarks68

        face.landmarks68 = landmarks68(image, face.box)
    lm = np.asarray(face.landmarks68, np.float64)
    if lm.shape != (68, 2):
        raise InputError(f"expected 68 x 2 landmarks, got {lm.shape}")
    return lm


# ==============================================================================================
# Geometry: the generic 3-D face model, Euler angles, mirroring
# ==============================================================================================

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


# ==============================================================================================
# pose.pnp
# ==============================================================================================

POSE_COLUMNS = ("yaw", "pitch", "roll")
GAZE_COLUMNS = ("pitch", "yaw")


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
        return solve_head_pose(_landmarks68(image, face), image.shape, self.focal)[0]

    def _estimate(self, image, face):
        return euler_from_rotation(self.rotation(image, face))


@register_estimator(EstimatorSpec(
    "pose.pnp", "pose", "yaw/pitch/roll from 68 dlib landmarks + a generic 3-D face model (cv2.solvePnP); offline",
    POSE_COLUMNS, units="degrees", paper="generic-model PnP head pose (e.g. Murphy-Chutorian & Trivedi, TPAMI 2009)",
    licence="idbench (MIT); model points written for idbench"))
def _pose_pnp(spec, weights_path=None, device="cpu", focal: Optional[float] = None):
    return PnPPoseEstimator(spec, focal)


# ==============================================================================================
# gaze.iris
# ==============================================================================================

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
        R, t, _ = solve_head_pose(_landmarks68(image, face), image.shape, self.focal)
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
    licence="mediapipe: Apache-2.0"))
def _gaze_iris(spec, weights_path=None, device="cpu", focal: Optional[float] = None):
    return IrisGazeEstimator(spec, "camera", focal)


@register_estimator(EstimatorSpec(
    "gaze.iris_head", "gaze", "pitch/yaw of the eyes relative to the head (MediaPipe iris + pose.pnp); offline",
    GAZE_COLUMNS, units="degrees", paper="MediaPipe Iris (Ablavatski et al., CVPRW 2020)",
    licence="mediapipe: Apache-2.0"))
def _gaze_iris_head(spec, weights_path=None, device="cpu"):
    return IrisGazeEstimator(spec, "head")


# ==============================================================================================
# expression.landmarks
# ==============================================================================================

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
        return expression_features(_landmarks68(image, face))


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


# ==============================================================================================
# Networks with published weights: HopeNet, L2CS-Net, Deep3DFaceRecon
# ==============================================================================================

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_RESNET50_MIN_BYTES = 50_000_000  # float32 ResNet-50 trunks are ~94 MB; a smaller file is truncated

HOPENET_WEIGHTS = WeightSource(
    "hopenet_robust_alpha1.pkl",
    "natanielruiz/deep-head-pose README (300W-LP, alpha 1, robust to image quality; Google Drive link)",
    search=("$TORCH_HOME/checkpoints",), min_bytes=_RESNET50_MIN_BYTES)
L2CS_WEIGHTS = WeightSource(
    "L2CSNet_gaze360.pkl", "Ahmednull/L2CS-Net README (Gaze360 ResNet-50 model; Google Drive link)",
    search=("$TORCH_HOME/checkpoints",), min_bytes=_RESNET50_MIN_BYTES)
DEEP3D_WEIGHTS = WeightSource(
    "epoch_20.pth", "sicxu/Deep3DFaceRecon_pytorch README (checkpoints/<name>/epoch_20.pth, 'face_recon' model)",
    search=("$TORCH_HOME/checkpoints", "$TORCH_HOME/checkpoints/face_recon"), min_bytes=_RESNET50_MIN_BYTES)


def _resnet50_trunk():
    """torchvision's ResNet-50 (random init) -- the trunk of all three networks."""
    import torchvision

    return torchvision.models.resnet50(weights=None)


def _binned_resnet(heads: Dict[str, int]):
    """ResNet-50 trunk + one linear head per angle (``heads``: name -> bins) + the vestigial
    ``fc_finetune`` (2051 -> 3) both published checkpoints carry. Parameter names match
    HopeNet's and L2CS-Net's modules (``conv1``, ``layer1``..``layer4``, ``fc_yaw``...)."""
    import torch
    from torch import nn

    class BinnedResNet(nn.Module):
        def __init__(self):
            super().__init__()
            t = _resnet50_trunk()
            self.conv1, self.bn1, self.relu, self.maxpool = t.conv1, t.bn1, t.relu, t.maxpool
            self.layer1, self.layer2, self.layer3, self.layer4 = t.layer1, t.layer2, t.layer3, t.layer4
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.head_names = tuple(heads)
            for name, bins in heads.items():
                setattr(self, name, nn.Linear(2048, bins))
            self.fc_finetune = nn.Linear(2048 + 3, 3)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            x = torch.flatten(self.avgpool(x), 1)
            return tuple(getattr(self, n)(x) for n in self.head_names)

    return BinnedResNet()


def _deep3d_net():
    """Deep3DFaceRecon's ``ReconNetWrapper('resnet50')``: ``backbone`` (ResNet-50 without fc) and
    ``final_layers``, seven 1x1 convolutions 2048 -> 80 (id), 64 (exp), 80 (tex), 3 (angles),
    27 (gamma), 2 (tx, ty), 1 (tz) whose outputs concatenate to the 257 coefficients."""
    import torch
    from torch import nn

    class Deep3DRecon(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = _resnet50_trunk()
            self.backbone.fc = nn.Identity()
            self.final_layers = nn.ModuleList([nn.Conv2d(2048, n, 1, bias=True) for n in DEEP3D_PARTS.values()])

        def forward(self, x):
            f = self.backbone(x).reshape(x.shape[0], 2048, 1, 1)
            return torch.cat([layer(f) for layer in self.final_layers], 1).flatten(1)

    return Deep3DRecon()


DEEP3D_PARTS = {"id": 80, "exp": 64, "tex": 80, "angle": 3, "gamma": 27, "txy": 2, "tz": 1}


def _read_checkpoint(path: Path, key: Optional[str] = None, unsafe: bool = False) -> dict:
    """A state dict from a torch checkpoint (``key``: the entry of a dict of several nets)."""
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=not unsafe)
    except Exception as e:  # truncated zip, not a pickle, disallowed globals...
        msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        if not unsafe and "weights_only" in str(e):
            raise WeightsFormatError(f"{path}: holds objects other than tensors, which torch.load(weights_only=True) "
                                     f"refuses ({msg}); if the file is genuine and trusted, create the estimator "
                                     f"with unsafe_load=True") from None
        raise WeightsFormatError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {msg}); "
                                 f"truncated or corrupt download?") from None
    if key is not None and isinstance(obj, dict) and key in obj:
        obj = obj[key]
    elif key is not None and isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsFormatError(f"{path}: checkpoint has no '{key}' entry (entries: {', '.join(map(str, obj))[:200]})")
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsFormatError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def _load_state(module, sd: dict, path: Path, what: str, optional: Tuple[str, ...] = ()) -> None:
    own = module.state_dict()
    skip = lambda k: k.endswith("num_batches_tracked") or k.startswith(optional)
    missing = [k for k in own if k not in sd and not skip(k)]
    unexpected = [k for k in sd if k not in own and not k.endswith("num_batches_tracked")]
    wrong = [f"{k} {tuple(sd[k].shape)} != {tuple(own[k].shape)}" for k in own
             if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"shape mismatch: {'; '.join(wrong[:3])}")
        raise WeightsFormatError(f"{path}: not a {what} state dict: {', '.join(parts)}")
    module.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)


def _clamped_crop(image: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    h, w = image.shape[:2]
    x0, y0 = int(max(x0, 0)), int(max(y0, 0))
    x1, y1 = int(min(x1, w)), int(min(y1, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise NoFaceError(f"face box ({x0}, {y0}, {x1}, {y1}) lies outside the image")
    return image[y0:y1, x0:x1]


def _resize(img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """cv2 resize to (W, H), area filter when shrinking (as PIL's antialiased resize)."""
    import cv2

    w, h = size
    shrink = w < img.shape[1] or h < img.shape[0]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class _TorchEstimator(Estimator):
    batch_size = 16

    def __init__(self, spec, module, weights_path, device):
        super().__init__(spec, weights_path)
        import torch

        self.device = torch.device(device)
        self.module = module.to(self.device).eval()

    def preprocess(self, image: np.ndarray, face: Face) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _to_tensor(self, crops: List[np.ndarray]):
        import torch

        x = torch.from_numpy(np.stack(crops)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def _decode(self, outputs) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, crops: List[np.ndarray]):
        import torch

        with torch.inference_mode():
            return self.module(self._to_tensor(crops))

    def _estimate_batch(self, images, faces):
        crops = [self.preprocess(im, f) for im, f in zip(images, faces)]
        out = []
        for i in range(0, len(crops), self.batch_size):
            out.append(self._decode(self.forward(crops[i:i + self.batch_size])))
        return list(np.concatenate(out))


def _expected_angle(logits, step: float, offset: float):
    """Soft-argmax over bins: sum_i softmax(logits)_i * i * step - offset (degrees)."""
    import torch

    idx = torch.arange(logits.shape[1], dtype=torch.float32, device=logits.device)
    return (torch.softmax(logits.float(), 1) * idx).sum(1) * step - offset


class HopeNetEstimator(_TorchEstimator):
    """HopeNet (Ruiz, Chong & Rehg, "Fine-Grained Head Pose Estimation Without Keypoints", CVPRW 2018).

    ResNet-50 with three 66-bin heads (3-degree bins from -99 to +99); the angle is the expected
    value over the softmax, ``sum_i p_i * i * 3 - 99``. Input as in the authors' ``test_on_video_dlib.py``:
    the face box widened by half its width on each side, 3/4 of its height upwards and 1/4 downwards
    (clamped to the image), resized (shorter side 224) and centre-cropped to 224 x 224, RGB with
    ImageNet mean/std. Trained on 300W-LP with dlib-CNN-like boxes; idbench's default detector
    gives similar (HOG) boxes. HopeNet's signs are idbench's: yaw > 0 towards image left, pitch > 0
    up, roll > 0 clockwise (its ``draw_axis``), so the three values are returned unchanged.
    """

    def preprocess(self, image, face):
        x0, y0, x1, y1 = [float(v) for v in face.box]
        w, h = abs(x1 - x0), abs(y1 - y0)
        crop = _clamped_crop(image, x0 - w / 2, y0 - 3 * h / 4, x1 + w / 2, y1 + h / 4)
        ch, cw = crop.shape[:2]
        s = 224.0 / min(ch, cw)
        nw, nh = max(224, int(round(cw * s))), max(224, int(round(ch * s)))
        r = _resize(crop, (nw, nh))
        top, left = (nh - 224) // 2, (nw - 224) // 2
        return np.ascontiguousarray(r[top:top + 224, left:left + 224])

    def _decode(self, outputs):
        yaw, pitch, roll = (_expected_angle(o, 3.0, 99.0) for o in outputs)
        import torch

        return torch.stack([yaw, pitch, roll], 1).cpu().numpy().astype(np.float64)


class L2CSEstimator(_TorchEstimator):
    """L2CS-Net (Abdelrahman et al., "L2CS-Net: Fine-Grained Gaze Estimation in Unconstrained
    Environments", 2022), Gaze360 model: ResNet-50 with two 90-bin heads (4-degree bins from -180),
    angle = ``sum_i p_i * i * 4 - 180``.

    The first head (``fc_yaw_gaze``) is the horizontal angle, the second (``fc_pitch_gaze``) the
    vertical one: Gaze360's labels are (yaw, pitch) with the direction ``(-cos p sin y, -sin p,
    -cos p cos y)``, idbench's gaze convention, so no sign change is needed; idbench returns
    (pitch, yaw). Input as in L2CS's pipeline: the face box (clamped to the image) resized to
    448 x 448, RGB, ImageNet mean/std. L2CS was trained on RetinaFace boxes, a little looser than dlib's.
    """

    batch_size = 8

    def preprocess(self, image, face):
        x0, y0, x1, y1 = [float(v) for v in face.box]
        return _resize(_clamped_crop(image, x0, y0, x1, y1), (448, 448))

    def _decode(self, outputs):
        import torch

        yaw = _expected_angle(outputs[0], 4.0, 180.0)
        pitch = _expected_angle(outputs[1], 4.0, 180.0)
        return torch.stack([pitch, yaw], 1).cpu().numpy().astype(np.float64)


# The 5 landmarks of the BFM mean face that Deep3DFaceRecon aligns images with (eye centres, nose
# tip, mouth corners; x right, y up, BFM units), computed as its ``load_lm3d`` does from
# ``BFM/similarity_Lm3D_all.mat`` of sicxu/Deep3DFaceRecon_pytorch (MIT licence).
DEEP3D_LM3D = np.array([
    [-0.31148657, 0.29036078, 0.13377953],
    [0.30979887, 0.28972036, 0.13179526],
    [0.0032535, -0.04617932, 0.55244243],
    [-0.25216928, -0.38133916, 0.22405732],
    [0.2484662, -0.38128236, 0.22235769],
])


def deep3d_align(image: np.ndarray, lm5: np.ndarray, target: int = 224, rescale: float = 102.0) -> np.ndarray:
    """Deep3DFaceRecon's ``align_img``: scale and translation (no rotation) from a least-squares
    affine camera fit (``POS``) of the 5 landmarks to :data:`DEEP3D_LM3D`, image resized by
    ``102 / s`` and cropped to 224 x 224 around the projected model origin (zero padding outside)."""
    import cv2

    h0, w0 = image.shape[:2]
    xp = np.asarray(lm5, np.float64).copy()
    xp[:, 1] = h0 - 1 - xp[:, 1]  # Deep3D works with y up
    n = len(xp)
    A = np.zeros((2 * n, 8))
    A[0::2, 0:3] = DEEP3D_LM3D
    A[0::2, 3] = 1
    A[1::2, 4:7] = DEEP3D_LM3D
    A[1::2, 7] = 1
    k = np.linalg.lstsq(A, xp.reshape(-1), rcond=None)[0]
    s = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2
    t = np.array([k[3], k[7]])
    s = rescale / s
    w, h = int(w0 * s), int(h0 * s)
    left = int(w / 2 - target / 2 + (t[0] - w0 / 2) * s)
    up = int(h / 2 - target / 2 + (h0 / 2 - t[1]) * s)
    if w < 1 or h < 1:
        raise NoFaceError("Deep3D alignment: degenerate landmarks")
    resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    out = np.zeros((target, target, 3), np.uint8)
    sx0, sy0 = max(left, 0), max(up, 0)
    sx1, sy1 = min(left + target, w), min(up + target, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - up:sy1 - up, sx0 - left:sx1 - left] = resized[sy0:sy1, sx0:sx1]
    return out


class Deep3DEstimator(_TorchEstimator):
    """Deep3DFaceRecon (Deng et al., "Accurate 3D Face Reconstruction with Weakly-Supervised
    Learning", CVPRW 2019; PyTorch release sicxu/Deep3DFaceRecon_pytorch): a ResNet-50 regressing
    the 257 coefficients of the BFM 2009 + FaceWarehouse expression 3DMM -- 80 identity, 64
    expression, 80 texture, 3 angles, 27 lighting (SH), 3 translation.

    Input: the image aligned by :func:`deep3d_align` from the 5 points of dlib's 68 landmarks
    (eye-corner means, nose tip 30, mouth corners 48 and 54, as Deep3D's ``extract_5p``),
    224 x 224 RGB in [0, 1] (no mean/std). ``part="exp"`` (``expression.deep3d``) returns the 64
    expression coefficients, ``part="id"`` (``shape.deep3d``) the 80 identity coefficients;
    :meth:`coefficients` gives every part.
    """

    def __init__(self, spec, module, weights_path, device, part: str):
        super().__init__(spec, module, weights_path, device)
        self.part = part

    def preprocess(self, image, face):
        lm5 = landmarks68_to_5(_landmarks68(image, face))
        return deep3d_align(image, lm5)

    def _to_tensor(self, crops):
        import torch

        return torch.from_numpy(np.stack(crops)).to(self.device).permute(0, 3, 1, 2).float() / 255.0

    def _split(self, out: np.ndarray) -> Dict[str, np.ndarray]:
        parts, i = {}, 0
        for name, n in DEEP3D_PARTS.items():
            parts[name] = out[:, i:i + n]
            i += n
        return parts

    def _decode(self, outputs):
        return self._split(outputs.float().cpu().numpy().astype(np.float64))[self.part]

    def coefficients(self, image: np.ndarray, face: Optional[Face] = None) -> Dict[str, np.ndarray]:
        """All 257 coefficients of one face split by part: id, exp, tex, angle, gamma, txy, tz."""
        image = _check_image(image)
        face = _face_or_detect(image, face)
        out = self.forward([self.preprocess(image, face)]).float().cpu().numpy().astype(np.float64)
        return {k: v[0] for k, v in self._split(out).items()}

    def estimate_shape(self, image: np.ndarray, face: Optional[Face] = None) -> np.ndarray:
        """The 80 identity (shape) coefficients, for :func:`idbench.analysis.shape_error`."""
        return self.coefficients(image, face)["id"]


def _hopenet_module(path: Path, unsafe: bool = False):
    m = _binned_resnet({"fc_yaw": 66, "fc_pitch": 66, "fc_roll": 66})
    _load_state(m, _read_checkpoint(path, unsafe=unsafe), path, "HopeNet (ResNet-50, 3 x 66 bins)",
                optional=("fc_finetune.",))
    return m


def _l2cs_module(path: Path, unsafe: bool = False):
    m = _binned_resnet({"fc_yaw_gaze": 90, "fc_pitch_gaze": 90})
    _load_state(m, _read_checkpoint(path, unsafe=unsafe), path, "L2CS-Net (ResNet-50, 2 x 90 bins)",
                optional=("fc_finetune.",))
    return m


def _deep3d_module(path: Path, unsafe: bool = False):
    m = _deep3d_net()
    _load_state(m, _read_checkpoint(path, key="net_recon", unsafe=unsafe), path,
                "Deep3DFaceRecon net_recon (ResNet-50, 257 coefficients)")
    return m


@register_estimator(EstimatorSpec(
    "pose.hopenet", "pose", "HopeNet ResNet-50, 3 x 66 bins (300W-LP); user weights hopenet_robust_alpha1.pkl",
    POSE_COLUMNS, weights=(HOPENET_WEIGHTS,), units="degrees",
    paper="Ruiz, Chong & Rehg, Fine-Grained Head Pose Estimation Without Keypoints, CVPRW 2018",
    licence="code: Apache-2.0 (deep-head-pose); weights: trained on 300W-LP (research use)"))
def _pose_hopenet(spec, weights_path, device="cpu", unsafe_load: bool = False):
    return HopeNetEstimator(spec, _hopenet_module(weights_path, unsafe_load), weights_path, device)


@register_estimator(EstimatorSpec(
    "gaze.l2cs", "gaze", "L2CS-Net ResNet-50, 2 x 90 bins (Gaze360); user weights L2CSNet_gaze360.pkl",
    GAZE_COLUMNS, weights=(L2CS_WEIGHTS,), units="degrees",
    paper="Abdelrahman et al., L2CS-Net: Fine-Grained Gaze Estimation in Unconstrained Environments, 2022",
    licence="code: MIT (L2CS-Net); weights: trained on Gaze360 (research use)"))
def _gaze_l2cs(spec, weights_path, device="cpu", unsafe_load: bool = False):
    return L2CSEstimator(spec, _l2cs_module(weights_path, unsafe_load), weights_path, device)


_DEEP3D_PAPER = "Deng et al., Accurate 3D Face Reconstruction with Weakly-Supervised Learning, CVPRW 2019"
_DEEP3D_LICENCE = "code: MIT (Deep3DFaceRecon_pytorch); 3DMM: Basel Face Model 2009 licence"


@register_estimator(EstimatorSpec(
    "expression.deep3d", "expression", "Deep3DFaceRecon ResNet-50: 64 3DMM expression coefficients; user weights "
    "epoch_20.pth", tuple(f"exp_{i:02d}" for i in range(64)), weights=(DEEP3D_WEIGHTS,), units="3DMM coefficients",
    paper=_DEEP3D_PAPER, licence=_DEEP3D_LICENCE))
def _expression_deep3d(spec, weights_path, device="cpu", unsafe_load: bool = False):
    return Deep3DEstimator(spec, _deep3d_module(weights_path, unsafe_load), weights_path, device, "exp")


@register_estimator(EstimatorSpec(
    "shape.deep3d", "shape", "Deep3DFaceRecon ResNet-50: 80 3DMM identity (shape) coefficients; user weights "
    "epoch_20.pth", tuple(f"id_{i:02d}" for i in range(80)), weights=(DEEP3D_WEIGHTS,), units="3DMM coefficients",
    paper=_DEEP3D_PAPER, licence=_DEEP3D_LICENCE))
def _shape_deep3d(spec, weights_path, device="cpu", unsafe_load: bool = False):
    return Deep3DEstimator(spec, _deep3d_module(weights_path, unsafe_load), weights_path, device, "id")
