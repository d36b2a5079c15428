"""dlib's metric-learning face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in PyTorch.

The architecture is the ``anet_type`` of dlib's ``dnn_face_recognition_ex.cpp`` /
``tools/python/src/face_recognition.cpp``: a ResNet-34 variant with fewer filters, on
150x150 RGB chips, trained with dlib's metric (pairwise hinge) loss to a 128-d descriptor::

    input_rgb_image_sized<150>       x = (pixel - avg) / 256, avg = (122.782, 117.001, 104.298)
    con 32 7x7 /2 (no padding), affine, relu, max_pool 3x3 /2 (no padding)
    level4: 3 x res(32)   level3: res_down(64) + 3 x res(64)   level2: res_down(128) + 2 x res(128)
    level1: res_down(256) + 2 x res(256)   level0: res_down(256)
    avg_pool_everything, fc_no_bias 128

``res(N)``  = relu(x + block(x)) with block = con 3x3 /1, affine, relu, con 3x3 /1, affine;
``res_down(N)`` = relu(avg_pool 2x2 /2 (x) + block(x)) with a first con 3x3 /2 *without padding*.
dlib's ``add_prev`` adds tensors of different shapes by zero-extending both to the larger
size (channels, rows, columns, aligned at the top left): the skip path of a ``res_down`` has half
the channels, and on 8x8 maps the pooled path is 4x4 while the strided block gives 3x3.
The trained net's batch norms are frozen ``affine`` layers (per-channel scale and shift).

:func:`load_dlib_resnet` builds the module from the shipped ``.dat`` file (see
:mod:`idbench.encoders.dlib_dat`). The module takes *normalised* input (N x 3 x 150 x 150, RGB);
:meth:`DlibResNet.normalise` applies dlib's input scaling to 0..255 pixels.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from idbench.errors import WeightsFormatError

from .dlib_dat import (DLIB_RESNET_STAGES, EMBEDDING_SIZE, INPUT_SIZE, STEM_FILTERS, DlibDatNet, read_dat)

DLIB_INPUT_MEAN = (122.782, 117.001, 104.298)  # input_rgb_image's avg_red/green/blue (dlib/dnn/input.h)
DLIB_INPUT_SCALE = 256.0  # dlib divides (pixel - avg) by 256.0


def add_zero_extended(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: sum of two N x C x H x W tensors zero-extended to the larger of each size."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def extend(t: torch.Tensor) -> torch.Tensor:
        dc, dh, dw = c - t.shape[1], h - t.shape[2], w - t.shape[3]
        return F.pad(t, (0, dw, 0, dh, 0, dc)) if (dc or dh or dw) else t

    return extend(a) + extend(b)


class Affine(nn.Module):
    """dlib's ``affine`` layer in conv mode: y = x * gamma[c] + beta[c]."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta.view(1, -1, 1, 1), x, self.gamma.view(1, -1, 1, 1))


class ResidualBlock(nn.Module):
    """dlib's ``ares`` (``down=False``) or ``ares_down`` (``down=True``) with affine layers."""

    def __init__(self, in_channels: int, channels: int, down: bool):
        super().__init__()
        self.down = down
        stride, pad = (2, 0) if down else (1, 1)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=pad)
        self.affine1 = Affine(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1)
        self.affine2 = Affine(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        skip = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_zero_extended(skip, y))


class DlibResNet(nn.Module):
    """dlib's face-recognition ResNet: normalised N x 3 x 150 x 150 RGB -> N x 128 (not normalised)."""

    def __init__(self, stages: Sequence[Tuple[int, int, bool]] = DLIB_RESNET_STAGES,
                 stem_filters: int = STEM_FILTERS, embedding_size: int = EMBEDDING_SIZE):
        super().__init__()
        self.stages = tuple(tuple(s) for s in stages)
        self.conv1 = nn.Conv2d(3, stem_filters, 7, stride=2, padding=0)
        self.affine1 = Affine(stem_filters)
        blocks = []
        channels = stem_filters
        for filters, count, down in self.stages:
            for i in range(count):
                blocks.append(ResidualBlock(channels, filters, down and i == 0))
                channels = filters
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, embedding_size, bias=False)
        self.register_buffer("input_mean", torch.tensor(DLIB_INPUT_MEAN, dtype=torch.float32))
        self.input_scale = DLIB_INPUT_SCALE
        self.input_size = (INPUT_SIZE, INPUT_SIZE)

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """dlib's input layer: RGB 0..255 N x 3 x H x W -> (pixel - avg) / 256."""
        return (pixels - self.input_mean.to(pixels.dtype).view(1, 3, 1, 1)) / self.input_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.affine1(self.conv1(x)))
        x = F.max_pool2d(x, 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))

    # ----------------------------------------------------------------------------------------

    def load_dat(self, net: DlibDatNet) -> "DlibResNet":
        """Copy the weights of a parsed ``.dat`` file into this module (shapes checked)."""
        convs = [m for m in self.modules() if isinstance(m, nn.Conv2d)]
        affines = [m for m in self.modules() if isinstance(m, Affine)]
        src_convs, src_affines, src_fcs = net.of_kind("con"), net.of_kind("affine"), net.of_kind("fc")
        if (len(convs), len(affines), 1) != (len(src_convs), len(src_affines), len(src_fcs)):
            raise WeightsFormatError(
                f"{net.path}: has {len(src_convs)} convolutions, {len(src_affines)} affine and {len(src_fcs)} fc "
                f"layers; the module has {len(convs)}, {len(affines)} and 1")

        def put(param: torch.Tensor, value: np.ndarray, what: str) -> None:
            value = np.asarray(value, dtype=np.float32)
            if tuple(param.shape) != value.shape:
                raise WeightsFormatError(f"{net.path}: {what} has shape {value.shape}, the module expects "
                                         f"{tuple(param.shape)}")
            with torch.no_grad():
                param.copy_(torch.from_numpy(np.ascontiguousarray(value)))

        for i, (m, src) in enumerate(zip(convs, src_convs)):
            put(m.weight, src.params["weight"], f"convolution {i} weights")
            put(m.bias, src.params["bias"], f"convolution {i} bias")
        for i, (m, src) in enumerate(zip(affines, src_affines)):
            put(m.gamma, src.params["gamma"], f"affine {i} scale")
            put(m.beta, src.params["beta"], f"affine {i} shift")
        put(self.fc.weight, np.asarray(src_fcs[0].params["weight"]).T, "fc weights")
        with torch.no_grad():
            self.input_mean.copy_(torch.tensor(net.input_mean, dtype=torch.float32))
        return self


def _mkldnn_fusion_available() -> bool:
    """oneDNN's fused convolution (+ReLU, +add+ReLU) ops, the ones torch.compile uses on x86 CPUs."""
    ops = getattr(torch.ops, "mkldnn", None)
    return bool(torch.backends.mkldnn.is_available() and ops is not None and hasattr(ops, "_convolution_pointwise"))


def _conv(x: torch.Tensor, conv: nn.Conv2d, relu: bool, add: Optional[torch.Tensor] = None) -> torch.Tensor:
    """relu?(conv(x) [+ add]) in one oneDNN call on CPU, eager ops elsewhere."""
    if x.device.type == "cpu" and _FUSED_CPU:
        args = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
        if add is None:
            return torch.ops.mkldnn._convolution_pointwise(x, conv.weight, conv.bias, *args,
                                                           "relu" if relu else "none", [], "")
        return torch.ops.mkldnn._convolution_pointwise.binary(x, add, conv.weight, conv.bias, *args, "add", None,
                                                              "relu" if relu else None, [], None)
    y = conv(x)
    if add is not None:
        y = y.add_(add)
    return F.relu_(y) if relu else y


_FUSED_CPU = _mkldnn_fusion_available()


class _FoldedBlock(nn.Module):
    """A :class:`ResidualBlock` with its affine layers folded into the convolutions, adds and ReLUs fused."""

    def __init__(self, block: ResidualBlock):
        super().__init__()
        self.down = block.down
        self.conv1 = _folded_conv(block.conv1, block.affine1)
        self.conv2 = _folded_conv(block.conv2, block.affine2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _conv(x, self.conv1, relu=True)
        skip = F.avg_pool2d(x, 2, 2) if self.down else x
        c, h, w = self.conv2.out_channels, y.shape[2], y.shape[3]
        if skip.shape[2:] == (h, w):  # zero-extend the skip's channels, then conv + add + relu in one call
            if skip.shape[1] < c:
                skip = F.pad(skip, (0, 0, 0, 0, 0, c - skip.shape[1])).contiguous(memory_format=x_format(x))
            return _conv(y, self.conv2, relu=True, add=skip)
        return F.relu_(add_zero_extended(skip, _conv(y, self.conv2, relu=False)))


def x_format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


class DlibResNetInference(nn.Module):
    """Inference-only twin of :class:`DlibResNet`: takes RGB 0..255 pixels, same output to float rounding.

    dlib's input scaling and every affine layer are folded into the convolution weights (the stem
    convolution has no padding, so folding the mean subtraction into its bias is exact), and
    additions and ReLUs run in place; about half the memory traffic of the eager module.
    """

    def __init__(self, model: DlibResNet):
        super().__init__()
        stem = _folded_conv(model.conv1, model.affine1)
        mean = model.input_mean.detach().view(1, 3, 1, 1)
        with torch.no_grad():  # W (x - mean) / s + b = (W / s) x + (b - sum(W mean) / s)
            stem.bias.sub_((stem.weight * mean).sum((1, 2, 3)) / model.input_scale)
            stem.weight.div_(model.input_scale)
        self.conv1 = stem
        self.blocks = nn.Sequential(*(_FoldedBlock(b) for b in model.blocks))
        self.fc = nn.Linear(model.fc.in_features, model.fc.out_features, bias=False)
        self.fc.weight = nn.Parameter(model.fc.weight.detach().clone())
        self.requires_grad_(False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(_conv(pixels, self.conv1, relu=True), 3, 2)
        return self.fc(self.blocks(x).mean(dim=(2, 3)))


def _folded_conv(conv: nn.Conv2d, affine: Affine) -> nn.Conv2d:
    """A copy of ``conv`` that also applies ``affine`` (y = conv(x) * gamma + beta)."""
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding)
    gamma, beta = affine.gamma.detach(), affine.beta.detach()
    with torch.no_grad():
        out.weight.copy_(conv.weight * gamma.view(-1, 1, 1, 1))
        out.bias.copy_(conv.bias * gamma + beta)
    return out


def load_dlib_resnet(path: os.PathLike, device: Optional[str] = None) -> DlibResNet:
    """Build :class:`DlibResNet` with the weights of dlib's ``.dat`` file (eval mode)."""
    net = read_dat(path)
    model = DlibResNet().load_dat(net).eval()
    return model.to(device) if device is not None else model
