"""Trainable architectures: IResNet (ArcFace / BlendFace), dlib's ResNet (fine-tuning), any torch encoder, and any
ONNX or TorchScript encoder (a contract file, or an insightface-style ONNX path).

Initial weights (``--init``) are read by the loaders of :mod:`idbench.encoders`, which all go through
the one checkpoint reader (:mod:`idbench.checkpoints`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from idbench.errors import InputError


class Preprocessed(nn.Module):
    """``backbone((x - mean) / std)`` on RGB 0..255 input (channel order swapped first for BGR networks)."""

    def __init__(self, backbone: nn.Module, spec):
        super().__init__()
        self.backbone = backbone
        self.bgr = spec.colour == "BGR"
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bgr:
            x = x.flip(1)
        return self.backbone((x - self.mean) / self.std)


@dataclass
class Arch:
    """A trainable architecture: the module, its input contract and the encoder its weights load into."""

    name: str
    module: nn.Module
    spec: object  # EncoderSpec: alignment, input size, colour, mean/std, layout, embedding size
    export_name: Optional[str]  # registered encoder whose factory reads backbone.pth (None: only RUN/encoder.toml)


_IRESNET = re.compile(r"^(?:iresnet|arcface\.r|blendface\.r)(\d+)$")


def _iresnet_spec(depth: int, blend_prob: float):
    from idbench.encoders import ENCODERS, EncoderSpec

    for name in ((f"blendface.r{depth}", f"arcface.r{depth}") if blend_prob > 0 else
                 (f"arcface.r{depth}", f"blendface.r{depth}")):
        if name in ENCODERS:
            return ENCODERS.spec(name)
    return EncoderSpec(name=f"arcface.r{depth}", input_size=(112, 112), alignment="arcface112", colour="RGB",
                       mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5), embedding_size=512,
                       l2_normalised=False, backend="torch")


def _trainable(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(True)
    return module


def _iresnet_arch(depth: int, init: Optional[str], blend_prob: float, export_name: Optional[str]) -> Arch:
    from idbench.encoders.iresnet import build_iresnet, load_iresnet_checkpoint

    try:
        module = build_iresnet(depth)
    except ValueError as e:  # a depth IResNet does not define
        raise InputError(str(e)) from None
    if init:
        module = load_iresnet_checkpoint(module, init)
    default_export = f"{'blendface' if blend_prob > 0 else 'arcface'}.r{depth}"
    return Arch(f"iresnet{depth}", _trainable(module), _iresnet_spec(depth, blend_prob),
                export_name or default_export)


def _dlib_arch(init: Optional[str], export_name: Optional[str]) -> Arch:
    from idbench.encoders import get_spec
    from idbench.encoders.dlib_finetuned import load_finetuned_module
    from idbench.encoders.dlib_resnet import load_dlib_resnet
    from idbench.weights import resolve_weights

    spec = get_spec("dlib.resnet_v1_torch")
    if init and not str(init).endswith(".dat"):  # a torch state dict, e.g. an earlier run's backbone.pth
        module = load_finetuned_module(Path(init))
    else:  # dlib's own serialisation (the shipped model by default)
        module = load_dlib_resnet(init or resolve_weights(spec.weights[0]))
    return Arch("dlib.resnet_v1_torch", _trainable(module), spec, export_name or "dlib.finetuned")


def _encoder_arch(enc, init: Optional[str], export_name: Optional[str]) -> Arch:
    """The trainable module of a built encoder: a torch encoder's own module, an ONNX graph converted
    (:mod:`idbench.encoders.onnx_torch`); ``init`` is a state dict of that module (an earlier run's backbone.pth)."""
    from idbench.checkpoints import load_state_dict_checked, read_state_dict
    from idbench.encoders.base import TorchEncoder
    from idbench.encoders.onnx_backend import OnnxEncoder

    name = enc.spec.name
    if isinstance(enc, OnnxEncoder):
        if enc.fixed_batch is not None:
            raise InputError(f"{enc.weights_path} was exported with a fixed batch of {enc.fixed_batch}; re-export it "
                             f"with a dynamic batch axis to fine-tune it")
        from idbench.encoders.onnx_torch import onnx_to_torch

        module = onnx_to_torch(enc.weights_path, enc.spec.layout, enc.output_name)
    elif isinstance(enc, TorchEncoder):
        module = enc.module
    else:
        raise InputError(f"encoder {name} is not a torch module or an ONNX graph ({type(enc).__name__}); "
                         f"it cannot be trained")
    if init:
        state = read_state_dict(init, f"a backbone.pth of an earlier bench train --arch {name}")
        load_state_dict_checked(module, state, f"the trainable {name}", Path(init))
    return Arch(name, _trainable(module), enc.spec, export_name)


def _registered_arch(name: str, init: Optional[str], export_name: Optional[str]) -> Arch:
    from idbench.encoders import ENCODERS
    from idbench.encoders.base import TorchEncoder
    from idbench.weights import resolve_weights

    spec = ENCODERS.spec(name)
    path = None
    if init:
        path = resolve_weights(spec.weights[0], init) if spec.weights else Path(init)
    enc = ENCODERS.factory(name)(spec, path, "cpu")
    return _encoder_arch(enc, None, (export_name or name) if isinstance(enc, TorchEncoder) else None)


def _file_arch(path: str, init: Optional[str]) -> Arch:
    """A contract file (ONNX or TorchScript), or a bare ONNX path read the way ``arcface.onnx`` reads
    insightface's packs (1 x 3 x 112 x 112 RGB, normalisation found in the graph)."""
    import dataclasses

    from idbench.encoders import create_encoder
    from idbench.encoders.contract import is_contract_path

    if is_contract_path(path):
        return _encoder_arch(create_encoder(path), init, None)
    enc = create_encoder("arcface.onnx", weights=path)
    enc.spec = dataclasses.replace(enc.spec, name=Path(path).stem, description=f"{path} read as arcface.onnx")
    return _encoder_arch(enc, init, None)


def build_arch(name: str, init: Optional[str] = None, blend_prob: float = 0.0,
               export_name: Optional[str] = None) -> Arch:
    """The trainable module for ``name``.

    * ``iresnet18|34|50|100`` (also ``arcface.rNN``, ``blendface.rNN``): InsightFace IResNet
      (:mod:`idbench.encoders.iresnet`), from scratch or from ``init`` (any checkpoint
      ``load_iresnet_checkpoint`` reads, or a ``backbone.pth``); exported for ``blendface.rNN``
      when ``blend_prob > 0``, else ``arcface.rNN``.
    * ``dlib.resnet_v1_torch``: dlib's ResNet from its shipped ``.dat`` (fine-tuning), or from a
      torch state dict given as ``init``; exported for ``dlib.finetuned``.
    * any other registered encoder whose factory returns a :class:`~idbench.encoders.TorchEncoder`:
      built by its factory with ``init`` as the weight file (``None``: the factory's own
      initialisation); exported under its own name. A registered ONNX encoder (``arcface.onnx``) is
      converted like a contract's graph;
    * a contract file ``*.toml`` (ONNX or TorchScript) or an ONNX path (read as ``arcface.onnx``): the graph
      becomes a trainable module with the contract's preprocessing (applied by :class:`Preprocessed`) and
      layout; ``init`` is a state dict of that module (an earlier run's ``backbone.pth``). There is no
      registered encoder for these: the run's ``encoder.toml`` is how the result is used.
    """
    import idbench.encoders  # noqa: F401  (registers the encoders)

    if name.lower().endswith((".toml", ".onnx")):
        return _file_arch(name, init)
    m = _IRESNET.match(name)
    if m:
        return _iresnet_arch(int(m.group(1)), init, blend_prob, export_name)
    if name in ("dlib.resnet_v1_torch", "dlib.finetuned"):
        return _dlib_arch(init, export_name)
    return _registered_arch(name, init, export_name)
