"""SphereFace-20 (``net_sphere.sphere20a`` of clcarwin/sphereface_pytorch, ``feature=True``): the network only.

Registered as ``sphereface.sphere20a`` by :mod:`idbench.encoders.sphereface`, which imports this module (and
torch) only when the encoder is built.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from idbench.checkpoints import load_state_dict_checked, read_state_dict

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
