"""``simswap``: SimSwap 224 (``people`` checkpoint) with its own ArcFace.

Contract of ``test_wholeimage_swapsingle.py`` (neuralchen/SimSwap at commit
bd7b7686a17f41dd11cfcd5d82f7e4c5eb94b780), crop size 224: the source crop is ``ToTensor`` + ImageNet
mean/std, resized to 112 by ``F.interpolate`` (nearest) for ``netArc``, whose output is L2-normalised; the
target crop is ``ToTensor`` RGB in [0, 1]; ``netG(target, latent)`` returns RGB in [0, 1].

Crops: the official detector picks, per face, the best of insightface's five older pose templates; idbench
crops both faces with the arcface template at 224 (:mod:`idbench.align`'s one geometry), which is close to
the frontal one.
"""

from __future__ import annotations

import numpy as np

from idbench.checkpoints import load_state_dict_checked, read_state_dict
from idbench.errors import WeightsFormatError

from ._base import LearnedSwapper, to_uint8
from .spec import SIMSWAP_SPEC, LearnedSwapperSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_generator(path, origin: str = "", device: str = "cpu"):
    import torch

    from .simswap_net import SimSwapGenerator, generator_config

    state = read_state_dict(path, origin)
    n_blocks, width = generator_config(state)
    with torch.device("meta"):
        net = SimSwapGenerator(n_blocks, width)
    load_state_dict_checked(net, state, "a SimSwap 224 generator (Generator_Adain_Upsample)", path,
                            hint="; expected SimSwap's checkpoints/people/latest_net_G.pth")
    return net.to(device).eval()


def load_arcface(path, origin: str = "", device: str = "cpu"):
    """SimSwap's ``arcface_checkpoint.tar``: the pickled module (trusted files only) or its state_dict()."""
    import torch

    from .simswap_net import SimSwapArcFace, arcface_config, official_class_path

    with official_class_path():
        state = read_state_dict(path, origin)
    layers, width = arcface_config(state)
    if min(layers) < 1:
        raise WeightsFormatError(f"{path}: has no layer1..layer4 blocks; not SimSwap's arcface_checkpoint.tar")
    with torch.device("meta"):
        net = SimSwapArcFace(layers, width)
    load_state_dict_checked(net, state, "SimSwap's SE-ResNet ArcFace", path,
                            hint="; expected SimSwap's arcface_model/arcface_checkpoint.tar")
    return net.to(device).eval()


class SimSwap(LearnedSwapper):
    def __init__(self, spec: LearnedSwapperSpec = SIMSWAP_SPEC, weights=None, device: str = "cpu"):
        super().__init__(spec, weights, device)
        g, arc = spec.weights
        self.generator = load_generator(self.paths[g.filename], g.origin, device)
        self.arcface = load_arcface(self.paths[arc.filename], arc.origin, device)
        style = self.generator.BottleNeck[0].style1.linear.in_features
        if style != self.arcface.fc.out_features:
            raise WeightsFormatError(f"{self.paths[g.filename]}: generator takes {style}-d identities but the "
                                     f"ArcFace gives {self.arcface.fc.out_features}-d ones")

    def _tensor(self, crop: np.ndarray):
        import torch

        return torch.from_numpy(crop.astype(np.float32).transpose(2, 0, 1)[None] / 255.0).to(self.device)

    def identity(self, source_crop: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        with torch.inference_mode():
            x = F.interpolate((self._tensor(source_crop) - mean) / std, size=(112, 112))
            return F.normalize(self.arcface(x)).cpu().numpy()

    def generate(self, target_crop: np.ndarray, latent: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.generator(self._tensor(target_crop), torch.from_numpy(latent).to(self.device))
        return to_uint8(out[0].permute(1, 2, 0).cpu().numpy())
