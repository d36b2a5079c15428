"""``dlib.finetuned``: dlib's face ResNet (torch port) with weights from a torch state dict.

The same module, chip (dlib150) and input scaling as ``dlib.resnet_v1_torch``, but the weights come
from a ``.pth`` state dict, e.g. the ``backbone.pth`` that ``bench train --arch dlib.resnet_v1_torch``
writes when it fine-tunes the shipped network (ArcFace / BlendFace fine-tuning)::

    enc = create_encoder("dlib.finetuned", weights="runs/dlib_blendface/backbone.pth")

There is no default file: ``weights=`` (or ``$IDBENCH_HOME/weights/dlib_finetuned.pth``) is required.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from idbench.errors import WeightsFormatError
from idbench.weights import WeightSource

from .base import TorchEncoder
from .dlib_torch import SPEC as DLIB_TORCH_SPEC
from .registry import register_encoder

FINETUNED_WEIGHTS = WeightSource(
    "dlib_finetuned.pth",
    "a state dict written by `bench train --arch dlib.resnet_v1_torch` (RUN/backbone.pth); pass weights=PATH",
    min_bytes=1_000,
)

SPEC = dataclasses.replace(
    DLIB_TORCH_SPEC,
    name="dlib.finetuned",
    weights=(FINETUNED_WEIGHTS,),
    licence="weights: yours (fine-tuned from dlib's public-domain model); dlib code: Boost Software License",
    description="dlib ResNet (torch port) fine-tuned by bench train (ArcFace/BlendFace loss); torch state dict",
)


def load_finetuned_module(path: Path):
    """:class:`~idbench.encoders.dlib_resnet.DlibResNet` with the weights of a torch state dict (eval mode)."""
    import torch

    from .dlib_resnet import DlibResNet

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle / zip errors of all kinds
        raise WeightsFormatError(f"{path}: not a torch state dict ({type(e).__name__}: {e})") from None
    if isinstance(sd, dict):
        for key in ("backbone", "state_dict", "model"):
            if isinstance(sd.get(key), dict):
                sd = sd[key]
                break
    if not isinstance(sd, dict):
        raise WeightsFormatError(f"{path}: expected a state dict, got {type(sd).__name__}")
    sd = {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}
    module = DlibResNet()
    missing, unexpected = module.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise WeightsFormatError(f"{path}: not a dlib ResNet state dict (missing {list(missing)[:4]}, "
                                 f"unexpected {list(unexpected)[:4]})")
    return module.eval()


class DlibFinetunedEncoder(TorchEncoder):
    batch_size = 64

    def __init__(self, spec, weights_path: Optional[Path], device: str = "cpu"):
        if weights_path is None:
            raise WeightsFormatError(f"{spec.name} needs a state-dict file (weights=PATH)")
        module = load_finetuned_module(Path(weights_path))
        for p in module.parameters():
            p.requires_grad_(False)
        super().__init__(spec, module, weights_path, device)


@register_encoder(SPEC)
def _dlib_finetuned(spec, weights_path, device="cpu"):
    return DlibFinetunedEncoder(spec, weights_path, device)
