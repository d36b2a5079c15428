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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np


@dataclass
class BiasPlan:
    """Which rows are anchors/positives/negatives and which pseudo-swaps to build (encoder-independent)."""

    anchors: np.ndarray  # anchor row per identity
    positive: List[Tuple[int, int]]  # (anchor row, other row)
    negative: List[Tuple[int, int]]  # (anchor row, partner row)
    swaps: List[Tuple[int, int, int]]  # (anchor row, source row, partner/target row)


# Caps of the sampled analyses (seeded; below them everything is enumerated, as before): the verification
# pairs and the probes of ID retrieval (faces, and swaps against all faces), so every phase is O(N).
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
    """Anchors, positives, negatives and swaps; ``partner[r]`` is row r's pseudo-swap partner (-1: none),
    from :func:`idbench.swapper.plan_partners` (the pseudo-swap's own partner rule)."""
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
    """``<emb[i], b[j]>`` per pair (b = ``emb_b`` or ``emb``), computed in blocks of PAIR_CHUNK pairs."""
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
    from idbench.analysis.sampling import genuine_pairs, impostor_pairs

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
    """Why an encoder's verification scores are near chance (None when they are not)."""
    sep = float(scores[same == 1].mean() - scores[same == 0].mean())
    if auc < DEGENERATE_AUC or sep < DEGENERATE_SEPARATION:
        return (f"degenerate encoder: verification AUC {auc:.3f} (flagged below {DEGENERATE_AUC}), same minus "
                f"different identity mean cosine {sep:.4f} (flagged below {DEGENERATE_SEPARATION}): its embeddings "
                f"barely separate people (a wrong contract or collapsed weights?); its bias numbers are not meaningful")
    return None


def analyse(emb: np.ndarray, labels: Sequence[str], plan: Optional[BiasPlan], swap_emb: Optional[np.ndarray],
            pairs: Optional[np.ndarray] = None, folds: Optional[np.ndarray] = None, seed: int = 0,
            n_boot: int = 1000) -> dict:
    """All per-encoder numbers. ``swap_emb[i]`` is the embedding of ``plan.swaps[i]``'s pseudo-swap."""
    from idbench import analysis as M
    from idbench.analysis.sampling import capped_indices

    labels = np.asarray(labels)
    out: dict = {"n_faces": int(len(labels)), "n_identities": int(len(set(labels.tolist())))}
    if plan is not None and swap_emb is not None and len(plan.positive) and len(plan.negative) >= 1:
        pos = pair_scores(emb, plan.positive)
        neg = pair_scores(emb, plan.negative)
        ok = np.isfinite(swap_emb).all(1)
        swp = np.einsum("ij,ij->i", emb[[s[0] for s in plan.swaps]][ok], swap_emb[ok]).astype(np.float64)
        if len(swp) and len(neg) >= 2:
            try:
                out["bias"] = M.bias_gap(pos, swp, neg, n_boot=n_boot, seed=seed).to_dict()
            except M.MetricInputError as e:  # e.g. positives and negatives with the same mean
                out["bias_error"] = str(e)
        out["scores"] = {"positive": pos.tolist(), "swapped": swp.tolist(), "negative": neg.tolist()}
    sampling: Optional[dict] = None
    if pairs is None:
        sampling = {}
        pairs = verification_pairs(labels, seed=seed, info=sampling)
    if len(pairs) and 0 < pairs[:, 2].sum() < len(pairs):
        s = pair_scores(emb, pairs[:, :2])
        y = pairs[:, 2]
        e, thr = M.eer(s, y)
        ver = {"n_pairs": int(len(y)), "auc": M.roc_auc(s, y), "eer": e, "eer_threshold": thr,
               "tar_at_far_1e-2": M.tar_at_far(s, y, 1e-2), "tar_at_far_1e-3": M.tar_at_far(s, y, 1e-3)}
        k = min(10, len(y))  # a tiny run (a few pairs) gets as many folds as it has pairs, and says so
        if folds is not None or k >= 2:
            acc = M.verification_accuracy(s, y, folds=k, seed=seed, fold_ids=folds)
            ver["accuracy_mean"], ver["accuracy_std"] = float(acc.mean), float(acc.std)
            ver["accuracy_folds"] = int(len(np.unique(folds))) if folds is not None else k
        if sampling is not None:  # the dataset's own protocol pairs are never sampled
            ver["pair_sampling"] = sampling
        # per-pair scores, so the report can draw ROC/DET curves (rounded: they are plotted, not re-scored)
        ver["pair_scores"], ver["pair_labels"] = np.round(s, 5).tolist(), y.astype(int).tolist()
        out["verification"] = ver
        flag = degenerate_reason(s, y, ver["auc"])
        if flag:
            out["degenerate"] = flag
    gal, probe = gallery_split(labels)
    if len(gal) >= 2 and len(probe):
        n_all = len(probe)
        probe = probe[capped_indices(n_all, MAX_PROBES, seed)]
        r5 = M.id_retrieval(emb[probe], labels[probe], emb[gal], labels[gal], k=min(5, len(gal)))
        top1 = labels[gal][r5.topk_indices[:, 0]] == labels[probe]  # the top-5's first = the top-1 (same order)
        out["retrieval"] = {"top1": float(top1.mean()), "top5": float(r5.accuracy), "n_probes": int(len(probe)),
                            "n_gallery": int(len(gal)), "n_probes_all": int(n_all), "probe_cap": MAX_PROBES,
                            "seed": seed}
    if out.get("degenerate"):  # every number of a degenerate encoder carries the flag
        for k in ("bias", "verification", "retrieval"):
            if isinstance(out.get(k), dict):
                out[k]["degenerate"] = out["degenerate"]
    return out
