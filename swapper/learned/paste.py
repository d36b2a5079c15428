"""Crop a face for a swapper and paste the swapped crop back into the full frame.

The crop geometry is :mod:`idbench.align`'s one crop matrix (:func:`idbench.align.alignment_matrix`, the matrix
the encoders' crops are warped with); pasting back goes through its inverse (:func:`idbench.align.invert_matrix`). The blend mask is built in crop coordinates, as
insightface's ``INSwapper.get(paste_back=True)`` and SimSwap's ``reverse2wholeimage`` do in effect: the crop's
square eroded by ``erode`` of its side (half on each edge) and blurred by a Gaussian of ``blur`` of its side,
then warped with the crop, so the seam scales with the face and the crop's own border never shows.
Only the frame's region under the warped crop is touched.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from idbench.align import alignment_matrix, invert_matrix, warp_affine
from idbench.faces import Face

from .spec import Crop

ERODE = 0.1  # share of the crop side removed by the erosion (insightface: kernel mask_size // 10)
BLUR = 0.05  # Gaussian half-width as a share of the crop side (insightface: mask_size // 20)


ALIGNMENTS = {"arcface": "arcface112", "ffhq": "ffhq256"}  # a swapper's crop -> idbench.align's alignment


def crop_matrix(image: np.ndarray, face: Face, crop: Crop) -> np.ndarray:
    """The 2 x 3 affine map from ``image`` pixels onto the swapper's ``crop`` of ``face``."""
    if crop.alignment not in ALIGNMENTS:
        raise ValueError(f"unknown crop alignment {crop.alignment!r}")
    return alignment_matrix(image, face, ALIGNMENTS[crop.alignment], crop.size)


def crop_face(image: np.ndarray, face: Face, crop: Crop) -> Tuple[np.ndarray, np.ndarray]:
    """(uint8 crop, matrix). ArcFace crops have a black border (``norm_crop``), FFHQ crops a reflected one."""
    m = crop_matrix(image, face, crop)
    return warp_affine(image, m, crop.size, reflect=crop.alignment == "ffhq"), m


def crop_mask(size: int, erode: float = ERODE, blur: float = BLUR) -> np.ndarray:
    """float32 size x size: 1 inside the eroded square, a Gaussian ramp to 0 at the crop border."""
    import cv2

    radius = max(1, int(round(size * blur)))
    band = max(radius + 1, int(round(size * erode / 2)))  # wider than the blur: exactly 0 on the crop's edge
    mask = np.zeros((size, size), np.float32)
    mask[band:size - band, band:size - band] = 1.0
    return cv2.GaussianBlur(mask, (2 * radius + 1, 2 * radius + 1), 0)


def _roi(inv: np.ndarray, size: int, shape: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """The frame box (x0, y0, x1, y1) covered by the crop square mapped back by ``inv``."""
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float64)
    pts = corners @ inv[:, :2].T + inv[:, 2]
    h, w = shape
    x0, y0 = np.floor(pts.min(0)).astype(int) - 1
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 2
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def paste_back(frame: np.ndarray, crop: np.ndarray, matrix: np.ndarray, erode: float = ERODE,
               blur: float = BLUR) -> Tuple[np.ndarray, np.ndarray]:
    """Paste a swapped ``crop`` (uint8 S x S x 3) into ``frame`` through the inverse of ``matrix``.

    Returns ``(image, mask)``: the uint8 frame with the face replaced and the float32 H x W blend mask
    in [0, 1] (0 wherever the frame is unchanged).
    """
    import cv2

    size = crop.shape[0]
    h, w = frame.shape[:2]
    inv = invert_matrix(matrix)
    x0, y0, x1, y1 = _roi(inv, size, (h, w))
    image = frame.copy()
    full_mask = np.zeros((h, w), np.float32)
    if x1 <= x0 or y1 <= y0:  # the crop lies outside the frame: nothing to paste
        return image, full_mask
    shifted = inv.copy()
    shifted[:, 2] -= (x0, y0)
    dsize = (x1 - x0, y1 - y0)
    face = cv2.warpAffine(crop, shifted, dsize, flags=cv2.INTER_LINEAR, borderValue=0.0).astype(np.float32)
    mask = cv2.warpAffine(crop_mask(size, erode, blur), shifted, dsize, flags=cv2.INTER_LINEAR, borderValue=0.0)
    region = image[y0:y1, x0:x1].astype(np.float32)
    out = mask[..., None] * face + (1.0 - mask[..., None]) * region
    image[y0:y1, x0:x1] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    full_mask[y0:y1, x0:x1] = mask
    return image, full_mask
