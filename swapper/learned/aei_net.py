"""BlendSwap's network: FaceShifter's AEI-Net (Li et al., arXiv 1912.13457, sec. 3.1) with a mask head.

Written from the paper and checked against the module names the BlendFace repository's ``swapping/`` code
gives its state dict (``swapping/blendswap.py``, ``model/generator.py``, ``model/encoder.py`` at commit
0203d91d083eedc5b5b554f9b2380f060532587a), so its ``blendswap.pth`` loads strictly:

* ``E`` / ``E_ema``: the multi-level attributes encoder, a U-Net: seven 4x4 stride-2 convolutions
  (``Encoder.layer_i``: conv, BN, LeakyReLU 0.1) and six 4x4 transposed convolutions (``Decoder.layer_i``)
  each concatenated with the mirror encoder feature; the last map is upsampled once more: 8 attribute maps
  from 2x2 to 256x256 for a 256 input;
* ``G`` / ``G_ema``: the AAD generator, eight AAD residual blocks (``model.layer_i``: ``add1``, ``add2``,
  ``conv1``, ``conv2``, plus ``add3``/``conv3`` where the width changes), started from the coarsest attribute
  map and upsampled (bilinear, align_corners) after each of the first seven; sigmoid output in [0, 1];
* ``Z_e``: ``Sequential(Normalize(0.5, 0.5), IResNet-100)``, the BlendFace identity encoder;
* ``mask_head`` / ``mask_head_ema``: a 1x1 convolution on the finest attribute map; its sigmoid blends the
  generator output into the target crop.

Inference uses the EMA copies, as the official ``BlendSwap.forward`` does. ``width`` divides every channel
count (1 = the official network; larger values give the small random test models).
"""

from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from idbench.encoders.iresnet import IResNet

ENCODER_CHANNELS = (3, 32, 64, 128, 256, 512, 1024, 1024)
DECODER_IN = (1024, 2048, 1024, 512, 256, 128)
DECODER_OUT = (1024, 512, 256, 128, 64, 32)
GEN_H_IN = (1024, 1024, 1024, 1024, 512, 256, 128, 64)
GEN_Z_IN = (1024, 2048, 1024, 512, 256, 128, 64, 64)
GEN_H_OUT = (1024, 1024, 1024, 512, 256, 128, 64, 3)
ID_SIZE = 512


def _scaled(channels: Sequence[int], width: int, keep_rgb: bool = True) -> List[int]:
    return [c if (keep_rgb and c == 3) else c // width for c in channels]


def _upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class AttributesEncoder(nn.Module):
    """The U-Net attribute encoder: returns the 8 multi-level attribute maps, coarsest first."""

    def __init__(self, width: int = 1):
        super().__init__()
        enc = _scaled(ENCODER_CHANNELS, width)
        dec_in, dec_out = _scaled(DECODER_IN, width), _scaled(DECODER_OUT, width)
        self.Encoder = nn.ModuleDict({f"layer_{i}": nn.Sequential(
            nn.Conv2d(enc[i], enc[i + 1], 4, stride=2, padding=1), nn.BatchNorm2d(enc[i + 1]), nn.LeakyReLU(0.1))
            for i in range(7)})
        self.Decoder = nn.ModuleDict({f"layer_{i}": nn.Sequential(
            nn.ConvTranspose2d(dec_in[i], dec_out[i], 4, stride=2, padding=1), nn.BatchNorm2d(dec_out[i]),
            nn.LeakyReLU(0.1)) for i in range(6)})

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        skips = []
        for i in range(7):
            x = self.Encoder[f"layer_{i}"](x)
            skips.append(x)
        maps, y = [skips[6]], skips[6]
        for i in range(6):
            y = torch.cat([self.Decoder[f"layer_{i}"](y), skips[5 - i]], dim=1)
            maps.append(y)
        maps.append(_upsample2(y))
        return maps


class AAD(nn.Module):
    """Adaptive attentional denormalisation: a learned mask chooses between identity and attribute modulation."""

    def __init__(self, h_channels: int, z_channels: int, id_size: int = ID_SIZE):
        super().__init__()
        self.BNorm = nn.BatchNorm2d(h_channels)
        self.conv_f = nn.Conv2d(h_channels, 1, 1)
        self.fc_1 = nn.Linear(id_size, h_channels)  # identity scale
        self.fc_2 = nn.Linear(id_size, h_channels)  # identity shift
        self.conv1 = nn.Conv2d(z_channels, h_channels, 3, padding=1)  # attribute scale
        self.conv2 = nn.Conv2d(z_channels, h_channels, 3, padding=1)  # attribute shift

    def forward(self, h: torch.Tensor, z_att: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        h_bar = self.BNorm(h)
        m = torch.sigmoid(self.conv_f(h_bar))
        ident = self.fc_1(z_id)[:, :, None, None] * h_bar + self.fc_2(z_id)[:, :, None, None]
        attr = self.conv1(z_att) * h_bar + self.conv2(z_att)
        return (1 - m) * attr + m * ident


class AADResBlock(nn.Module):
    def __init__(self, h_in: int, z_in: int, h_out: int, id_size: int = ID_SIZE):
        super().__init__()
        self.add1, self.add2 = AAD(h_in, z_in, id_size), AAD(h_in, z_in, id_size)
        self.conv1 = nn.Conv2d(h_in, h_in, 3, padding=1)
        self.conv2 = nn.Conv2d(h_in, h_out, 3, padding=1)
        self.reshape = h_in != h_out
        if self.reshape:  # a learned shortcut where the width changes
            self.add3 = AAD(h_in, z_in, id_size)
            self.conv3 = nn.Conv2d(h_in, h_out, 3, padding=1)

    def forward(self, h: torch.Tensor, z_att: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.relu(self.add1(h, z_att, z_id)))
        y = self.conv2(F.relu(self.add2(y, z_att, z_id)))
        short = self.conv3(F.relu(self.add3(h, z_att, z_id))) if self.reshape else h
        return y + short


class AADGenerator(nn.Module):
    def __init__(self, width: int = 1, id_size: int = ID_SIZE):
        super().__init__()
        h_in, z_in, h_out = _scaled(GEN_H_IN, width), _scaled(GEN_Z_IN, width), _scaled(GEN_H_OUT, width)
        self.model = nn.ModuleDict({f"layer_{i}": AADResBlock(h_in[i], z_in[i], h_out[i], id_size)
                                    for i in range(8)})

    def forward(self, z_id: torch.Tensor, z_att: Sequence[torch.Tensor]) -> torch.Tensor:
        x = z_att[0]
        for i in range(7):
            x = _upsample2(self.model[f"layer_{i}"](x, z_att[i], z_id))
        return torch.sigmoid(self.model["layer_7"](x, z_att[7], z_id))


class Normalize(nn.Module):
    def __init__(self, mean: float, std: float):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class BlendSwapNet(nn.Module):
    """The checkpoint's module tree; :meth:`forward` is the official inference (EMA weights)."""

    def __init__(self, width: int = 1, id_layers: Sequence[int] = (3, 13, 30, 3)):
        super().__init__()
        self.width = width
        self.G, self.E = AADGenerator(width), AttributesEncoder(width)
        self.Z_e = nn.Sequential(Normalize(0.5, 0.5), IResNet(id_layers))
        self.mask_head = nn.Conv2d(64 // width, 1, 1)
        self.G_ema, self.E_ema = AADGenerator(width), AttributesEncoder(width)
        self.mask_head_ema = nn.Conv2d(64 // width, 1, 1)

    def drop_training_copies(self) -> None:
        """Free the non-EMA generator/encoder/mask head after loading: inference never uses them."""
        self.G = self.E = self.mask_head = None

    def forward(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """target: N x 3 x 256 x 256 FFHQ crop, source: N x 3 x 112 x 112 arcface crop, both RGB in [0, 1]."""
        z_id = F.normalize(self.Z_e(source))
        maps = self.E_ema(target)
        out = self.G_ema(z_id, maps)
        mask = torch.sigmoid(self.mask_head_ema(maps[-1]))
        return out * mask + target * (1 - mask)


def infer_width(state: dict) -> int:
    """The channel divisor of a checkpoint (1 for the official one) from its first encoder convolution."""
    key = "E_ema.Encoder.layer_0.0.weight"
    if key not in state:
        return 1  # load_state_dict_checked then names the missing keys
    out = int(state[key].shape[0])
    return max(1, ENCODER_CHANNELS[1] // out) if out else 1
