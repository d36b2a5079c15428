"""Margin softmax losses: ArcFace (additive angular margin) and CosFace (additive cosine margin)."""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from idbench.errors import InputError


def margin_logits(cosine: torch.Tensor, labels: torch.Tensor, loss: str = "arcface", scale: float = 64.0,
                  margin: Optional[float] = None) -> torch.Tensor:
    """Scaled logits with the margin applied to each sample's target class.

    * ``arcface``: ``s * cos(theta_y + m)`` for the target (InsightFace's CombinedMarginLoss with
      (1, m, 0): where ``theta_y + m > pi`` the monotone continuation ``cos(theta_y) - m sin(m)`` is used);
    * ``cosface``: ``s * (cos(theta_y) - m)``.
    Other classes: ``s * cos(theta_j)``. ``cosine`` is N x C (float32), ``labels`` N (int64).
    """
    if margin is None:
        margin = default_margin(loss)
    cosine = cosine.float().clamp(-1.0, 1.0)
    target = cosine.gather(1, labels.view(-1, 1))
    if loss == "arcface":
        sin = torch.sqrt((1.0 - target * target).clamp_min(1e-9))
        cos_m = target * math.cos(margin) - sin * math.sin(margin)
        threshold = math.cos(math.pi - margin)
        new_target = torch.where(target > threshold, cos_m, target - math.sin(math.pi - margin) * margin)
    elif loss == "cosface":
        new_target = target - margin
    else:
        raise InputError(f"loss must be 'arcface' or 'cosface', got {loss!r}")
    logits = cosine.scatter(1, labels.view(-1, 1), new_target)
    return logits * scale


def default_margin(loss: str) -> float:
    return {"arcface": 0.5, "cosface": 0.35}.get(loss, 0.5)


class MarginHead(nn.Module):
    """Classifier with L2-normalised weights (C x D); ``forward`` gives the cosine N x C in float32."""

    def __init__(self, embedding_size: int, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(embeddings.float(), dim=1), F.normalize(self.weight.float(), dim=1))


def margin_loss(cosine: torch.Tensor, labels: torch.Tensor, loss: str = "arcface", scale: float = 64.0,
                margin: Optional[float] = None, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of :func:`margin_logits` (the ArcFace / CosFace loss)."""
    return F.cross_entropy(margin_logits(cosine, labels, loss, scale, margin), labels, reduction=reduction)


class Trainee(nn.Module):
    """Network + margin head: ``forward(x, y) -> (per-sample loss, cosine)``; one module for DDP."""

    def __init__(self, net: nn.Module, head: MarginHead, loss: str, scale: float, margin: float):
        super().__init__()
        self.net, self.head = net, head
        self.loss, self.scale, self.margin = loss, scale, margin

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        emb = self.net(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            cos = self.head(emb.float())
            return margin_loss(cos, y, self.loss, self.scale, self.margin, reduction="none"), cos
