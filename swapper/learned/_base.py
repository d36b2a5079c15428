"""What every learned swapper shares: weight resolution, the per-pair ``swap`` with its checks, provenance.

A subclass implements :meth:`LearnedSwapper.identity` (source crop -> identity latent) and
:meth:`LearnedSwapper.generate` (target crop + latent -> swapped uint8 crop); :meth:`LearnedSwapper.swap`
crops both faces as the spec says, runs them, and pastes the result back into the target frame.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from idbench.faces import Face
from idbench.swapper.checks import MIN_FACE_PX
from idbench.swapper.types import SwapError, SwapResult
from idbench.weights import cached_sha256

from .paste import crop_face, paste_back
from .spec import LearnedSwapperSpec

_LATENT_CACHE = 64  # source latents kept: FF++ swaps one source onto many target frames


def check_face(face: Optional[Face], role: str, needs68: bool = False) -> None:
    """Raise :class:`SwapError` for a face a swapper cannot crop (no landmarks, non-finite, too small)."""
    if face is None or face.landmarks5 is None:
        raise SwapError(f"{role} face has no landmarks")
    if not np.all(np.isfinite(np.asarray(face.landmarks5, np.float64))):
        raise SwapError(f"{role} landmarks are not finite")
    if min(face.width, face.height) < MIN_FACE_PX:
        raise SwapError(f"{role} face too small", f"{face.width:.0f}x{face.height:.0f} px < {MIN_FACE_PX}")
    if needs68 and face.landmarks68 is not None and not np.all(np.isfinite(face.landmarks68)):
        raise SwapError(f"{role} 68-point landmarks are not finite")


def check_image(image: np.ndarray, role: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise SwapError(f"{role} image is not uint8 RGB", f"shape {image.shape}, dtype {image.dtype}")
    return image


class LearnedSwapper:
    """Base class: ``swap(source_image, source_face, target_image, target_face) -> SwapResult``."""

    spec: LearnedSwapperSpec

    def __init__(self, spec: LearnedSwapperSpec, weights=None, device: str = "cpu"):
        self.spec = spec
        self.device = device
        self.paths: Dict[str, Path] = spec.resolve(weights)
        self._latents: "OrderedDict[str, np.ndarray]" = OrderedDict()

    # --- to implement ---------------------------------------------------------------------------
    def identity(self, source_crop: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """uint8 source crop -> float32 identity latent (what the generator is conditioned on)."""
        raise NotImplementedError

    def generate(self, target_crop: np.ndarray, latent: np.ndarray) -> np.ndarray:  # pragma: no cover
        """uint8 target crop + latent -> uint8 swapped crop of the same size."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------------
    def source_latent(self, source_crop: np.ndarray) -> np.ndarray:
        key = hashlib.sha1(np.ascontiguousarray(source_crop).tobytes()).hexdigest()
        if key not in self._latents:
            latent = np.asarray(self.identity(source_crop), np.float32)
            if not np.all(np.isfinite(latent)):
                raise SwapError("source identity is not finite", self.spec.identity_encoder)
            self._latents[key] = latent
            if len(self._latents) > _LATENT_CACHE:
                self._latents.popitem(last=False)
        return self._latents[key]

    def swap(self, source_image: np.ndarray, source_face: Face, target_image: np.ndarray, target_face: Face,
             provenance: Optional[dict] = None) -> SwapResult:
        """Swap the source identity onto the target face; the result is the full target frame."""
        source_image, target_image = check_image(source_image, "source"), check_image(target_image, "target")
        check_face(source_face, "source", self.spec.source.alignment == "ffhq")
        check_face(target_face, "target", self.spec.target.alignment == "ffhq")
        source_crop, _ = crop_face(source_image, source_face, self.spec.source)
        target_crop, matrix = crop_face(target_image, target_face, self.spec.target)
        if not np.isfinite(matrix).all() or abs(np.linalg.det(matrix[:, :2])) < 1e-12:
            raise SwapError("target alignment is degenerate")
        swapped = self.generate(target_crop, self.source_latent(source_crop))
        if swapped.shape != target_crop.shape or swapped.dtype != np.uint8:
            raise SwapError("generator output has the wrong shape", f"{swapped.shape} != {target_crop.shape}")
        image, mask = paste_back(target_image, swapped, matrix)
        prov = dict(provenance or {})
        prov.update(self.provenance())
        return SwapResult(image=image, mask=mask, provenance=prov, face=target_face)

    def params(self) -> Dict[str, object]:
        """What changes the swaps besides the inputs (part of the swap cache key): the weight files' contents."""
        return {"weights_sha256": {name: cached_sha256(p) for name, p in self.paths.items()}}

    def provenance(self) -> Dict[str, object]:
        s = self.spec
        return {"swapper": s.name, "identity_encoder": s.identity_encoder,
                "source_crop": f"{s.source.alignment}{s.source.size}", "target_crop": f"{s.target.alignment}{s.target.size}",
                "weights": {name: {"path": str(p), "sha256": cached_sha256(p)} for name, p in self.paths.items()}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.name}, weights={[str(p) for p in self.paths.values()]})"


def to_uint8(x: np.ndarray, mode: str = "round") -> np.ndarray:
    """float RGB in [0, 1] (H x W x 3) -> uint8 by ``mode``: "round", or "truncate" as BlendFace's
    ``inference.py`` (``(x * 255).astype(uint8)``); clipped to 0..255; NaN/inf is a per-item :class:`SwapError`."""
    if not np.all(np.isfinite(x)):
        raise SwapError("generator output is not finite")
    if mode not in ("round", "truncate"):
        raise ValueError(f"uint8 conversion must be 'round' or 'truncate', got {mode!r}")
    y = np.clip(x.astype(np.float32) * np.float32(255.0), 0, 255)
    return (np.rint(y) if mode == "round" else y).astype(np.uint8)
