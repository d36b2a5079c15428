"""Encoder base classes: one contract for every backend.

``Encoder.embed(faces)`` takes a batch of aligned uint8 RGB faces (N x H x W x 3, H x W =
``spec.input_size``; for a narrower-than-tall input also the H x H alignment crop, whose centre W columns
are used) and returns float32, L2-normalised embeddings (N x D).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from idbench.errors import InputError
from idbench.vectors import l2_normalise  # noqa: F401  (re-exported: its former home)

from .spec import EncoderSpec


class Encoder:
    """Base class. Subclasses implement :meth:`_embed_batch` (raw network output, N x D)."""

    batch_size: int = 64

    def __init__(self, spec: EncoderSpec, weights_path: Optional[Path] = None):
        self.spec = spec
        self.weights_path = weights_path

    def check_faces(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces)
        h, w = self.spec.input_size
        if faces.ndim == 3:
            faces = faces[None]
        if faces.ndim == 4 and w < h and faces.shape[1:3] == (h, h):
            # an h x w contract (SphereFace's 112 x 96) takes the centre columns of the square alignment crop:
            # its template is the square one shifted by (h - w) / 2 in x
            left = (h - w) // 2
            faces = faces[:, :, left:left + w]
        if faces.ndim != 4 or faces.shape[1:] != (h, w, 3):
            raise InputError(
                f"{self.spec.name} expects aligned RGB faces of shape N x {h} x {w} x 3, got {faces.shape}"
            )
        if faces.dtype != np.uint8:
            raise InputError(f"{self.spec.name} expects uint8 faces, got {faces.dtype}")
        return faces

    def embed(self, faces: np.ndarray, normalise: bool = True) -> np.ndarray:
        faces = self.check_faces(faces)
        if len(faces) == 0:
            return np.zeros((0, self.spec.embedding_size), np.float32)
        emb = self._embed_all(faces)
        if self.spec.flip_test:  # arcface_torch / CurricularFace: raw outputs of the face and its mirror, summed
            emb = emb + self._embed_all(np.ascontiguousarray(faces[:, :, ::-1]))
        return l2_normalise(emb) if normalise else emb

    def _embed_all(self, faces: np.ndarray) -> np.ndarray:
        out = [self._embed_batch(faces[i : i + self.batch_size]) for i in range(0, len(faces), self.batch_size)]
        return np.concatenate(out).astype(np.float32)

    def _embed_batch(self, faces: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.name}, weights={self.weights_path})"


def with_flip_test(encoder: Encoder) -> Encoder:
    """``encoder`` embedding each face as the sum of its and its mirror's raw outputs (``spec.flip_test``).

    The spec changes, so the encoder's fingerprint (cache keys, provenance) says so; the differentiable
    ``forward_tensor`` of a torch encoder is unchanged.
    """
    import dataclasses

    encoder.spec = dataclasses.replace(encoder.spec, flip_test=True)
    return encoder


class TorchEncoder(Encoder):
    """An encoder backed by a ``torch.nn.Module``; differentiable through :meth:`forward_tensor`."""

    def __init__(self, spec: EncoderSpec, module, weights_path: Optional[Path] = None, device: str = "cpu"):
        super().__init__(spec, weights_path)
        import torch

        self.device = torch.device(device)
        self.module = module.to(self.device).eval()

    def preprocess(self, x):
        """x: float tensor N x 3 x H x W, RGB, pixel values 0..255 -> network input."""
        import torch

        if self.spec.colour == "BGR":
            x = x.flip(1)
        mean = torch.tensor(self.spec.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.spec.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def forward_tensor(self, x):
        """Differentiable embedding (not normalised) of RGB 0..255 float tensors N x 3 x H x W."""
        return self.module(self.preprocess(x))

    def to_tensor(self, faces: np.ndarray):
        import torch

        return torch.from_numpy(np.ascontiguousarray(faces)).to(self.device).permute(0, 3, 1, 2).float()

    def _embed_batch(self, faces: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.forward_tensor(self.to_tensor(faces)).float().cpu().numpy()
