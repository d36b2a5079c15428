"""What the networks with published weights share: the ResNet-50 trunk, the binned-angle network of
HopeNet and L2CS-Net, the torch estimator base, crops, and loading through :mod:`idbench.checkpoints`.

torch, torchvision and cv2 are imported inside functions, so ``import idbench.analysis.estimators`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from idbench.errors import NoFaceError
from idbench.faces import Face

from .base import Estimator

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESNET50_MIN_BYTES = 50_000_000  # float32 ResNet-50 trunks are ~94 MB; a smaller file is truncated


def resnet50_trunk():
    """torchvision's ResNet-50 (random init) -- the trunk of all three networks."""
    import torchvision

    return torchvision.models.resnet50(weights=None)


def binned_resnet(heads: Dict[str, int]):
    """ResNet-50 trunk + one linear head per angle (``heads``: name -> bins) + the vestigial
    ``fc_finetune`` (2051 -> 3) both published checkpoints carry. Parameter names match
    HopeNet's and L2CS-Net's modules (``conv1``, ``layer1``..``layer4``, ``fc_yaw``...)."""
    import torch
    from torch import nn

    class BinnedResNet(nn.Module):
        def __init__(self):
            super().__init__()
            t = resnet50_trunk()
            self.conv1, self.bn1, self.relu, self.maxpool = t.conv1, t.bn1, t.relu, t.maxpool
            self.layer1, self.layer2, self.layer3, self.layer4 = t.layer1, t.layer2, t.layer3, t.layer4
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.head_names = tuple(heads)
            for name, bins in heads.items():
                setattr(self, name, nn.Linear(2048, bins))
            self.fc_finetune = nn.Linear(2048 + 3, 3)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            x = torch.flatten(self.avgpool(x), 1)
            return tuple(getattr(self, n)(x) for n in self.head_names)

    return BinnedResNet()


def load_network(module, path: Path, what: str, key: Optional[str] = None, optional: Tuple[str, ...] = (),
                 allow_pickle: Optional[bool] = None):
    """``module`` with the weights of the checkpoint ``path`` (the one reader: :mod:`idbench.checkpoints`).

    ``key``: the entry of a file holding several nets; ``optional``: key prefixes the file may lack
    (the vestigial ``fc_finetune`` head); ``allow_pickle``: the one trust switch for pickled objects
    (default ``IDBENCH_ALLOW_PICKLE``).
    """
    from idbench.checkpoints import load_state_dict_checked, read_state_dict

    state = read_state_dict(path, allow_pickle=allow_pickle, key=key)
    return load_state_dict_checked(module, state, what, path, optional=optional)


def load_binned_resnet(heads: Dict[str, int], path: Path, what: str, allow_pickle: Optional[bool] = None):
    """:func:`binned_resnet` with the weights of ``path`` (HopeNet, L2CS-Net; ``fc_finetune`` may be absent)."""
    return load_network(binned_resnet(heads), path, what, optional=("fc_finetune.",), allow_pickle=allow_pickle)


def clamped_crop(image: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """The box cut from the image, clipped to its borders (a box wholly outside: NoFaceError)."""
    h, w = image.shape[:2]
    x0, y0 = int(max(x0, 0)), int(max(y0, 0))
    x1, y1 = int(min(x1, w)), int(min(y1, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise NoFaceError(f"face box ({x0}, {y0}, {x1}, {y1}) lies outside the image")
    return image[y0:y1, x0:x1]


def cv2_resize(img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """``cv2.resize`` to (W, H) with its default bilinear filter (no antialiasing), as the official scripts call it."""
    import cv2

    return cv2.resize(img, (int(size[0]), int(size[1])), interpolation=cv2.INTER_LINEAR)


class TorchEstimator(Estimator):
    """An estimator around a torch network: subclasses give :meth:`preprocess` (one face -> uint8 RGB crop)
    and :meth:`_decode` (network outputs -> N x k float64); crops run in batches of :attr:`batch_size`."""

    batch_size = 16

    def __init__(self, spec, module, weights_path: Optional[Path], device: str):
        super().__init__(spec, weights_path)
        import torch

        self.device = torch.device(device)
        self.module = module.to(self.device).eval()

    def preprocess(self, image: np.ndarray, face: Face) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _to_tensor(self, crops: List[np.ndarray]):
        import torch

        x = torch.from_numpy(np.stack(crops)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def _decode(self, outputs) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, crops: List[np.ndarray]):
        import torch

        with torch.inference_mode():
            return self.module(self._to_tensor(crops))

    def _estimate_batch(self, images, faces):
        crops = [self.preprocess(im, f) for im, f in zip(images, faces)]
        out = []
        for i in range(0, len(crops), self.batch_size):
            out.append(self._decode(self.forward(crops[i:i + self.batch_size])))
        return list(np.concatenate(out))


def expected_angle(logits, step: float, offset: float):
    """Soft-argmax over bins: sum_i softmax(logits)_i * i * step - offset (degrees)."""
    import torch

    idx = torch.arange(logits.shape[1], dtype=torch.float32, device=logits.device)
    return (torch.softmax(logits.float(), 1) * idx).sum(1) * step - offset
