"""``sphereface.sphere20a``: SphereFace-20 of clcarwin/sphereface_pytorch (CASIA-WebFace, LFW 99.22%).

The ID-retrieval evaluator of the FaceShifter line of face-swap papers (as ReliableSwap and SimSwap's
evaluations use it). The released ``model/sphere20a_20171020.7z`` unpacks to ``sphere20a_20171020.pth``,
the ``state_dict`` of ``net_sphere.sphere20a``: ``conv1_1 .. conv4_3`` (3 x 3 convs with bias) each followed
by ``relu*`` (PReLU), ``fc5`` (512 x 7 x 6 -> 512, the embedding) and ``fc6`` (the A-Softmax
``AngleLinear`` classifier, not needed here and dropped).

Contract (``lfw_eval.py``): ``cv2.imread`` (BGR) faces warped onto the 96 x 112 template ``ref_pts``
(insightface's ArcFace template shifted 8 px left, i.e. the centre 96 columns of the 112 x 112 ArcFace
crop), ``(pixel - 127.5) / 128``; output ``fc5``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn

from idbench.checkpoints import load_state_dict_checked, read_state_dict
from idbench.errors import WeightsFormatError
from idbench.weights import WeightSource

from .base import TorchEncoder
from .registry import register_encoder
from .spec import EncoderSpec

SPHEREFACE_REPO = "https://github.com/clcarwin/sphereface_pytorch"
#: (stage, output width, residual units after the strided conv)
_STAGES = ((1, 64, 1), (2, 128, 2), (3, 256, 4), (4, 512, 1))


class Sphere20a(nn.Module):
    """``net_sphere.sphere20a`` with ``feature=True`` (returns ``fc5``), same parameter names."""

    def __init__(self):
        super().__init__()
        in_ch = 3
        for stage, width, units in _STAGES:
            for i in range(1, 2 + 2 * units):
                self.add_module(f"conv{stage}_{i}", nn.Conv2d(in_ch if i == 1 else width, width, 3,
                                                                2 if i == 1 else 1, 1))
                self.add_module(f"relu{stage}_{i}", nn.PReLU(width))
            in_ch = width
        self.fc5 = nn.Linear(512 * 7 * 6, 512)

    def _unit(self, stage: int, i: int, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"relu{stage}_{i}")(getattr(self, f"conv{stage}_{i}")(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage, _, units in _STAGES:
            x = self._unit(stage, 1, x)
            for u in range(units):  # x + relu_{2u+3}(conv_{2u+3}(relu_{2u+2}(conv_{2u+2}(x))))
                x = x + self._unit(stage, 2 * u + 3, self._unit(stage, 2 * u + 2, x))
        return self.fc5(x.flatten(1))


def load_sphere20a(path: Path, origin: str = "") -> Sphere20a:
    hint = f"; get it again from {origin}" if origin else ""
    state = {k: v for k, v in read_state_dict(path, origin).items() if not k.startswith("fc6.")}
    return load_state_dict_checked(Sphere20a(), state, "a SphereFace sphere20a", path, hint).eval()


@register_encoder(EncoderSpec(
    name="sphereface.sphere20a", input_size=(112, 96), alignment="arcface112", colour="BGR", mean=(127.5,) * 3,
    std=(128.0,) * 3, embedding_size=512, l2_normalised=False, backend="torch",
    weights=(WeightSource("sphere20a_20171020.pth", f"{SPHEREFACE_REPO}: model/sphere20a_20171020.7z, unpacked "
                          f"(7z x sphere20a_20171020.7z)", min_bytes=40_000_000),),
    licence="MIT (clcarwin/sphereface_pytorch LICENSE); weights trained on CASIA-WebFace (research use)",
    paper="Liu et al., SphereFace: Deep Hypersphere Embedding for Face Recognition (CVPR 2017)",
    description="SphereFace-20 (A-Softmax, CASIA-WebFace), 112x96 BGR (x-127.5)/128: the face-swap "
                "literature's ID-retrieval evaluator"))
def _sphere20a(spec: EncoderSpec, weights_path: Optional[Path], device: str = "cpu") -> TorchEncoder:
    if weights_path is None:
        raise WeightsFormatError(f"{spec.name} needs a weight file ({spec.weights[0].filename})")
    return TorchEncoder(spec, load_sphere20a(weights_path, spec.weights[0].origin), weights_path, device)
