"""``verification``: 1:1 verification of each encoder on the dataset's protocol pairs (LFW View 2) or, without
them, every same-identity pair (capped) against a seeded sample of different-identity pairs
(:func:`idbench.analysis.protocol.verification_pairs`): ROC AUC (with DeLong's 95% interval), EER, TAR@FAR and
k-fold accuracy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from .base import StepResult, StepSpec, json_key, register_step


@dataclass
class VerificationResult(StepResult):
    """The fragment ``{"verification": {...}}`` of an encoder (None: the pairs have one class only)."""

    KEY = "verification"

    n_pairs: int = 0
    auc: float = float("nan")
    auc_ci: Optional[List[float]] = None  # DeLong 95% interval (pairs taken as independent); None below 2 per class
    eer: float = float("nan")
    eer_threshold: float = float("nan")
    tar_at_far_1e_2: float = field(default=float("nan"), metadata=json_key("tar_at_far_1e-2"))
    tar_at_far_1e_3: float = field(default=float("nan"), metadata=json_key("tar_at_far_1e-3"))
    accuracy_mean: Optional[float] = None
    accuracy_std: Optional[float] = None
    accuracy_folds: Optional[int] = None
    pair_sampling: Optional[Dict[str, Any]] = None  # how the pairs were sampled (absent for protocol pairs)
    pair_scores: List[float] = field(default_factory=list)  # per pair, rounded: the report's ROC/DET curves
    pair_labels: List[int] = field(default_factory=list)
    degenerate: Optional[str] = None
    flip_test: Optional[bool] = None


def verification_numbers(s: np.ndarray, y: np.ndarray, folds: Optional[np.ndarray], seed: int = 0,
                         sampling: Optional[dict] = None) -> Optional[VerificationResult]:
    """Verification numbers from pair scores ``s`` and labels ``y`` (1 = same identity); None for one class."""
    from idbench import analysis as M

    if not (len(y) and 0 < y.sum() < len(y)):
        return None
    e, thr = M.eer(s, y)
    r = VerificationResult(n_pairs=int(len(y)), auc=M.roc_auc(s, y), eer=e, eer_threshold=thr,
                           tar_at_far_1e_2=M.tar_at_far(s, y, 1e-2), tar_at_far_1e_3=M.tar_at_far(s, y, 1e-3))
    if min(int(y.sum()), int(len(y) - y.sum())) >= 2:
        r.auc_ci = list(M.roc_auc_ci(s, y))
    k = min(10, len(y))  # a tiny run (a few pairs) gets as many folds as it has pairs, and says so
    if folds is not None or k >= 2:
        acc = M.verification_accuracy(s, y, folds=k, seed=seed, fold_ids=folds)
        r.accuracy_mean, r.accuracy_std = float(acc.mean), float(acc.std)
        r.accuracy_folds = int(len(np.unique(folds))) if folds is not None else k
    r.pair_sampling = sampling  # the dataset's own protocol pairs are never sampled
    r.pair_scores, r.pair_labels = np.round(s, 5).tolist(), y.astype(int).tolist()
    return r


@register_step(StepSpec("verification", "1:1 verification: ROC AUC, EER, TAR@FAR, k-fold accuracy",
                        VerificationResult, needs=("pairs",),
                        columns=("verification_auc", "eer", "tar_at_far", "verification_accuracy"),
                        section="verification", default=True, order=20))
def run(ctx) -> Optional[VerificationResult]:
    pairs, folds, sampling = ctx.verification_pairs()
    y = pairs[:, 2]
    if not (len(pairs) and 0 < y.sum() < len(pairs)):
        return None  # one class of pairs: no verification
    r = verification_numbers(ctx.pair_scores(), y, folds, ctx.seed, sampling)
    r.degenerate = ctx.degenerate()
    r.flip_test = ctx.encoders[ctx.encoder].spec.flip_test
    return r
