"""Validation that guards every training run: verification on held-out identities or an insightface ``.bin`` set.

At the start (the starting model) and after every epoch the network embeds the validation crops (eval mode) and
gives, over the set's pairs (cosine of L2-normalised embeddings):

* ``auc``: verification ROC AUC (:func:`idbench.analysis.verification.roc_auc`);
* ``accuracy``: 10-fold verification accuracy (:func:`...verification_accuracy`; a ``.bin`` set with insightface's
  consecutive folds, :func:`idbench.bench.binset.bin_folds`);
* ``pos_mean``, ``neg_mean``, ``neg_std``: mean same-identity similarity, and mean and spread of the
  different-identity similarities; a collapse (every face mapped to one point) shows as ``neg_mean`` rising to
  ``pos_mean`` while ``neg_std`` shrinks, before or while AUC drops.

:class:`Guard`: the run stops, with a message naming the numbers, when AUC falls more than ``margin`` below the
starting model's; the best checkpoint by AUC is kept (``RUN/best/``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from idbench.errors import InputError


@dataclass
class ValSet:
    """Aligned crops and the pairs compared."""

    name: str
    images: np.ndarray  # N x H x W x 3 uint8 RGB
    pairs: np.ndarray  # P x 2
    issame: np.ndarray  # P bool
    folds: Optional[np.ndarray] = None  # P fold ids (None: 10 seeded folds)


def heldout_valset(source, name: str = "held-out identities", max_negatives: int = 20000, seed: int = 0) -> ValSet:
    """Every same-identity pair of ``source`` and (at most ``max_negatives``, seeded) different-identity pairs."""
    ids = np.asarray(source.identities)
    if len(set(ids)) < 2:
        raise InputError(f"validation needs at least 2 identities, {name} has {len(set(ids))}")
    i, j = np.triu_indices(len(ids), 1)
    same = ids[i] == ids[j]
    neg = np.flatnonzero(~same)
    if len(neg) > max_negatives:
        neg = np.sort(np.random.default_rng(seed).choice(neg, max_negatives, replace=False))
    keep = np.concatenate([np.flatnonzero(same), neg])
    return ValSet(name, source.images(), np.stack([i[keep], j[keep]], 1), same[keep])


def bin_valset(path) -> ValSet:
    from ..binset import bin_folds, load_bin

    b = load_bin(path)
    images = np.stack([b.decode(k) for k in range(len(b.images))])
    return ValSet(Path(path).name, images, b.pairs, b.issame, bin_folds(len(b.issame)))


@torch.no_grad()
def embed(net: torch.nn.Module, images: np.ndarray, device: torch.device, batch: int = 64,
          flip: bool = False) -> np.ndarray:
    """L2-normalised embeddings (eval mode; ``flip``: the sum with the mirrored crop's, insightface's flip test)."""
    was = net.training
    net.eval()
    out = []
    for s in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[s:s + batch])).permute(0, 3, 1, 2).float().to(device)
        e = net(x).float().reshape(len(x), -1)
        if flip:
            e = e + net(x.flip(3)).float().reshape(len(x), -1)
        out.append(F.normalize(e, dim=1).cpu().numpy())
    net.train(was)
    return np.concatenate(out)


def verification_metrics(emb: np.ndarray, vs: ValSet) -> dict:
    from idbench.analysis.verification import roc_auc, verification_accuracy

    s = np.sum(emb[vs.pairs[:, 0]] * emb[vs.pairs[:, 1]], axis=1).astype(np.float64)
    y = vs.issame.astype(bool)
    acc = verification_accuracy(s, y, folds=10, fold_ids=vs.folds)
    return {"auc": roc_auc(s, y), "accuracy": acc.mean, "accuracy_std": acc.std, "pos_mean": float(s[y].mean()),
            "neg_mean": float(s[~y].mean()), "neg_std": float(s[~y].std()), "pairs": int(len(y))}


def validate(net: torch.nn.Module, vs: ValSet, device: torch.device, flip: bool = False) -> dict:
    return {"set": vs.name, **verification_metrics(embed(net, vs.images, device, flip=flip), vs)}


class Guard:
    """Keeps the starting and best validation records; says when to stop (AUC below start - margin)."""

    def __init__(self, margin: float, start: Optional[dict] = None, best: Optional[dict] = None):
        self.margin, self.start, self.best = float(margin), start, best

    def update(self, rec: dict) -> bool:
        """Record a validation; True when it is the best so far."""
        if self.start is None:
            self.start = rec
        if self.best is None or rec["auc"] > self.best["auc"]:
            self.best = rec
            return True
        return False

    def stop_reason(self, rec: dict) -> Optional[str]:
        if self.margin <= 0 or self.start is None or rec["auc"] >= self.start["auc"] - self.margin:
            return None
        return (f"validation AUC on {rec['set']} fell from {self.start['auc']:.4f} (start) to {rec['auc']:.4f} at "
                f"step {rec['step']}, more than the allowed {self.margin:.3f} (--val-margin); different-identity "
                f"similarity {self.start['neg_mean']:.3f} +- {self.start['neg_std']:.3f} -> {rec['neg_mean']:.3f} "
                f"+- {rec['neg_std']:.3f}, same-identity {self.start['pos_mean']:.3f} -> {rec['pos_mean']:.3f}. "
                f"Stopped; the best model (step {self.best['step']}, AUC {self.best['auc']:.4f}) is in best/ and "
                f"exported. Try a lower --lr, more --warmup-steps or a smaller --trainable-fraction")

    def state(self) -> dict:
        return {"start": self.start, "best": self.best}


def read_records(path: Path, upto_step: int) -> list:
    if not path.is_file():
        return []
    return [r for r in (json.loads(x) for x in path.read_text().splitlines() if x.strip()) if r["step"] <= upto_step]
