"""Reading images into one canonical form: uint8 RGB, H x W x 3.

Handles grayscale, gray+alpha, RGBA (alpha dropped, composited on black), 16-bit and float
images; corrupt files and non-images raise :class:`ImageReadError` with a one-line message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, List

import numpy as np

from .errors import ImageReadError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
MAX_PIXELS = 20000 * 20000


def to_rgb_uint8(img: np.ndarray, *, bgr: bool = True) -> np.ndarray:
    """Convert any decoded array (gray, gray+alpha, 3/4 channels, 8/16-bit, float) to uint8 RGB."""
    a = np.asarray(img)
    if a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif a.dtype.kind == "f":
        scale = 255.0 if float(np.nanmax(a)) <= 1.0 else 1.0
        a = np.clip(np.nan_to_num(a) * scale, 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3:
        raise ImageReadError(f"unsupported image array of shape {a.shape}")
    c = a.shape[2]
    if c == 1:
        return np.repeat(a, 3, axis=2)
    if c == 2:  # gray + alpha
        g = (a[:, :, :1].astype(np.float32) * (a[:, :, 1:2] / 255.0)).astype(np.uint8)
        return np.repeat(g, 3, axis=2)
    if c == 4:
        alpha = a[:, :, 3:4].astype(np.float32) / 255.0
        a = (a[:, :, :3].astype(np.float32) * alpha + 0.5).astype(np.uint8)
    elif c != 3:
        raise ImageReadError(f"unsupported image with {c} channels")
    return np.ascontiguousarray(a[:, :, ::-1] if bgr else a)


def read_image(path: os.PathLike) -> np.ndarray:
    """Read an image file as uint8 RGB (H x W x 3)."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"{p}: no such file")
    return decode_image(p.read_bytes(), str(p))


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) as uint8 RGB."""
    import cv2

    p = name
    if len(data) == 0:
        raise ImageReadError(f"{p}: empty file")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f"{p}: not a readable image (corrupt or unsupported format)")
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        raise ImageReadError(f"{p}: image of {img.shape[1]}x{img.shape[0]} pixels is too large")
    return to_rgb_uint8(img, bgr=True)


def iter_image_files(inputs: Iterable[os.PathLike]) -> Iterator[Path]:
    """Files given directly, plus every image file found recursively in given folders (sorted)."""
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_EXTS:
                    yield f
        else:
            yield p


def list_image_files(inputs: Iterable[os.PathLike]) -> List[Path]:
    return list(iter_image_files(inputs))
