"""SimSwap's networks (Chen et al., ACM MM 2020): the ID-injection generator and its ArcFace.

Written from the paper and checked against the state-dict layouts of the official code
(neuralchen/SimSwap at commit bd7b7686a17f41dd11cfcd5d82f7e4c5eb94b780):

* :class:`SimSwapGenerator`: ``models/fs_networks.py`` ``Generator_Adain_Upsample(3, 3, 512, n_blocks=9,
  deep=False)`` as ``models/fs_model.py`` builds ``netG`` for 224 crops (``checkpoints/people/latest_net_G.pth``):
  ``first_layer`` (reflection pad, 7x7 conv, BN, ReLU), ``down1..3`` (3x3 stride-2 conv, BN, ReLU), nine
  ``BottleNeck`` ID-injection blocks (reflection-padded 3x3 conv + instance norm, then an AdaIN-style
  ``style.linear`` scale ``(1 + s)`` and shift from the 512-d identity), ``up3..1`` (bilinear x2, 3x3 conv,
  BN, ReLU), ``last_layer`` (7x7 conv, tanh); output ``(x + 1) / 2`` in [0, 1].
* :class:`SimSwapArcFace`: ``models/arcface_models.py`` ``ResNet(IRBlock, layers, use_se=True)`` (foamliu's
  InsightFace-v2 SE-ResNet: unpadded 3x3 stem, max-pool, IR blocks with a shared PReLU and squeeze-excitation,
  ``fc`` from 512 x 7 x 7, ``bn3``). ``arcface_checkpoint.tar`` pickles the whole module (classes found as
  ``models.ResNet`` or ``models.arcface_models.ResNet``, both of which SimSwap's ``models`` package provides);
  :func:`read_simswap_arcface` unpickles it onto these classes (only behind the checkpoint reader's
  ``allow_pickle`` switch) and also accepts a re-saved ``state_dict()``.

``width`` divides the channel counts (1 = official) so tests can use small random models.
"""

from __future__ import annotations

import contextlib
import re
import sys
import types
from typing import Dict, Iterator, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

LATENT = 512
_BLOCK = re.compile(r"^BottleNeck\.(\d+)\.")
_ARC_BLOCK = re.compile(r"^layer(\d)\.(\d+)\.")


class InstanceNorm(nn.Module):
    """Parameter-free instance normalisation (eps 1e-8 inside the square root, as the official code)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean((2, 3), keepdim=True)
        return x * torch.rsqrt((x * x).mean((2, 3), keepdim=True) + 1e-8)


class ApplyStyle(nn.Module):
    def __init__(self, latent: int, channels: int):
        super().__init__()
        self.linear = nn.Linear(latent, channels * 2)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        style = self.linear(latent).view(-1, 2, x.size(1), 1, 1)
        return x * (style[:, 0] + 1.0) + style[:, 1]


class IDBlock(nn.Module):
    """Residual block whose two normalised convolutions are re-styled by the identity latent."""

    def __init__(self, dim: int, latent: int = LATENT):
        super().__init__()
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), InstanceNorm())
        self.style1 = ApplyStyle(latent, dim)
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), InstanceNorm())
        self.style2 = ApplyStyle(latent, dim)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.style1(self.conv1(x), latent))
        return x + self.style2(self.conv2(y), latent)


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(True))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(cin, cout, 3, padding=1),
                         nn.BatchNorm2d(cout), nn.ReLU(True))


class SimSwapGenerator(nn.Module):
    def __init__(self, n_blocks: int = 9, width: int = 1, latent: int = LATENT):
        super().__init__()
        c1, c2, c3, c4 = (64 // width, 128 // width, 256 // width, 512 // width)
        self.first_layer = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, c1, 7), nn.BatchNorm2d(c1), nn.ReLU(True))
        self.down1, self.down2, self.down3 = _down(c1, c2), _down(c2, c3), _down(c3, c4)
        self.BottleNeck = nn.Sequential(*[IDBlock(c4, latent) for _ in range(n_blocks)])
        self.up3, self.up2, self.up1 = _up(c4, c3), _up(c3, c2), _up(c2, c1)
        self.last_layer = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c1, 3, 7), nn.Tanh())

    def forward(self, target: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """target: N x 3 x 224 x 224 RGB in [0, 1]; latent: N x 512, L2-normalised -> N x 3 x 224 x 224 in [0, 1]."""
        x = self.down3(self.down2(self.down1(self.first_layer(target))))
        for block in self.BottleNeck:
            x = block(x, latent)
        x = self.last_layer(self.up1(self.up2(self.up3(x))))
        return (x + 1) / 2


def generator_config(state: Dict[str, torch.Tensor]) -> Tuple[int, int]:
    """(n_blocks, width) of a generator state dict (9 and 1 for the official 224 model)."""
    blocks = {int(m.group(1)) for k in state for m in [_BLOCK.match(k)] if m}
    w = state.get("first_layer.1.weight")
    width = max(1, 64 // int(w.shape[0])) if w is not None and w.shape[0] else 1
    return (max(blocks) + 1 if blocks else 9), width


# --- SimSwap's ArcFace ---------------------------------------------------------------------------------

class SEBlock(nn.Module):
    def __init__(self, channel: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(channel, channel // reduction), nn.PReLU(),
                                nn.Linear(channel // reduction, channel), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(self.avg_pool(x).flatten(1))[:, :, None, None]


class IRBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 use_se: bool = True):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, inplanes, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.prelu = nn.PReLU()  # one slope, used twice
        self.conv2 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.use_se = use_se
        if use_se:
            self.se = SEBlock(planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.prelu(self.bn1(self.conv1(self.bn0(x))))
        out = self.bn2(self.conv2(out))
        if self.use_se:
            out = self.se(out)
        short = x if self.downsample is None else self.downsample(x)
        return self.prelu(out + short)


class ResNet(nn.Module):
    """The SE-ResNet ArcFace (112 x 112 input, ImageNet mean/std, 512-d output)."""

    def __init__(self, layers: Sequence[int] = (3, 4, 14, 3), width: int = 1, use_se: bool = True):
        super().__init__()
        planes = [64 // width, 128 // width, 256 // width, 512 // width]
        self.inplanes = planes[0]
        self.use_se = use_se
        self.conv1 = nn.Conv2d(3, planes[0], 3, stride=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.prelu = nn.PReLU()
        self.maxpool = nn.MaxPool2d(2, 2)
        self.layer1 = self._make_layer(planes[0], layers[0], 1)
        self.layer2 = self._make_layer(planes[1], layers[1], 2)
        self.layer3 = self._make_layer(planes[2], layers[2], 2)
        self.layer4 = self._make_layer(planes[3], layers[3], 2)
        self.bn2 = nn.BatchNorm2d(planes[3])
        self.dropout = nn.Dropout()
        self.fc = nn.Linear(planes[3] * 7 * 7, LATENT)
        self.bn3 = nn.BatchNorm1d(LATENT)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))
        stage = [IRBlock(self.inplanes, planes, stride, down, self.use_se)]
        self.inplanes = planes
        stage += [IRBlock(planes, planes, use_se=self.use_se) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn2(x)).flatten(1)
        return self.bn3(self.fc(x))


SimSwapArcFace = ResNet
OFFICIAL_MODULE = "models.arcface_models"  # where arcface_checkpoint.tar's pickle looks for its classes


@contextlib.contextmanager
def official_class_path() -> Iterator[None]:
    """Make ``models[.arcface_models].{ResNet, IRBlock, SEBlock}`` resolve to these classes while unpickling.

    Installed only where no module of that name exists, and removed afterwards.
    """
    added = []
    if "models" not in sys.modules:
        pkg = types.ModuleType("models")
        pkg.__path__ = []  # a package, so the submodule import resolves
        # SimSwap's models/__init__.py re-exports the classes: a pickle from foamliu's top-level models.py
        # names them models.ResNet, ...
        pkg.ResNet, pkg.IRBlock, pkg.SEBlock = ResNet, IRBlock, SEBlock
        sys.modules["models"] = pkg
        added.append("models")
    if OFFICIAL_MODULE not in sys.modules:
        mod = types.ModuleType(OFFICIAL_MODULE)
        mod.ResNet, mod.IRBlock, mod.SEBlock = ResNet, IRBlock, SEBlock
        sys.modules[OFFICIAL_MODULE] = mod
        sys.modules["models"].arcface_models = mod
        added.append(OFFICIAL_MODULE)
    try:
        yield
    finally:
        for name in reversed(added):
            sys.modules.pop(name, None)


def arcface_config(state: Dict[str, torch.Tensor]) -> Tuple[Tuple[int, int, int, int], int]:
    """(blocks per stage, width) of a SimSwap ArcFace state dict."""
    counts = [0, 0, 0, 0]
    for k in state:
        m = _ARC_BLOCK.match(k)
        if m:
            i = int(m.group(1)) - 1
            counts[i] = max(counts[i], int(m.group(2)) + 1)
    w = state.get("conv1.weight")
    width = max(1, 64 // int(w.shape[0])) if w is not None and w.shape[0] else 1
    return tuple(counts), width  # type: ignore[return-value]
