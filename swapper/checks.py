"""The per-item input checks every pair swapper shares: an image as uint8 RGB, a face with 68 landmarks
inside it and large enough. Each failure is a :class:`~idbench.swapper.types.SwapError` with a short reason."""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from idbench.errors import IdbenchError
from idbench.faces import Face

from .types import SwapError

MIN_FACE_PX = 32
JAW_SLACK = 0.1  # how far (share of the face size) jaw points may lie outside the image


def prepare_image(image) -> np.ndarray:
    """uint8 RGB H x W x 3 from an array (grayscale accepted and converted) or a path."""
    from idbench.imageio import read_image, to_rgb_uint8

    if isinstance(image, (str, os.PathLike)):
        try:
            return read_image(image)
        except IdbenchError as e:
            raise SwapError("unreadable image", str(e)) from None
    if not isinstance(image, np.ndarray):
        raise SwapError("bad image", f"expected a numpy array or a path, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise SwapError("bad image", f"images must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 2)):
        return to_rgb_uint8(image, bgr=False)  # grayscale: replicated to 3 channels
    if image.ndim == 3 and image.shape[2] == 4:
        return to_rgb_uint8(image, bgr=False)
    if image.ndim != 3 or image.shape[2] != 3:
        raise SwapError("bad image", f"expected H x W x 3 (or grayscale H x W), got shape {image.shape}")
    if min(image.shape[:2]) == 0:
        raise SwapError("bad image", "empty image")
    return image


def face_landmarks(image: np.ndarray, face: Optional[Face], min_face: float = MIN_FACE_PX) -> np.ndarray:
    """The face's 68 landmarks after the per-item checks (no face, outside the image, too small)."""
    if face is None:
        raise SwapError("no face", "no face was detected in this image")
    return check_landmarks(face.with_landmarks68(image).landmarks68, image.shape[:2], min_face)


def check_landmarks(landmarks68, shape, min_face: float = MIN_FACE_PX) -> np.ndarray:
    """68 landmarks (float64) if they are finite, inside an image of ``shape`` (H, W) and at least
    ``min_face`` px across; else :class:`SwapError`. Needs the image's size only, not its pixels."""
    lm = np.asarray(landmarks68, np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise SwapError("bad landmarks", f"expected 68 x 2 finite landmarks, got {lm.shape}")
    h, w = shape
    size = float(np.ptp(lm, axis=0).max())
    # inner points (brows, eyes, nose, mouth) must be inside; the jaw line may run off a tight crop by
    # up to ``JAW_SLACK`` of the face size (those pixels are simply not blended)
    slack = np.where(np.arange(68) < 17, JAW_SLACK * size, 0.0)
    out = ((lm[:, 0] < -slack) | (lm[:, 1] < -slack) | (lm[:, 0] > w - 1 + slack) | (lm[:, 1] > h - 1 + slack))
    if out.any():
        raise SwapError("landmarks outside the image",
                        f"{int(out.sum())} of 68 points outside a {w}x{h} image (x {lm[:, 0].min():.0f}.."
                        f"{lm[:, 0].max():.0f}, y {lm[:, 1].min():.0f}..{lm[:, 1].max():.0f})")
    if size < min_face:
        raise SwapError("face too small", f"landmark extent {size:.0f} px < {min_face:.0f} px")
    return lm


def checked_pair(source_image, source_face: Optional[Face], other_image, other_face: Optional[Face],
                 min_face: float = MIN_FACE_PX, other: str = "target"):
    """Both images as RGB uint8 with their 68 landmarks; a :class:`SwapError` says which side failed."""
    out = []
    for role, image, face in (("source", source_image, source_face), (other, other_image, other_face)):
        img = prepare_image(image)
        try:
            out += [img, face_landmarks(img, face, min_face)]
        except SwapError as e:
            raise SwapError(e.reason, f"{role}: {e.detail}") from None
    return tuple(out)
