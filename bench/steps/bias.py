"""``bias``: BlendFace's attribute-bias analysis of each encoder (Shiohara et al., ICCV 2023, section 3).

On the bias plan (:func:`idbench.analysis.protocol.plan_bias`) and its pseudo-swaps: the cosine of each positive
P, swapped S and negative N pair to the anchor, and :func:`idbench.analysis.bias_gap` on them (mean gap, relative
gap, AUC, W1, KS, bootstrap intervals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from .base import StepResult, StepSpec, register_step

COLUMNS = ("positive_mean", "swapped_mean", "negative_mean", "bias_mean_gap", "bias_relative_gap", "bias_auc",
           "bias_wasserstein", "bias_ks")


@dataclass
class BiasResult(StepResult):
    """``bias``: :meth:`idbench.analysis.BiasGap.to_dict` + ``swap_params`` (+ ``degenerate``); ``bias_error``
    when the gap is undefined; ``scores``: every P/S/N cosine (per-sample, kept in samples.npz)."""

    bias: Optional[Dict[str, Any]] = None
    scores: Optional[Dict[str, List[float]]] = None
    error: Optional[str] = field(default=None, metadata={"key": "bias_error"})


def bias_numbers(emb: np.ndarray, plan, swap_emb: Optional[np.ndarray], seed: int = 0,
                 n_boot: int = 1000) -> BiasResult:
    """The bias numbers of one encoder: ``swap_emb[i]`` embeds ``plan.swaps[i]``'s pseudo-swap (NaN: failed)."""
    from idbench import analysis as M
    from idbench.analysis.protocol import pair_scores

    out = BiasResult()
    if plan is None or swap_emb is None or not len(plan.positive) or not len(plan.negative):
        return out
    pos = pair_scores(emb, plan.positive)
    neg = pair_scores(emb, plan.negative)
    ok = np.isfinite(swap_emb).all(1)
    swp = np.einsum("ij,ij->i", emb[[s[0] for s in plan.swaps]][ok], swap_emb[ok]).astype(np.float64)
    if len(swp) and len(neg) >= 2:
        try:
            out.bias = M.bias_gap(pos, swp, neg, n_boot=n_boot, seed=seed).to_dict()
        except M.MetricInputError as e:  # e.g. positives and negatives with the same mean
            out.error = str(e)
    out.scores = {"positive": pos.tolist(), "swapped": swp.tolist(), "negative": neg.tolist()}
    return out


@register_step(StepSpec("bias", "attribute bias: anchor vs same identity (P), pseudo-swap (S), other identity (N)",
                        BiasResult, needs=("bias_swaps",), columns=COLUMNS, section="bias", default=True, order=10))
def run(ctx) -> BiasResult:
    built = ctx.bias_swaps()
    if built is None:
        return BiasResult()
    plan, swap_emb = built
    res = bias_numbers(ctx.embeddings, plan, swap_emb[ctx.encoder], ctx.seed, ctx.cfg.n_boot)
    if res.bias is not None:
        res.bias["swap_params"] = ctx.results["bias_swap_params"]
        if ctx.degenerate():
            res.bias["degenerate"] = ctx.degenerate()
    return res
