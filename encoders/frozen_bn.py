"""Batch norm with frozen statistics: the affine scale and shift train, the running mean and variance never move.

Fine-tuning a pretrained encoder on a few hundred faces in batches of 32 would otherwise replace statistics
estimated on millions of faces by those of small, identity-skewed batches. The module keeps the state-dict keys
of ``nn.BatchNorm1d/2d/3d`` (``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``), so
a state dict saved from it loads into the unfrozen architecture, and it exports to ONNX as
``BatchNormalization``. It is not a ``_BatchNorm`` subclass on purpose: the training loop's global-batch
conversion (:func:`idbench.bench.training.batchnorm.convert_batch_norms`) leaves it alone.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm(nn.Module):
    """``F.batch_norm`` in inference mode whatever ``train()`` says; ``weight``/``bias`` stay parameters."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        self.eps = bn.eps
        self.num_features = bn.num_features
        self.weight = nn.Parameter(bn.weight.detach().clone(), bn.weight.requires_grad) if bn.affine else None
        self.bias = nn.Parameter(bn.bias.detach().clone(), bn.bias.requires_grad) if bn.affine else None
        if bn.running_mean is None:  # track_running_stats=False: the statistics are those of each input
            raise ValueError("a batch norm without running statistics cannot be frozen")
        self.register_buffer("running_mean", bn.running_mean.detach().clone())
        self.register_buffer("running_var", bn.running_var.detach().clone())
        self.register_buffer("num_batches_tracked", bn.num_batches_tracked.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, frozen statistics"


def freeze_batch_norms(module: nn.Module,
                       which: Optional[Callable[[nn.modules.batchnorm._BatchNorm], bool]] = None) -> nn.Module:
    """Replace every batch norm with running statistics (or those ``which`` accepts) by :class:`FrozenBatchNorm`.

    Works in place on the children (also of ``torch.fx`` graph modules, whose nodes call submodules by name);
    returns the module, replaced itself when it is a batch norm.
    """
    def wanted(m: nn.Module) -> bool:
        return (isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
                and (which is None or which(m)))

    if wanted(module):
        return FrozenBatchNorm(module)
    if isinstance(module, torch.jit.ScriptModule):  # compiled: its submodules cannot be swapped (see ScriptBackbone)
        return module
    for name, child in list(module.named_children()):
        new = freeze_batch_norms(child, which)
        if new is not child:
            setattr(module, name, new)
    return module
