"""``decomposition``: which attribute does each encoder treat as identity? Every planned bias swap rebuilt once
per controlled variant (skin, outside, shape, inner, full) and scored like the bias analysis, with mask
sensitivity and pairwise encoder tests (:mod:`idbench.bench.decomposition` computes it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from .base import StepResult, StepSpec, register_step


@dataclass
class DecompositionResult(StepResult):
    """``decomposition``: :func:`idbench.bench.decomposition.summarise` + the example images, or None (no bias
    plan: the reason is a listed failure)."""

    decomposition: Optional[Dict[str, Any]] = field(default=None, metadata={"keep_none": True})

    def columns(self) -> Dict[str, Dict[str, Any]]:
        from idbench.bench.decomposition import leaderboard_columns

        return leaderboard_columns(self.decomposition or {})


@register_step(StepSpec("decomposition", "attribute decomposition: the bias gap per controlled swap variant, mask "
                        "sensitivity, pairwise encoder tests", DecompositionResult, scope="run", needs=("bias_swaps",),
                        columns=("decomp_relative_gap", "decomp_mean_gap", "decomp_auc", "mask_relative_gap"),
                        section="decomposition", order=50))
def run(ctx) -> DecompositionResult:
    from idbench.bench.decomposition import run_decomposition

    plan, full_emb = ctx.bias_swaps() or (None, None)
    return DecompositionResult(run_decomposition(ctx.cfg, ctx.swap_ctx, plan, full_emb, ctx.encoders, ctx.cache,
                                                 ctx.failures, ctx.out_dir))
