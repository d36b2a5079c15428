"""The pseudo-swaps of the bias plan, embedded: shared by the bias step and every decomposition variant
(both import this module; neither imports the other nor ``bench.run``)."""

from __future__ import annotations

from typing import Dict

import numpy as np


def bias_swapper(cfg):
    """The pseudo-swap of the bias analysis: ``blend`` with the run's seed and ``--k-partners``."""
    from idbench.swapper import create_swapper

    return create_swapper("blend", seed=cfg.seed, k=cfg.k_partners, device=cfg.device)


def plan_swap_embeddings(sw, plan, ctx, encoders, cfg, cache, failures, desc: str) -> Dict[str, np.ndarray]:
    """Embeddings of ``sw``'s swap of every ``plan.swaps`` (source, partner) pair, per encoder, in plan
    order (NaN rows: failed swaps, listed in ``failures``). The bias analysis and every decomposition
    variant use it on the same plan."""
    from idbench.swapper import SwapItem

    from .distributed import split_embed_swaps
    from .swap_eval import swap_failures

    t = ctx.table
    items = [SwapItem(int(p), str(ctx.labels[s]), f"{t.paths[s]} -> {t.paths[p]}", source=int(s))
             for _, s, p in plan.swaps]
    S = split_embed_swaps(sw, items, ctx, encoders, cfg, cache, desc=desc)  # split across torchrun ranks
    failures += swap_failures(S.skipped, "bias-swap")
    emb = {n: np.full((len(items), e.spec.embedding_size), np.nan, np.float32) for n, e in encoders.items()}
    for r in range(len(S.paths)):
        i = S.item(r).meta["index"]
        for n in encoders:
            emb[n][i] = S.embeddings[n][r]
    return emb


def bias_swaps(cfg, ctx, encoders, cache, failures):
    """The bias plan, its pseudo-swaps' embeddings per encoder (NaN rows: failed swaps, listed) and the
    swapper's parameters."""
    from idbench.analysis.protocol import plan_bias
    from idbench.swapper import plan_partners

    sw = bias_swapper(cfg)
    partner, _ = plan_partners(ctx.table.faces, ctx.labels, sw.partner, sw.k, sw.seed, sw.usable(ctx))
    plan = plan_bias(ctx.labels, partner, seed=cfg.seed)
    emb = plan_swap_embeddings(sw, plan, ctx, encoders, cfg, cache, failures, "bias pseudo-swaps")
    return plan, emb, sw.params()
