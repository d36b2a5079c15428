"""``expression.deep3d`` / ``shape.deep3d``: Deep3DFaceRecon (Deng et al., CVPRW 2019) 3DMM coefficients,
user weights ``epoch_20.pth`` (its ``net_recon`` entry)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import numpy as np

from idbench.errors import NoFaceError
from idbench.faces import Face, landmarks68_to_5
from idbench.imageio import pil_resize
from idbench.weights import WeightSource

from .base import check_image, face_or_detect, landmarks68_of
from .networks import RESNET50_MIN_BYTES, TorchEstimator, load_network, resnet50_trunk
from .registry import ALLOW_PICKLE, EstimatorSpec, register_estimator

DEEP3D_WEIGHTS = WeightSource(
    "epoch_20.pth", "sicxu/Deep3DFaceRecon_pytorch README (checkpoints/<name>/epoch_20.pth, 'face_recon' model)",
    search=("$TORCH_HOME/checkpoints", "$TORCH_HOME/checkpoints/face_recon"), min_bytes=RESNET50_MIN_BYTES)

DEEP3D_PARTS = {"id": 80, "exp": 64, "tex": 80, "angle": 3, "gamma": 27, "txy": 2, "tz": 1}


def deep3d_net():
    """Deep3DFaceRecon's ``ReconNetWrapper('resnet50')``: ``backbone`` (ResNet-50 without fc) and
    ``final_layers``, seven 1x1 convolutions 2048 -> 80 (id), 64 (exp), 80 (tex), 3 (angles),
    27 (gamma), 2 (tx, ty), 1 (tz) whose outputs concatenate to the 257 coefficients."""
    import torch
    from torch import nn

    class Deep3DRecon(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = resnet50_trunk()
            self.backbone.fc = nn.Identity()
            self.final_layers = nn.ModuleList([nn.Conv2d(2048, n, 1, bias=True) for n in DEEP3D_PARTS.values()])

        def forward(self, x):
            f = self.backbone(x).reshape(x.shape[0], 2048, 1, 1)
            return torch.cat([layer(f) for layer in self.final_layers], 1).flatten(1)

    return Deep3DRecon()


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
    ``102 / s`` (PIL bicubic, sizes and offsets truncated) and cropped to 224 x 224 around the projected
    model origin (zero padding outside, as PIL's ``crop``)."""
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
    resized = pil_resize(image, (w, h), "bicubic")  # resize_n_crop_img: PIL BICUBIC (antialiased when shrinking)
    out = np.zeros((target, target, 3), np.uint8)
    sx0, sy0 = max(left, 0), max(up, 0)
    sx1, sy1 = min(left + target, w), min(up + target, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - up:sy1 - up, sx0 - left:sx1 - left] = resized[sy0:sy1, sx0:sx1]
    return out


class Deep3DEstimator(TorchEstimator):
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
        lm5 = landmarks68_to_5(landmarks68_of(image, face))
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
        image = check_image(image)
        face = face_or_detect(image, face)
        out = self.forward([self.preprocess(image, face)]).float().cpu().numpy().astype(np.float64)
        return {k: v[0] for k, v in self._split(out).items()}

    def estimate_shape(self, image: np.ndarray, face: Optional[Face] = None) -> np.ndarray:
        """The 80 identity (shape) coefficients, for :func:`idbench.analysis.shape_error`."""
        return self.coefficients(image, face)["id"]


def deep3d_module(path: Path, allow_pickle: Optional[bool] = None):
    """Deep3DFaceRecon's ``net_recon`` with the weights of the training checkpoint ``path``."""
    return load_network(deep3d_net(), path, "a Deep3DFaceRecon net_recon (ResNet-50, 257 coefficients)",
                        key="net_recon", allow_pickle=allow_pickle)


_DEEP3D_PAPER = "Deng et al., Accurate 3D Face Reconstruction with Weakly-Supervised Learning, CVPRW 2019"
_DEEP3D_LICENCE = "code: MIT (Deep3DFaceRecon_pytorch); 3DMM: Basel Face Model 2009 licence"
_DEEP3D_CONVENTIONS = ("slices of the official 257 coefficients (id 0:80, exp 80:144), unscaled; the 5 points "
                       "come from dlib's 68 landmarks (extract_5p), not the MTCNN points of the official test.py")
_DEEP3D_RECIPE = ("util/preprocess.align_img: POS fit of the 5 points to the BFM's, image resized by 102/s with "
                  "PIL bicubic (sizes and offsets truncated), 224x224 crop (zero padding); RGB / 255")


@register_estimator(EstimatorSpec(
    "expression.deep3d", "expression", "Deep3DFaceRecon ResNet-50: 64 3DMM expression coefficients; user weights "
    "epoch_20.pth", tuple(f"exp_{i:02d}" for i in range(64)), weights=(DEEP3D_WEIGHTS,), units="3DMM coefficients",
    paper=_DEEP3D_PAPER, licence=_DEEP3D_LICENCE, conventions=_DEEP3D_CONVENTIONS, recipe=_DEEP3D_RECIPE,
    options=(ALLOW_PICKLE,)))
def _expression_deep3d(spec, weights_path, device="cpu", allow_pickle: Optional[bool] = None):
    return Deep3DEstimator(spec, deep3d_module(weights_path, allow_pickle), weights_path, device, "exp")


@register_estimator(EstimatorSpec(
    "shape.deep3d", "shape", "Deep3DFaceRecon ResNet-50: 80 3DMM identity (shape) coefficients; user weights "
    "epoch_20.pth", tuple(f"id_{i:02d}" for i in range(80)), weights=(DEEP3D_WEIGHTS,), units="3DMM coefficients",
    paper=_DEEP3D_PAPER, licence=_DEEP3D_LICENCE, conventions=_DEEP3D_CONVENTIONS, recipe=_DEEP3D_RECIPE,
    options=(ALLOW_PICKLE,)))
def _shape_deep3d(spec, weights_path, device="cpu", allow_pickle: Optional[bool] = None):
    return Deep3DEstimator(spec, deep3d_module(weights_path, allow_pickle), weights_path, device, "id")
