"""Per-encoder analysis: BlendFace's attribute-bias analysis, verification and ID retrieval.

Protocol (``bias``), after BlendFace (Shiohara et al., ICCV 2023, section 3):
for every identity with at least two usable images, one anchor image is drawn (seeded);
* positive: anchor vs every other image of the same identity;
* negative: anchor vs the nearest-landmark image of another identity (among K=100 random candidates);
* swapped: anchor vs the pseudo-swap of each other image of the same identity onto *that image's*
  nearest-landmark partner (inner face from the same identity, everything else from the partner).
Verification uses the dataset's protocol pairs when it has them (LFW View 2) and otherwise every
same-identity pair (up to the caps below) against a seeded sample of different-identity pairs. ID
retrieval uses the first image of each identity as the gallery and the remaining images (up to a
seeded cap) as probes. Every phase is O(N) or O(N log N): see ``python -m idbench.bench.scale``.

The protocol code (which rows are compared) lives in :mod:`idbench.analysis.protocol` and is re-exported here;
each analysis is a step of :mod:`idbench.bench.steps`; :func:`analyse` runs the three per-encoder ones at once.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from idbench.analysis.protocol import (DEGENERATE_AUC, DEGENERATE_SEPARATION, MAX_GENUINE,  # noqa: F401
                                       MAX_GENUINE_PER_IDENTITY, MAX_IMPOSTOR, MAX_PROBES, MAX_SWAP_PROBES,
                                       PAIR_CHUNK, BiasPlan, degenerate_reason, gallery_split, identity_groups,
                                       pair_scores, plan_bias, verification_pairs)

__all__ = ["analyse", "BiasPlan", "identity_groups", "plan_bias", "pair_scores", "verification_pairs", "gallery_split",
           "degenerate_reason", "MAX_GENUINE_PER_IDENTITY", "MAX_GENUINE", "MAX_IMPOSTOR", "MAX_PROBES",
           "MAX_SWAP_PROBES", "PAIR_CHUNK", "DEGENERATE_AUC", "DEGENERATE_SEPARATION"]  # old imports keep working


def analyse(emb: np.ndarray, labels: Sequence[str], plan: Optional[BiasPlan], swap_emb: Optional[np.ndarray],
            pairs: Optional[np.ndarray] = None, folds: Optional[np.ndarray] = None, seed: int = 0,
            n_boot: int = 1000) -> dict:
    """The bias, verification and retrieval numbers of one encoder (the steps' own functions), as results.json's
    encoder entry. ``swap_emb[i]`` is the embedding of ``plan.swaps[i]``'s pseudo-swap."""
    from idbench import analysis as M

    from .steps.bias import bias_numbers
    from .steps.retrieval import retrieval_numbers
    from .steps.verification import verification_numbers

    labels = np.asarray(labels)
    out: dict = {"n_faces": int(len(labels)), "n_identities": int(len(set(labels.tolist())))}
    out.update(bias_numbers(emb, plan, swap_emb, seed, n_boot).to_json())
    sampling: Optional[dict] = None
    if pairs is None:
        sampling = {}
        pairs = verification_pairs(labels, seed=seed, info=sampling)
    s = pair_scores(emb, pairs[:, :2])
    ver = verification_numbers(s, pairs[:, 2], folds, seed, sampling)
    if ver is not None:
        ver.degenerate = degenerate_reason(s, pairs[:, 2], M.roc_auc(s, pairs[:, 2]))
        out.update(ver.to_json())
        if ver.degenerate:
            out["degenerate"] = ver.degenerate
    ret = retrieval_numbers(emb, labels, seed)
    if ret is not None:
        ret.degenerate = out.get("degenerate")
        out.update(ret.to_json())
    if out.get("degenerate") and isinstance(out.get("bias"), dict):  # every number of a degenerate encoder
        out["bias"]["degenerate"] = out["degenerate"]
    return out
