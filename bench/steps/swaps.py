"""``swaps``: the swap evaluation of every ``--swappers`` entry (identity, pose, expression, gaze; both
conventions, :mod:`idbench.bench.swap_eval`) and the paired comparison of every pair of swappers. Runs whenever
``--swappers`` is given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from .base import StepResult, StepSpec, register_step


@dataclass
class SwapsResult(StepResult):
    """``swappers``: per swapper, :func:`idbench.bench.swap_eval.evaluate_swapper`'s entry (its ``summary`` is
    its leaderboard row); ``swap_comparisons``: :func:`idbench.bench.swap_eval.compare_swappers`."""

    swappers: Optional[Dict[str, Dict[str, Any]]] = None
    swap_comparisons: Optional[Dict[str, List[dict]]] = None


@register_step(StepSpec("swaps", "swap evaluation of --swappers: identity, pose, expression, gaze", SwapsResult,
                        scope="run", needs=("swappers",),
                        columns=("id_retrieval_top1", "id_distance", "id_relative", "pose_l2", "pose_l1",
                                 "pose_relative", "expression_l2", "expression_l1", "expression_relative",
                                 "gaze_angular", "gaze_l1", "gaze_relative", "n_swaps"),
                        section="swaps", always="with --swappers", order=60))
def run(ctx) -> Optional[SwapsResult]:
    from idbench.bench.swap_eval import compare_swappers, evaluate_swappers

    if not ctx.swappers:
        return None
    cfg = ctx.cfg
    swappers, est_fails = evaluate_swappers(cfg, ctx.swap_ctx, ctx.encoders, ctx.swappers, ctx.cache)
    ctx.failures.extend(est_fails + [f for sw in swappers.values() for f in sw["failures"]])
    return SwapsResult(swappers, compare_swappers(swappers, cfg.n_boot, cfg.n_perm, cfg.seed))
