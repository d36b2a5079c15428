"""``retrieval``: closed-set identification (CMC rank-1 and rank-5) of each encoder: the first image of each
identity is the gallery, the others (a seeded sample of at most MAX_PROBES) are probes
(:func:`idbench.analysis.protocol.gallery_split`, :func:`idbench.analysis.id_retrieval`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .base import StepResult, StepSpec, register_step


@dataclass
class RetrievalResult(StepResult):
    """The fragment ``{"retrieval": {...}}`` of an encoder."""

    KEY = "retrieval"

    top1: float
    top5: float
    n_probes: int
    n_gallery: int
    n_probes_all: int
    probe_cap: int
    seed: int
    degenerate: Optional[str] = None


def retrieval_numbers(emb: np.ndarray, labels: Sequence[str], seed: int = 0) -> Optional[RetrievalResult]:
    """Top-1/top-5 of the probes against the gallery; None with fewer than 2 gallery identities or no probe."""
    from idbench import analysis as M
    from idbench.analysis.protocol import MAX_PROBES, gallery_split
    from idbench.analysis.sampling import capped_indices

    labels = np.asarray(labels)
    gal, probe = gallery_split(labels)
    if len(gal) < 2 or not len(probe):
        return None
    n_all = len(probe)
    probe = probe[capped_indices(n_all, MAX_PROBES, seed)]
    r5 = M.id_retrieval(emb[probe], labels[probe], emb[gal], labels[gal], k=min(5, len(gal)))
    top1 = labels[gal][r5.topk_indices[:, 0]] == labels[probe]  # the top-5's first = the top-1 (same order)
    return RetrievalResult(float(top1.mean()), float(r5.accuracy), int(len(probe)), int(len(gal)), int(n_all),
                           MAX_PROBES, seed)


@register_step(StepSpec("retrieval", "closed-set ID retrieval: top-1 / top-5 of probes against a gallery",
                        RetrievalResult, columns=("retrieval_top1", "retrieval_top5"), section="retrieval",
                        default=True, order=30))
def run(ctx) -> Optional[RetrievalResult]:
    r = retrieval_numbers(ctx.embeddings, ctx.labels, ctx.seed)
    if r is not None:
        r.degenerate = ctx.degenerate()
    return r
