"""InsightFace's IResNet (``arcface_torch`` backbones) and a checkpoint loader that explains its failures.

The module tree, parameter names and forward pass follow ``recognition/arcface_torch/backbones/iresnet.py``
of deepinsight/insightface, so ``state_dict()`` keys are those of the model zoo's ``backbone.pth``
(and of BlendFace's ``arcface.pt`` / ``blendface.pt``, trained with the same code):

``conv1, bn1, prelu, layer1..layer4 (IBasicBlock: bn1, conv1, bn2, prelu, conv2, bn3, downsample.0/.1),
bn2, dropout (no parameters), fc, features``.

Input: N x 3 x 112 x 112, RGB, ``(pixel - 127.5) / 127.5``; output: N x 512, not normalised.

:func:`load_iresnet_checkpoint` reads a checkpoint with ``torch.load(weights_only=True)``, unwraps the
usual containers (``{'state_dict': ...}``, ``{'model': ...}``, ``{'backbone': ...}``, DDP ``module.``
prefixes) and raises :class:`~idbench.errors.WeightsFormatError` with a one-line reason for truncated
files, non-PyTorch files and checkpoints of another depth. :func:`read_state_dict` is the generic part,
shared with the other torch loaders.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from idbench.checkpoints import _first_line, load_state_dict_checked, read_state_dict  # noqa: F401  (the one reader)
from idbench.errors import WeightsFormatError, WeightsNotFoundError

from ._iresnet_arch import _FC_SCALE, IRESNET_LAYERS, iresnet_param_count, parse_arch  # noqa: F401  (torch-free part)

__all__ = ["IBasicBlock", "IResNet", "IRESNET_LAYERS", "build_iresnet", "iresnet18", "iresnet34", "iresnet50",
           "iresnet100", "iresnet200", "load_iresnet_checkpoint", "read_state_dict", "infer_iresnet_layers",
           "iresnet_param_count", "parse_arch", "load_state_dict_checked"]

_BN_EPS = 1e-5


class IBasicBlock(nn.Module):
    """Pre-activation-style residual block: BN -> conv3x3 -> BN -> PReLU -> conv3x3(stride) -> BN (+ shortcut)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=_BN_EPS)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=_BN_EPS)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=_BN_EPS)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return y + shortcut


class IResNet(nn.Module):
    """arcface_torch's IResNet for 112 x 112 faces.

    Args:
        layers: blocks in each of the four stages (see :data:`IRESNET_LAYERS`).
        dropout: dropout before ``fc`` (arcface_torch trains with 0).
        num_features: embedding size.
        fp16: run the convolutional trunk under CUDA float16 autocast, as arcface_torch's ``fp16=True``
            does (``fc`` and ``features`` stay float32). Off by default; ignored on CPU.
    """

    fc_scale = _FC_SCALE

    def __init__(self, layers: Sequence[int], dropout: float = 0.0, num_features: int = 512, fp16: bool = False):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"IResNet needs four stages, got {tuple(layers)}")
        self.layers_per_stage = tuple(int(n) for n in layers)
        self.fp16 = fp16
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=_BN_EPS)
        self.prelu = nn.PReLU(64)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1])
        self.layer3 = self._make_layer(256, layers[2])
        self.layer4 = self._make_layer(512, layers[3])
        self.bn2 = nn.BatchNorm2d(512, eps=_BN_EPS)
        self.dropout = nn.Dropout(p=dropout, inplace=True)
        self.fc = nn.Linear(512 * self.fc_scale, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=_BN_EPS)
        self._init_weights()

    def _make_layer(self, planes: int, blocks: int) -> nn.Sequential:
        # every stage halves the resolution and the first block always changes width or stride
        downsample = nn.Sequential(
            nn.Conv2d(self.inplanes, planes, 1, stride=2, bias=False),
            nn.BatchNorm2d(planes, eps=_BN_EPS),
        )
        stage = [IBasicBlock(self.inplanes, planes, 2, downsample)]
        self.inplanes = planes
        stage += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def _init_weights(self) -> None:
        # arcface_torch's initialisation: N(0, 0.1) convolutions, unit BN; the output BN scale is frozen at 1
        self.features.weight.requires_grad = False
        if self.conv1.weight.is_meta:  # a skeleton for loading (normal_ on meta would import torch._dynamo)
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.1)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.ones_(self.features.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use_amp = self.fp16 and x.is_cuda
        with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
            x = self.prelu(self.bn1(self.conv1(x)))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            x = self.bn2(x)
            x = torch.flatten(x, 1)
            x = self.dropout(x)
        x = self.fc(x.float() if use_amp else x)
        return self.features(x)


def build_iresnet(arch: Union[str, int], **kwargs) -> IResNet:
    """A randomly initialised IResNet of the given depth (``'r18'``, ``'iresnet100'``, ``50``...)."""
    return IResNet(IRESNET_LAYERS[parse_arch(arch)], **kwargs)


def iresnet18(**kwargs) -> IResNet:
    return build_iresnet("r18", **kwargs)


def iresnet34(**kwargs) -> IResNet:
    return build_iresnet("r34", **kwargs)


def iresnet50(**kwargs) -> IResNet:
    return build_iresnet("r50", **kwargs)


def iresnet100(**kwargs) -> IResNet:
    return build_iresnet("r100", **kwargs)


def iresnet200(**kwargs) -> IResNet:
    return build_iresnet("r200", **kwargs)


# ----------------------------------------------------------------------------------------------------------
# IResNet checkpoints

_BLOCK_KEY = re.compile(r"^layer([1-4])\.(\d+)\.")


def infer_iresnet_layers(keys) -> Optional[Tuple[int, int, int, int]]:
    """Blocks per stage implied by state-dict keys (``None`` if there are no ``layerN.M.`` keys)."""
    counts = [0, 0, 0, 0]
    found = False
    for k in keys:
        m = _BLOCK_KEY.match(k)
        if m:
            found = True
            i = int(m.group(1)) - 1
            counts[i] = max(counts[i], int(m.group(2)) + 1)
    return tuple(counts) if found else None  # type: ignore[return-value]


def _describe_layers(layers: Optional[Tuple[int, ...]]) -> str:
    if layers is None:
        return "not an IResNet (no layer1..layer4 blocks)"
    for name, known in IRESNET_LAYERS.items():
        if tuple(layers) == known:
            return f"an IResNet-{name[1:]} ({name}, blocks per stage {known})"
    return f"an IResNet with blocks per stage {tuple(layers)} (no standard depth)"


def load_iresnet_checkpoint(path, arch: Union[str, int, None] = None, *, origin: str = "",
                            allow_pickle: Optional[bool] = None, **model_kwargs) -> IResNet:
    """Build an IResNet and load an arcface_torch-style checkpoint into it (strictly), in eval mode.

    Args:
        path: the checkpoint (``backbone.pth``, ``arcface.pt``...).
        arch: ``'r18' | 'r34' | 'r50' | 'r100' | 'r200'`` (or ``'iresnet100'``, ``100``); ``None``
            infers the depth from the checkpoint.
        origin: where the file comes from, quoted in error messages.
        model_kwargs: passed to :class:`IResNet` (``num_features``, ``fp16``, ``dropout``).

    ``load_iresnet_checkpoint(module, path)`` loads into an existing :class:`IResNet` instead and returns it.
    """
    module: Optional[IResNet] = None
    if isinstance(path, nn.Module):  # (module, path) form
        module, path = path, arch
        arch = None
        if path is None:
            raise TypeError("load_iresnet_checkpoint(module, path): path is missing")
    state = read_state_dict(path, origin, allow_pickle)
    if module is not None:
        layers = getattr(module, "layers_per_stage", None)
        arch_name = next((n for n, lay in IRESNET_LAYERS.items() if lay == layers), f"r{layers}")
    else:
        if arch is None:
            layers = infer_iresnet_layers(state.keys())
            arch_name = next((n for n, lay in IRESNET_LAYERS.items() if lay == layers), None)
            if arch_name is None:
                raise WeightsFormatError(f"{path}: cannot tell the IResNet depth: the file is "
                                         f"{_describe_layers(layers)}")
        else:
            arch_name = parse_arch(arch)
        with torch.device("meta"):  # no random initialisation: every tensor comes from the file
            module = build_iresnet(arch_name, **model_kwargs)
    probable = _describe_layers(infer_iresnet_layers(state.keys()))
    load_state_dict_checked(module, state, f"an IResNet-{arch_name[1:]} ({arch_name})", path,
                            hint=f"; the file looks like {probable}")
    return module.eval()
