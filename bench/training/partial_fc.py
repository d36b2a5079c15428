"""A Partial-FC-style sharded margin head: the classifier split by classes over the ranks (An et al., "Partial FC:
Training 10 Million Identities on a Single Machine", ICCVW 2021, without the class sampling).

With C identities and W ranks, rank ``r`` holds the rows ``[start_r, end_r)`` of the C x D weight
(:func:`shard_bounds`, contiguous, sizes differ by at most one). Each step:

1. the ranks' embeddings and labels are gathered (:class:`_GatherWithGrad`), so every rank sees the global batch;
2. each rank computes the cosines of the global batch with its classes and applies the margin to the targets it
   holds (:func:`.loss.margin_logits` on the shard);
3. the softmax cross-entropy over all C classes is assembled with two all-reduces: the row maximum (no gradient)
   and the sum of exponentials (:class:`_SumWithGrad`); the target logit comes from the rank holding it.

Every rank then holds the same global-batch loss; its shard's gradient is exact locally. The embeddings' gradient
is summed over ranks in the gather's backward and multiplied by W, because DDP *averages* the backbone's
gradients over the W ranks (``ddp_average=True``); with ``ddp_average=False`` each rank gets exactly the gradient
of the global loss with respect to its own embeddings (what the equality test compares).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .loss import default_margin, margin_logits


def shard_bounds(num_classes: int, world: int, rank: int) -> Tuple[int, int]:
    """Rows ``[start, end)`` of rank ``rank`` (``numpy.array_split`` of the classes)."""
    edges = np.cumsum([0] + [len(a) for a in np.array_split(np.arange(num_classes), world)])
    return int(edges[rank]), int(edges[rank + 1])


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 (equal sizes); backward: the sum over ranks of the gradient of this rank's slice,
    times ``scale``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float):
        ctx.world, ctx.rank, ctx.n, ctx.scale = dist.get_world_size(), dist.get_rank(), x.shape[0], scale
        parts = [torch.empty_like(x) for _ in range(ctx.world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g = grad.contiguous().clone()
        dist.all_reduce(g)
        return g[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n] * ctx.scale, None


class _SumWithGrad(torch.autograd.Function):
    """All-reduce sum whose backward passes the (identical on every rank) gradient through."""

    @staticmethod
    def forward(ctx, x: torch.Tensor):
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad


class ShardedMarginHead(nn.Module):
    """This rank's rows of the normalised classifier; ``forward(emb, labels)`` -> (per-sample loss of the global
    batch, the global batch's labels, and each sample's predicted class over all C, for the accuracy)."""

    def __init__(self, embedding_size: int, num_classes: int, loss: str = "arcface", scale: float = 64.0,
                 margin: Optional[float] = None, rank: Optional[int] = None, world: Optional[int] = None,
                 ddp_average: bool = True):
        super().__init__()
        self.rank = dist.get_rank() if rank is None else rank
        self.world = dist.get_world_size() if world is None else world
        self.num_classes = num_classes
        self.start, self.end = shard_bounds(num_classes, self.world, self.rank)
        self.weight = nn.Parameter(torch.empty(self.end - self.start, embedding_size))
        nn.init.normal_(self.weight, std=0.01)
        self.loss, self.scale = loss, scale
        self.margin = default_margin(loss) if margin is None else margin
        self.ddp_average = ddp_average

    def load_full(self, weight: torch.Tensor) -> None:
        """Take this rank's rows of a full C x D weight (centroids, a checkpoint)."""
        with torch.no_grad():
            self.weight.copy_(weight[self.start:self.end])

    @torch.no_grad()
    def gather_rows(self, shard: torch.Tensor) -> torch.Tensor:
        """The C x D tensor whose rows this rank holds ``shard`` of (every rank calls it; unequal shards padded)."""
        bounds = [shard_bounds(self.num_classes, self.world, r) for r in range(self.world)]
        pad = torch.zeros(max(e - s for s, e in bounds), *shard.shape[1:], dtype=shard.dtype, device=shard.device)
        pad[:len(shard)] = shard
        parts = [torch.empty_like(pad) for _ in range(self.world)]
        dist.all_gather(parts, pad)
        return torch.cat([p[:e - s] for p, (s, e) in zip(parts, bounds)])

    def full_weight(self) -> torch.Tensor:
        """The whole C x D weight (every rank calls it)."""
        return self.gather_rows(self.weight.detach())

    def forward(self, emb: torch.Tensor, labels: torch.Tensor):
        emb = _GatherWithGrad.apply(emb.float(), float(self.world) if self.ddp_average else 1.0)
        y = torch.cat(_gather(labels))
        cos = F.linear(F.normalize(emb, dim=1), F.normalize(self.weight.float(), dim=1))
        mine = (y >= self.start) & (y < self.end)
        local_y = torch.where(mine, y - self.start, torch.zeros_like(y))
        logits = margin_logits(cos, local_y, self.loss, self.scale, self.margin)
        # rows whose target is elsewhere: undo the margin put on column 0 (margin_logits marks one column per row)
        logits = torch.where(mine.unsqueeze(1), logits, cos.clamp(-1, 1) * self.scale)
        row_max = logits.detach().max(1).values
        dist.all_reduce(row_max, op=dist.ReduceOp.MAX)
        sum_exp = _SumWithGrad.apply(torch.exp(logits - row_max.unsqueeze(1)).sum(1))
        target = _SumWithGrad.apply(torch.where(mine, logits.gather(1, local_y.view(-1, 1)).squeeze(1),
                                                torch.zeros_like(row_max)))
        per_sample = torch.log(sum_exp) + row_max - target
        return per_sample, y, self._predict(cos.detach())

    def _predict(self, cos: torch.Tensor) -> torch.Tensor:
        best, idx = cos.max(1)
        top = best.clone()
        dist.all_reduce(top, op=dist.ReduceOp.MAX)
        cand = torch.where(best >= top, idx + self.start, torch.full_like(idx, -1))
        dist.all_reduce(cand, op=dist.ReduceOp.MAX)
        return cand


def sharded_optimizer_state(head: ShardedMarginHead, opt_state: dict, full_momentum: Optional[torch.Tensor]) -> dict:
    """An SGD state dict saved by rank 0 with this rank's rows of the head's momentum (the head is the last
    parameter of the optimiser's last group)."""
    state = {**opt_state, "state": dict(opt_state["state"])}
    key = opt_state["param_groups"][-1]["params"][-1]
    if full_momentum is not None and key in state["state"]:
        state["state"][key] = {**state["state"][key], "momentum_buffer": full_momentum[head.start:head.end].clone()}
    return state


class ShardedTrainee(nn.Module):
    """Network (DDP-wrapped: the same on every rank) + this rank's head shard (not in DDP: it differs per rank).
    ``forward(x, y)`` -> (per-sample loss of the global batch, the global labels, the predicted classes)."""

    def __init__(self, net: nn.Module, head: ShardedMarginHead):
        super().__init__()
        self.net, self.head = net, head

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        emb = self.net(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.head(emb.float(), y)


def _gather(t: torch.Tensor):
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return parts

