"""Face parsing (BiSeNet, face-parsing.PyTorch) for the ``parsing:PATH`` face region.

The network is face-parsing.PyTorch's BiSeNet (ResNet-18 context path, no spatial path) with the
same parameter names, so its ``79999_iter.pth`` loads strictly through the one checkpoint reader
(:func:`idbench.checkpoints.read_state_dict` / :func:`~idbench.checkpoints.load_state_dict_checked`).
Imports torch: only used when a ``parsing:`` region is asked for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from idbench.errors import WeightsNotFoundError


# BiSeNet / CelebAMask-HQ labels kept as inner face (paper section 1.2 step 3): skin, brows, eyes,
# eyeglasses, nose, mouth, upper lip, lower lip.
PARSING_INNER = (1, 2, 3, 4, 5, 6, 10, 11, 12, 13)


def _bisenet(n_classes: int = 19):
    """face-parsing.PyTorch's BiSeNet (ResNet-18 context path, no spatial path), same parameter names."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision

    class CBR(nn.Module):
        def __init__(self, cin, cout, ks=3, stride=1, padding=1):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, ks, stride, padding, bias=False)
            self.bn = nn.BatchNorm2d(cout)

        def forward(self, x):
            return F.relu(self.bn(self.conv(x)))

    class Head(nn.Module):
        def __init__(self, cin, mid, n):
            super().__init__()
            self.conv = CBR(cin, mid)
            self.conv_out = nn.Conv2d(mid, n, 1, bias=False)

        def forward(self, x):
            return self.conv_out(self.conv(x))

    class ARM(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = CBR(cin, cout)
            self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
            self.bn_atten = nn.BatchNorm2d(cout)

        def forward(self, x):
            f = self.conv(x)
            return f * torch.sigmoid(self.bn_atten(self.conv_atten(F.adaptive_avg_pool2d(f, 1))))

    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            r = torchvision.models.resnet18(weights=None)
            self.conv1, self.bn1, self.maxpool = r.conv1, r.bn1, r.maxpool
            self.layer1, self.layer2, self.layer3, self.layer4 = r.layer1, r.layer2, r.layer3, r.layer4

        def forward(self, x):
            x = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
            f8 = self.layer2(x)
            f16 = self.layer3(f8)
            return f8, f16, self.layer4(f16)

    class ContextPath(nn.Module):
        def __init__(self):
            super().__init__()
            self.resnet = Backbone()
            self.arm16, self.arm32 = ARM(256, 128), ARM(512, 128)
            self.conv_head32, self.conv_head16 = CBR(128, 128), CBR(128, 128)
            self.conv_avg = CBR(512, 128, ks=1, padding=0)

        def forward(self, x):
            f8, f16, f32 = self.resnet(x)
            avg = self.conv_avg(F.adaptive_avg_pool2d(f32, 1))
            s32 = self.arm32(f32) + F.interpolate(avg, f32.shape[2:], mode="nearest")
            up32 = self.conv_head32(F.interpolate(s32, f16.shape[2:], mode="nearest"))
            s16 = self.arm16(f16) + up32
            up16 = self.conv_head16(F.interpolate(s16, f8.shape[2:], mode="nearest"))
            return f8, up16

    class FFM(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.convblk = CBR(cin, cout, ks=1, padding=0)
            self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
            self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

        def forward(self, a, b):
            f = self.convblk(torch.cat([a, b], 1))
            att = torch.sigmoid(self.conv2(F.relu(self.conv1(F.adaptive_avg_pool2d(f, 1)))))
            return f * att + f

    class BiSeNet(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.cp = ContextPath()
            self.ffm = FFM(256, 256)
            self.conv_out = Head(256, 256, n)
            self.conv_out16 = Head(128, 64, n)  # auxiliary heads: kept so the checkpoint loads strictly
            self.conv_out32 = Head(128, 64, n)

        def forward(self, x):
            f8, c8 = self.cp(x)
            out = self.conv_out(self.ffm(f8, c8))
            return F.interpolate(out, x.shape[2:], mode="bilinear", align_corners=True)

    return BiSeNet(n_classes)


class ParsingMask:
    """Inner-face mask from a BiSeNet face-parsing checkpoint (face-parsing.PyTorch ``79999_iter.pth``).

    The image is resized to 512x512 as face-parsing.PyTorch's ``test.py`` does (PIL bilinear, antialiased when
    shrinking), normalised with ImageNet mean/std, and the classes in
    :data:`PARSING_INNER` are kept. Raises :class:`WeightsNotFoundError` at construction when the
    file is missing, :class:`WeightsFormatError` when it is not that network's state dict.
    """

    def __init__(self, path: os.PathLike, device: str = "cpu", classes: Sequence[int] = PARSING_INNER):
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise WeightsNotFoundError(
                f"face-parsing weights not found: {self.path} (BiSeNet '79999_iter.pth' from "
                f"face-parsing.PyTorch; pass mask='parsing:/path/to/79999_iter.pth' or use the default "
                f"landmark mask)")
        self.device = device
        self.classes = tuple(classes)
        self._net = None

    def _load(self):
        if self._net is None:
            from idbench.checkpoints import load_state_dict_checked, read_state_dict

            state = read_state_dict(self.path, origin="face-parsing.PyTorch 79999_iter.pth")
            net = load_state_dict_checked(_bisenet(19), state, "a face-parsing BiSeNet", self.path)
            self._net = net.to(self.device).eval()
        return self._net

    def __call__(self, image: np.ndarray, landmarks68: np.ndarray = None) -> np.ndarray:
        import cv2
        import torch

        from idbench.imageio import pil_resize

        h, w = image.shape[:2]
        x = pil_resize(image, (512, 512), "bilinear").astype(np.float32) / 255.0  # test.py: PIL BILINEAR
        x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
        t = torch.from_numpy(x.transpose(2, 0, 1)[None].copy()).to(self.device)
        with torch.inference_mode():
            lab = self._load()(t)[0].argmax(0).cpu().numpy().astype(np.uint8)
        keep = np.isin(lab, self.classes).astype(np.uint8)
        return cv2.resize(keep, (w, h), interpolation=cv2.INTER_NEAREST).astype(np.float32)
