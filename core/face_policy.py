"""Which detected faces of an image are used: the minimum face size and the multi-face policy.

Applied after detection (and after the detection cache, so changing the policy never re-detects).
Every choice that drops or picks faces is recorded as a warning on the image, and an image left
without a face gets a one-line reason, so nothing is dropped silently:

* faces smaller than ``min_size`` pixels (the box's shorter side; default 32, below which the
  5-point alignment and the encoders' 112-160 px inputs are mostly upsampling noise) are dropped;
* several faces left: ``largest`` (default) keeps the largest, ``center`` the one nearest the
  image centre (or the dataset's own point: LFW), ``all`` keeps every face, ``skip`` drops the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from .errors import InputError
from .faces import Face

MIN_FACE_PX = 32
MULTI_FACE_POLICIES = ("largest", "center", "all", "skip")


@dataclass(frozen=True)
class FacePolicy:
    multi_face: str = "largest"
    min_size: int = MIN_FACE_PX

    def __post_init__(self) -> None:
        if self.multi_face not in MULTI_FACE_POLICIES:
            from .errors import UnknownNameError

            raise UnknownNameError("--multi-face policy", self.multi_face, MULTI_FACE_POLICIES)
        if self.min_size < 0:
            raise InputError(f"--min-face must be >= 0 pixels, got {self.min_size}")


@dataclass
class Selection:
    faces: List[Face]
    error: Optional[str] = None  # set when no face is kept
    warnings: List[str] = field(default_factory=list)


def resolve_policy(policy: Optional[FacePolicy], all_faces: bool = False) -> FacePolicy:
    """The policy to apply: an explicit one, else ``all`` for ``all_faces=True``, else the default."""
    if policy is not None:
        return policy
    return FacePolicy("all") if all_faces else FacePolicy()


def _size(f: Face) -> float:
    return min(f.width, f.height)


def _describe(f: Face) -> str:
    x1, y1, x2, y2 = (int(round(float(v))) for v in f.box)
    return f"{x2 - x1}x{y2 - y1} px at ({x1},{y1})"


def select_faces(faces: Sequence[Face], policy: FacePolicy, center: Optional[Tuple[float, float]] = None,
                 image_size: Optional[Callable[[], Tuple[int, int]]] = None) -> Selection:
    """Apply ``policy`` to an image's detected faces (largest first).

    ``center`` (x, y) is the dataset's own point for the ``largest``/``center`` choice (LFW's
    labelled face is the one in the middle); ``image_size()`` gives (height, width) for the
    ``center`` policy without one (called only then: a warm cache decodes no image).
    """
    faces = sorted(faces, key=lambda f: -f.area)  # stable: detectors already give largest first
    if not faces:
        return Selection([], "no face detected")
    big = [f for f in faces if _size(f) >= policy.min_size]
    warnings: List[str] = []
    if not big:
        return Selection([], f"face too small: {_describe(faces[0])} is below --min-face {policy.min_size} px")
    if len(big) < len(faces):
        warnings.append(f"{len(faces) - len(big)} face(s) below --min-face {policy.min_size} px ignored")
    if len(big) == 1:
        return Selection(big, None, warnings)
    n = len(big)
    mode = "center" if center is not None and policy.multi_face == "largest" else policy.multi_face
    if mode == "skip":
        return Selection([], f"{n} faces and --multi-face skip", warnings)
    if mode == "all":
        return Selection(big, None, warnings + [f"{n} faces: all embedded (--multi-face all)"])
    if mode == "center":
        if center is None:
            h, w = image_size() if image_size is not None else (0, 0)
            center = (w / 2.0, h / 2.0)
        c = np.asarray(center, np.float32)
        pick = min(big, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - c)))
        how = f"the one nearest ({c[0]:.0f},{c[1]:.0f})"
    else:
        pick, how = big[0], "the largest"
    warnings.append(f"{n} faces: kept {how}, {_describe(pick)} (--multi-face largest|center|all|skip)")
    return Selection([pick], None, warnings)


def apply_face_policy(item, faces: Sequence[Face], policy: FacePolicy,
                      center: Optional[Tuple[float, float]] = None):
    """Set a detected image's ``faces``/``error``/``warnings`` from its detections (the hook of
    :func:`idbench.encoders.pipeline.detect_file`); the EXIF orientation applied is recorded too."""
    from .imageio import orientation_note

    sel = select_faces(faces, policy, center, lambda: item.image.shape[:2])
    note = orientation_note(item._data) if item._data else None
    item.faces, item.error = sel.faces, sel.error
    item.warnings = ([note] if note else []) + sel.warnings
    return item


def image_warnings(images) -> List[dict]:
    """``{stage, item, reason}`` rows for every warning of the detected images, in order."""
    from .errors import dropped

    return [dropped("decode" if w.startswith("EXIF") else "face-policy", d.path, w)
            for d in images for w in getattr(d, "warnings", [])]
