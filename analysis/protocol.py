"""The evaluation protocols of ``bench run``: which rows are compared with which (pure numpy, no torch/OpenCV).

* :func:`plan_bias`: BlendFace's attribute-bias protocol (Shiohara et al., ICCV 2023, section 3): per identity
  with >= 2 images one seeded anchor; positives P = (anchor, every other image of the identity), negatives
  N = (anchor, its nearest-landmark partner of another identity), swaps S = (anchor, pseudo-swap of each other
  image onto that image's partner).
* :func:`verification_pairs`: every same-identity pair (up to caps) and a seeded sample of different-identity
  pairs, for the dataset without protocol pairs of its own.
* :func:`gallery_split`: closed-set identification (CMC rank-k): the first image of each identity is the gallery,
  the others are probes.
* :func:`degenerate_reason`: the sanity check that flags an encoder whose verification is near chance.

Every phase is O(N) or O(N log N) (``python -m idbench.bench.scale`` times them); every random choice takes a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["BiasPlan", "identity_groups", "plan_bias", "pair_scores", "verification_pairs", "gallery_split",
           "degenerate_reason", "MAX_GENUINE_PER_IDENTITY", "MAX_GENUINE", "MAX_IMPOSTOR", "MAX_PROBES",
           "MAX_SWAP_PROBES", "PAIR_CHUNK", "DEGENERATE_AUC", "DEGENERATE_SEPARATION"]


@dataclass
class BiasPlan:
    """Which rows are anchors/positives/negatives and which pseudo-swaps to build (encoder-independent)."""

    anchors: np.ndarray  # anchor row per identity
    positive: List[Tuple[int, int]]  # (anchor row, other row)
    negative: List[Tuple[int, int]]  # (anchor row, partner row)
    swaps: List[Tuple[int, int, int]]  # (anchor row, source row, partner/target row)


# Caps of the sampled analyses (seeded; below them everything is enumerated): the verification pairs and the
# probes of ID retrieval (faces, and swaps against all faces), so every phase is O(N).
MAX_GENUINE_PER_IDENTITY = 5000  # same-identity pairs of one identity (LFW's largest, 530 images: 140k)
MAX_GENUINE = 100_000  # same-identity pairs in all
MAX_IMPOSTOR = 20_000  # different-identity pairs
MAX_PROBES = 20_000  # probes of ID retrieval of faces (the gallery: one face per identity)
MAX_SWAP_PROBES = 5_000  # swaps whose source is retrieved among all faces (each costs a pass over N faces)
PAIR_CHUNK = 1 << 18  # pairs scored per block in pair_scores


def identity_groups(labels: Sequence[str]) -> List[Tuple[str, np.ndarray]]:
    """(identity, its rows ascending) for every identity, identities sorted: one O(N log N) pass."""
    labels = np.asarray(labels)
    if not len(labels):
        return []
    uniq, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.argsort(inv.reshape(-1), kind="stable")
    ends = np.cumsum(counts)
    return [(str(u), order[e - c:e]) for u, c, e in zip(uniq, counts, ends)]


def plan_bias(labels: Sequence[str], partner: np.ndarray, seed: int = 0) -> BiasPlan:
    """BlendFace's bias protocol: per identity (sorted) with >= 2 rows, anchor ``a`` = a seeded draw;
    P = {(a, r)}, N = {(a, partner[a])}, S = {(a, r, partner[r])} over the identity's other rows r.
    ``partner[r]`` is row r's pseudo-swap partner (-1: none, the pair is left out), from
    :func:`idbench.swapper.plan_partners` (the pseudo-swap's own partner rule)."""
    partner = np.asarray(partner)
    rng = np.random.default_rng(seed)
    anchors, pos, neg, swaps = [], [], [], []
    for _, rows in identity_groups(labels):
        if len(rows) < 2:
            continue
        a = int(rng.choice(rows))
        anchors.append(a)
        if partner[a] >= 0:
            neg.append((a, int(partner[a])))
        for r in rows.tolist():
            if r != a:
                pos.append((a, r))
                if partner[r] >= 0:
                    swaps.append((a, r, int(partner[r])))
    return BiasPlan(np.array(anchors, np.int64), pos, neg, swaps)


def pair_scores(emb: np.ndarray, pairs: Sequence[Tuple[int, int]], emb_b: Optional[np.ndarray] = None) -> np.ndarray:
    """``<emb[i], b[j]>`` per pair (b = ``emb_b`` or ``emb``; the cosine for L2-normalised rows), computed in
    blocks of PAIR_CHUNK pairs so memory stays bounded."""
    if not len(pairs):
        return np.zeros(0, np.float32)
    p = np.asarray(pairs)
    b = emb if emb_b is None else emb_b
    out = np.empty(len(p), np.float64)
    for a in range(0, len(p), PAIR_CHUNK):
        q = p[a:a + PAIR_CHUNK]
        out[a:a + PAIR_CHUNK] = np.einsum("ij,ij->i", emb[q[:, 0]], b[q[:, 1]])
    return out


def verification_pairs(labels: Sequence[str], max_negatives: int = MAX_IMPOSTOR, seed: int = 0,
                       max_per_identity: int = MAX_GENUINE_PER_IDENTITY, max_positives: int = MAX_GENUINE,
                       info: Optional[dict] = None) -> np.ndarray:
    """Same-identity pairs (every one up to the caps, :func:`idbench.analysis.sampling.genuine_pairs`) and a
    seeded sample of different-identity pairs: P x 3 (i, j, same). ``info`` receives how they were sampled."""
    from .sampling import genuine_pairs, impostor_pairs

    g = genuine_pairs(labels, max_per_identity, max_positives, seed)
    im = impostor_pairs(labels, max_negatives, seed)
    if info is not None:
        info.update({"seed": seed, "genuine": {**g.to_dict(), "cap_per_identity": max_per_identity,
                                              "cap": max_positives}, "impostor": im.to_dict()})
    return np.concatenate([np.c_[g.pairs, np.ones(len(g.pairs), np.int64)],
                           np.c_[im.pairs, np.zeros(len(im.pairs), np.int64)]])


def gallery_split(labels: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """First row of each identity -> gallery; the rest -> probes (identities with >= 2 rows only)."""
    gal, probe = [], []
    for _, rows in identity_groups(labels):
        if len(rows) >= 2:
            gal.append(rows[0])
            probe.append(rows[1:])
    return np.array(gal, np.int64), (np.concatenate(probe) if probe else np.zeros(0, np.int64)).astype(np.int64)


# An encoder is flagged degenerate (never marked best, its numbers carry the flag) when, on the run's own
# verification pairs, its ROC AUC is below DEGENERATE_AUC (0.5 = chance) or the mean cosine of same-identity
# pairs exceeds that of different-identity pairs by less than DEGENERATE_SEPARATION: collapsed embeddings
# (every face at cosine ~0.99 of every other) make every bias number meaningless. Working encoders are far
# from both: on ../shared/data/faces dlib has AUC 0.999 and a separation of about 0.2.
DEGENERATE_AUC = 0.6
DEGENERATE_SEPARATION = 0.05


def degenerate_reason(scores: np.ndarray, same: np.ndarray, auc: float) -> Optional[str]:
    """Why an encoder's verification scores are near chance (None when they are not):
    AUC < DEGENERATE_AUC or mean(s | same) - mean(s | different) < DEGENERATE_SEPARATION."""
    sep = float(scores[same == 1].mean() - scores[same == 0].mean())
    if auc < DEGENERATE_AUC or sep < DEGENERATE_SEPARATION:
        return (f"degenerate encoder: verification AUC {auc:.3f} (flagged below {DEGENERATE_AUC}), same minus "
                f"different identity mean cosine {sep:.4f} (flagged below {DEGENERATE_SEPARATION}): its embeddings "
                f"barely separate people (a wrong contract or collapsed weights?); its bias numbers are not meaningful")
    return None
