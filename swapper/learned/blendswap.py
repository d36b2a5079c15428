"""``blendswap``: the BlendFace repository's face swapper (AEI-Net + mask head, BlendFace identity).

Contract of ``swapping/inference.py`` / ``swapping/blendswap.py`` (mapooon/BlendFace at commit
0203d91d083eedc5b5b554f9b2380f060532587a): the target is an FFHQ-aligned 256 crop and the source an
insightface-aligned (arcface template) 112 crop, both ``ToTensor`` RGB in [0, 1]; the checkpoint is the
whole ``BlendSwap`` module's ``state_dict()`` (``G``, ``E``, ``Z_e``, ``mask_head`` and their ``_ema``
copies); the output, already blended into the target crop by the mask head, is in [0, 1] and converted
to uint8 as ``inference.py`` does, ``(x * 255).astype(np.uint8)`` (truncation: ``output_uint8="truncate"``).
"""

from __future__ import annotations

import numpy as np

from idbench.checkpoints import load_state_dict_checked, read_state_dict

from ._base import LearnedSwapper, to_uint8
from .spec import BLENDSWAP_SPEC, LearnedSwapperSpec

ID_PREFIX = "Z_e.1."


def load_blendswap(path, origin: str = "", device: str = "cpu"):
    """Read ``blendswap.pth`` strictly into :class:`~.aei_net.BlendSwapNet` (EMA copies kept, the rest dropped)."""
    import torch

    from idbench.encoders.iresnet import infer_iresnet_layers

    from .aei_net import BlendSwapNet, infer_width

    state = read_state_dict(path, origin)
    width = infer_width(state)
    layers = infer_iresnet_layers(k[len(ID_PREFIX):] for k in state if k.startswith(ID_PREFIX)) or (3, 13, 30, 3)
    with torch.device("meta"):
        net = BlendSwapNet(width, layers)
    load_state_dict_checked(net, state, "a BlendSwap (AEI-Net + mask head + BlendFace IResNet)", path,
                            hint="; expected the BlendFace repository's blendswap.pth")
    net.drop_training_copies()
    return net.to(device).eval()


class BlendSwap(LearnedSwapper):
    def __init__(self, spec: LearnedSwapperSpec = BLENDSWAP_SPEC, weights=None, device: str = "cpu"):
        super().__init__(spec, weights, device)
        source = spec.weights[0]
        self.net = load_blendswap(self.paths[source.filename], source.origin, device)

    def _tensor(self, crop: np.ndarray):
        import torch

        return torch.from_numpy(crop.astype(np.float32).transpose(2, 0, 1)[None] / 255.0).to(self.device)

    def identity(self, source_crop: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            return F.normalize(self.net.Z_e(self._tensor(source_crop))).cpu().numpy()

    def generate(self, target_crop: np.ndarray, latent: np.ndarray) -> np.ndarray:
        import torch

        net = self.net
        with torch.inference_mode():  # BlendSwap.forward with the identity computed once per source
            target = self._tensor(target_crop)
            maps = net.E_ema(target)
            out = net.G_ema(torch.from_numpy(latent).to(self.device), maps)
            mask = torch.sigmoid(net.mask_head_ema(maps[-1]))
            out = out * mask + target * (1 - mask)
        return to_uint8(out[0].permute(1, 2, 0).cpu().numpy(), self.spec.output_uint8)
