"""Batch norm over the global batch of all ranks on CPU (gloo), where ``SyncBatchNorm`` needs CUDA."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: the gradient of each rank's input is the sum of all ranks' gradients."""

    @staticmethod
    def forward(ctx, t: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        out = t.clone()
        torch.distributed.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g = grad.contiguous().clone()
        torch.distributed.all_reduce(g, group=ctx.group)
        return g, None


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics cover the global batch (all ranks); CPU + gloo capable.

    Two differentiable all-reduces (sum/count, then centred sum of squares); the same code path
    with one process, so one- and multi-process runs compute the same numbers. Same parameters,
    buffers and state-dict keys as ``nn.BatchNorm1d/2d``.
    """

    def __init__(self, *args, group=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.group = group

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def _all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            return _AllReduceSum.apply(t, self.group if self.group is not None else dist.group.WORLD)
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and self.running_mean is not None:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        c = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        shape = [1, c] + [1] * (x.dim() - 2)
        xf = x.float()
        n_local = torch.tensor([x.numel() / c], dtype=torch.float32, device=x.device)
        s = self._all_reduce(torch.cat([xf.sum(dims), n_local]))
        n = s[-1]
        mean = s[:c] / n
        centred = xf - mean.view(shape)
        var = self._all_reduce((centred * centred).sum(dims)) / n
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                mom = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                unbiased = var * (n / (n - 1).clamp_min(1.0))
                self.running_mean.mul_(1 - mom).add_(mean.detach(), alpha=mom)
                self.running_var.mul_(1 - mom).add_(unbiased.detach(), alpha=mom)
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_batch_norms(module: nn.Module, group=None) -> nn.Module:
    """Replace every ``nn.BatchNorm1d/2d/3d`` by :class:`GlobalBatchNorm` (state copied)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats, group=group)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in list(module.named_children()):
        setattr(module, name, convert_batch_norms(child, group))
    return module
