"""The one partner search of every pair swap: for each face, a face of another identity (seeded).

``nearest-landmark`` (BlendFace's, paper-protocol.md section 1.2 step 1): among ``k`` random faces of
other identities, the one with the nearest normalised 68-point landmarks; ``random``: one seeded random
face of another identity. ``bench run`` (:meth:`idbench.swapper.PairSwapper.plan`, the bias analysis) and
``bench swap`` (:meth:`~idbench.swapper.PairSwapper.swap_batch`) plan with :func:`plan_partners`.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from idbench.align import arcface_matrix
from idbench.errors import InputError
from idbench.faces import landmarks68_to_5

PARTNERS = ("nearest-landmark", "random")


def normalise_landmarks(landmarks68: np.ndarray, align: bool = False) -> np.ndarray:
    """N x 68 x 2 -> N x 68 x 2: translated to the centroid and scaled to unit RMS distance.

    With ``align=True`` each face is first mapped by its own ArcFace 5-point similarity transform
    (rotation/scale/translation removed the way the crops are aligned), so the distance compares
    face shapes in the template frame.
    """
    p = np.asarray(landmarks68, np.float64)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[1:] != (68, 2):
        raise InputError(f"landmarks68 must be N x 68 x 2, got {p.shape}")
    if align:
        out = np.empty_like(p)
        for i, q in enumerate(p):
            m = arcface_matrix(landmarks68_to_5(q))
            out[i] = q @ m[:, :2].T + m[:, 2]
        p = out
    c = p - p.mean(axis=1, keepdims=True)
    rms = np.empty(len(c))
    for a in range(0, len(c), 1 << 16):  # in row blocks: no second N x 68 x 2 temporary (1.1 GB at 1M faces)
        rms[a:a + (1 << 16)] = np.sqrt((c[a:a + (1 << 16)] ** 2).sum(axis=2).mean(axis=1))
    c /= np.maximum(rms, 1e-12)[:, None, None]
    return c


def sample_candidates(identities: Sequence, k: int = 100, seed: int = 0) -> List[np.ndarray]:
    """For each row, up to ``k`` distinct random rows of *other* identities (seeded, O(k) per row)."""
    ids = np.asarray([str(x) for x in identities])
    n = len(ids)
    rng = np.random.default_rng(seed)
    order = np.argsort(ids, kind="stable")  # rows grouped by identity
    uniq, start, count = np.unique(ids[order], return_index=True, return_counts=True)
    group = {u: (s, c) for u, s, c in zip(uniq, start, count)}
    out = []
    for i in range(n):
        s, c = group[ids[i]]
        pool = n - c
        if pool <= 0 or k <= 0:
            out.append(np.zeros(0, np.int64))
            continue
        pos = rng.choice(pool, size=min(k, pool), replace=False).astype(np.int64)
        pos[pos >= s] += c  # skip over this identity's block
        out.append(order[pos])
    return out


def choose_partners(landmarks68: np.ndarray, identities: Sequence, k: int = 100, seed: int = 0,
                    align: bool = False, return_candidates: bool = False):
    """For each anchor, the nearest-landmark image among ``k`` random images of other identities.

    Landmarks are normalised by :func:`normalise_landmarks` and compared by L2 distance over all
    68 points. Returns ``(partner, distance)``: int64 (N,) and float64 (N,); an anchor with no image
    of another identity gets partner -1 and distance inf. With ``return_candidates=True`` the list
    of candidate rows per anchor is returned as a third element (for checks).
    """
    lm = np.asarray(landmarks68, np.float64)
    ids = list(identities)
    if len(lm) != len(ids):
        raise InputError(f"{len(lm)} landmark sets but {len(ids)} identities")
    n = len(ids)
    partner = np.full(n, -1, np.int64)
    dist = np.full(n, np.inf)
    cands = sample_candidates(ids, k, seed) if n else []
    if n:
        flat = normalise_landmarks(lm, align=align).reshape(n, -1)
        for i, c in enumerate(cands):
            if len(c):
                d = np.linalg.norm(flat[c] - flat[i], axis=1)
                j = int(np.argmin(d))
                partner[i], dist[i] = int(c[j]), float(d[j])
    return (partner, dist, cands) if return_candidates else (partner, dist)


def check_partner_rule(partner: str) -> None:
    """Raise :class:`~idbench.errors.InputError` for an unknown partner rule (before any work)."""
    if partner not in PARTNERS:
        raise InputError(f"unknown partner rule {partner!r}: use {' or '.join(PARTNERS)}")


def plan_partners(faces: Sequence, identities: Sequence, partner: str = "nearest-landmark", k: int = 100,
                  seed: int = 0, usable: Optional[Sequence[bool]] = None,
                  align: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """The one partner choice of every pair-swap: for each row, a row of another identity (-1: none).

    ``nearest-landmark``: nearest normalised 68 landmarks among ``k`` seeded random candidates
    (:func:`choose_partners`); ``random``: one seeded random row of another identity
    (:func:`random_other`). Rows not ``usable`` (or without 68 landmarks) are neither planned nor partners.
    Returns ``(partner, landmark distance)``.
    """
    check_partner_rule(partner)
    n = len(faces)
    ok = [i for i in range(n) if faces[i] is not None and getattr(faces[i], "landmarks68", None) is not None
          and (usable is None or usable[i])]
    out, dist = np.full(n, -1, np.int64), np.full(n, np.inf)
    if not ok:
        return out, dist
    okarr = np.asarray(ok)
    ids = np.asarray([str(identities[i]) for i in ok])
    if partner == "nearest-landmark":
        lm = np.stack([np.asarray(faces[i].landmarks68, np.float64) for i in ok])
        p, d = choose_partners(lm, ids, k, seed, align)
        out[okarr] = np.where(p >= 0, okarr[np.maximum(p, 0)], -1)
        dist[okarr] = d
        return out, dist
    other = random_other(ids, seed)
    out[okarr] = np.where(other >= 0, okarr[np.maximum(other, 0)], -1)
    return out, dist


def random_other(ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """For each row j, the row ``default_rng(seed).choice(rows not of ids[j])`` drawn in row order (the u-th
    such row is found by a search over ids[j]'s sorted rows: O(N log N), no N x N comparison); -1 where none."""
    rng = np.random.default_rng(seed)
    _, inv, counts = np.unique(ids, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    start = np.r_[0, np.cumsum(counts)]
    d = order - (np.arange(len(ids)) - start[inv[order]])  # r_b - b over each identity's rows: non-decreasing
    key = inv[order] * (2 * len(ids) + 1) + d
    out = np.full(len(ids), -1, np.int64)
    for j in range(len(ids)):
        pool = len(ids) - counts[inv[j]]
        if pool:
            u = int(rng.integers(0, pool))  # = rng.choice(others): the same draw
            out[j] = u + np.searchsorted(key, inv[j] * (2 * len(ids) + 1) + u, side="right") - start[inv[j]]
    return out
