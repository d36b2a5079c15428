"""Any TorchScript recognition model (``torch.jit.save``) under a declared contract.

The model is loaded with ``torch.jit.load`` through :func:`idbench.checkpoints.read_torchscript`, only behind
the one trust switch (``IDBENCH_ALLOW_PICKLE=1``): a TorchScript file is a program. One dry run on a zero batch
of the declared size reads its output (a tensor, or a tuple/list/dict from which ``output`` picks: an index
such as ``"0"`` or a key) and checks its width against ``embedding_size`` (used when absent). The encoder is a
:class:`~idbench.encoders.base.TorchEncoder` whose module is a :class:`ScriptBackbone`: differentiable through
``forward_tensor``, and trainable (``bench train --arch CONTRACT.toml``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from idbench.checkpoints import read_torchscript
from idbench.errors import ContractError

from .base import TorchEncoder


def _pick(out, output: str, where: str):
    """The embedding tensor of a model output."""
    if isinstance(out, torch.Tensor):
        if output:
            raise ContractError(f"{where} names output {output!r} but the model returns a single tensor")
        return out
    if isinstance(out, dict):
        keys = [str(k) for k in out]
        if output not in out:
            raise ContractError(f"{where}: the model returns a dict ({', '.join(keys)}); declare output = one key"
                                if not output else f"{where} names output {output!r}, the model returns: "
                                                   f"{', '.join(keys)}")
        return out[output]
    if isinstance(out, (tuple, list)):
        if not (output.isdigit() and int(output) < len(out)):
            raise ContractError(f"{where}: the model returns {len(out)} outputs; declare output = \"0\".."
                                f"\"{len(out) - 1}\" (got {output!r})")
        return out[int(output)]
    raise ContractError(f"{where}: the model returns a {type(out).__name__}, not a tensor")


class ScriptBackbone(nn.Module):
    """A TorchScript model on the network's blob in NCHW: permuted for an NHWC model, the embedding output picked
    and flattened to N x D. The scripted model stays in inference mode (batch-norm statistics frozen, no dropout)
    when the backbone is trained, as :mod:`idbench.encoders.frozen_bn` does for converted ONNX graphs."""

    def __init__(self, scripted, layout: str, output: str, name: str):
        super().__init__()
        self.scripted = scripted
        self.nhwc, self.output, self.name = layout == "NHWC", output, name

    def train(self, mode: bool = True) -> "ScriptBackbone":
        super().train(mode)
        self.scripted.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nhwc:
            x = x.permute(0, 2, 3, 1)
        out = _pick(self.scripted(x), self.output, f"contract {self.name}")
        return out.reshape(out.shape[0], -1).float()


class TorchScriptEncoder(TorchEncoder):
    """A scripted / traced module (its :class:`ScriptBackbone`); layout and output selection from the spec."""

    batch_size = 32


def contract_torchscript_encoder(contract, weights_path: Path, device: str = "cpu") -> TorchScriptEncoder:
    module = read_torchscript(weights_path, device)  # behind the trust switch: TorchScript is code
    layout = contract.layout or "NCHW"
    spec = contract.spec(layout, contract.embedding_size or 1)
    backbone = ScriptBackbone(module, layout, contract.output, contract.name)
    enc = TorchScriptEncoder(spec, backbone, weights_path, device)
    h, w = spec.input_size
    with torch.inference_mode():
        try:
            out = enc.forward_tensor(torch.zeros(1, 3, h, w, device=enc.device))
        except ContractError:
            raise
        except Exception as e:  # noqa: BLE001 - a shape error inside the model: the contract does not fit
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise ContractError(f"{contract.path}: the model fails on a 1 x {h} x {w} {layout} input ({first}); "
                                f"check input_size and layout") from None
    width = out.shape[1]
    if contract.embedding_size is not None and width != contract.embedding_size:
        raise ContractError(f"{contract.path}: contract {contract.name} says embedding_size "
                            f"{contract.embedding_size} but the model output gives {width} values")
    if contract.embedding_size is None:
        enc.spec = contract.spec(layout, width)
    return enc
