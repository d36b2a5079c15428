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


def load_finetuned_module(path: Path, allow_pickle: Optional[bool] = None):
    """:class:`~idbench.encoders.dlib_resnet.DlibResNet` with the weights of a torch state dict (eval mode).

    Read by the one checkpoint reader (:mod:`idbench.checkpoints`): containers and ``module.`` prefixes
    unwrapped, strict keys and shapes with one-line errors; pickled objects only behind ``allow_pickle``.
    """
    from idbench.checkpoints import load_state_dict_checked, read_state_dict

    from .dlib_resnet import DlibResNet

    state = read_state_dict(path, FINETUNED_WEIGHTS.origin, allow_pickle)
    module = DlibResNet()
    load_state_dict_checked(module, state, "a dlib ResNet (dlib.resnet_v1_torch)", path)
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
