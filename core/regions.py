"""Named face regions and their masks: the one place each region is defined.

A region name says which pixels count as "the face" wherever it matters (the pseudo-swap's blend
mask, the saliency ratio); results record the name used.

* ``inner``: brows, eyes, nose and mouth: the convex hull of iBUG points 17-67 (jaw outline, cheeks'
  edge, forehead, hair and background outside). With only 5 ArcFace points, their hull grown by
  0.4 x the inter-ocular distance (a rough stand-in).
* ``face``: the whole face as BlendFace's blending recipe masks it: the convex hull of the jaw line
  (points 0-16) and the brows (17-26) raised by ``BROW_RAISE`` x the brow-to-chin distance along the
  face's own up direction (takes in the lower forehead, not the hair).
* ``parsing:PATH``: a BiSeNet face-parsing map (face-parsing.PyTorch ``79999_iter.pth`` at PATH),
  classes skin, brows, eyes, glasses, nose, mouth, lips (:mod:`idbench.parsing`; needs torch).

Masks are float32 H x W with values 0/1.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Optional, Tuple, Union

import numpy as np

from .errors import InputError

REGIONS = ("inner", "face", "parsing:<PATH>")
BROW_RAISE = 0.12  # share of the brow-to-chin distance the brows are lifted in the ``face`` region
INNER_POINTS = slice(17, 68)  # brows, eyes, nose, mouth
JAW_POINTS = slice(0, 17)
BROW_POINTS = slice(17, 27)
MaskFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (RGB uint8 image, 68 x 2 landmarks) -> H x W


def _fill_hull(points: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    import cv2

    hull = cv2.convexHull(np.asarray(points, np.float32)).reshape(-1, 2)
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(hull * 16).astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(np.float32)


def inner_mask(landmarks: np.ndarray, shape: Tuple[int, int], margin: float = 0.0) -> np.ndarray:
    """The ``inner`` region: hull of points 17-67 (68 points) or of the 5 points grown by 0.4 IOD.

    ``margin`` grows the hull by that fraction of the inter-ocular distance.
    """
    p = np.asarray(landmarks, np.float64)
    if p.shape == (68, 2):
        pts, iod = p[INNER_POINTS], float(np.linalg.norm(p[45] - p[36]))
    elif p.shape == (5, 2):
        pts, iod, margin = p, float(np.linalg.norm(p[1] - p[0])), margin + 0.4
    else:
        raise InputError(f"landmarks must be 68 x 2 or 5 x 2, got {p.shape}")
    if not np.all(np.isfinite(pts)):
        raise InputError("landmarks contain NaN or inf")
    if margin > 0:
        import cv2

        hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)
        d = hull - hull.mean(0)
        pts = hull + d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6) * margin * iod
    return _fill_hull(pts, shape)


def face_mask(landmarks68: np.ndarray, shape: Tuple[int, int], brow_raise: float = BROW_RAISE) -> np.ndarray:
    """The ``face`` region: hull of the jaw line and the raised brows (68 points)."""
    p = np.asarray(landmarks68, np.float64)
    if p.shape != (68, 2):
        raise InputError(f"the 'face' region needs 68 x 2 landmarks, got {p.shape}")
    jaw, brows = p[JAW_POINTS], p[BROW_POINTS].copy()
    up = brows.mean(0) - p[8]
    h = float(np.hypot(*up))
    if h > 0:
        brows += up / h * (brow_raise * h)
    return _fill_hull(np.concatenate([jaw, brows]), shape)


def check_region(name: str) -> str:
    """``name`` if it is a known region (``parsing:`` with a path), else a one-line :class:`InputError`."""
    if name in ("inner", "face") or (isinstance(name, str) and name.startswith("parsing:") and len(name) > 8):
        return name
    if name == "landmarks":  # the former name of the blend mask's region
        return "face"
    raise InputError(f"unknown face region {name!r}: use {', '.join(REGIONS)}")


def _inner_of_image(image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    return inner_mask(lm, image.shape[:2])


def _face_of_image(image: np.ndarray, lm: np.ndarray, brow_raise: float = BROW_RAISE) -> np.ndarray:
    return face_mask(lm, image.shape[:2], brow_raise)


def region_mask_fn(region: Union[str, MaskFn, None] = "face", device: str = "cpu",
                   brow_raise: float = BROW_RAISE) -> MaskFn:
    """A mask function ``(image, landmarks68) -> H x W`` for a region name (or a callable, returned as is)."""
    if callable(region):
        return region
    name = check_region("face" if region is None else region)
    if name == "inner":
        return _inner_of_image
    if name == "face":
        return partial(_face_of_image, brow_raise=brow_raise)  # picklable: swaps are built in worker processes
    from .parsing import ParsingMask  # torch only when asked for

    return ParsingMask(name.split(":", 1)[1], device=device)


def region_mask(region: str, landmarks: np.ndarray, shape: Tuple[int, int],
                image: Optional[np.ndarray] = None) -> np.ndarray:
    """The mask of ``region`` for a face with these landmarks in an image of ``shape`` (H, W)."""
    name = check_region(region)
    if name == "inner":
        return inner_mask(landmarks, shape)
    if name == "face":
        return face_mask(landmarks, shape)
    if image is None:
        raise InputError(f"region {name!r} needs the image, not only its landmarks")
    return region_mask_fn(name)(image, landmarks)
