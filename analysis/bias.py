"""Attribute bias of an identity encoder: positive vs swapped similarity distributions.

After BlendFace (Shiohara, Yang & Taketomi, ICCV 2023, section 3): for an anchor image,
*positive* scores compare it with other images of the same identity, *swapped* scores with
images of the same identity whose attributes outside the inner face (hair, head shape,
background) were replaced by another person's, *negative* scores with other identities. An
encoder free of attribute bias scores swapped pairs like positive pairs; the larger the gap,
the more the encoder treats those attributes as identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ._checks import MetricInputError, as_scores, check_fraction, check_int

__all__ = ["BiasGap", "bias_gap", "wasserstein_1d", "ks_statistic", "auc_two_sample"]

Interval = Tuple[float, float]


def auc_two_sample(a: Any, b: Any) -> float:
    """``P(A > B) + 0.5 P(A = B)`` for independent draws from the two samples.

    ``= (1/(n_a n_b)) sum_i sum_j [1(a_i > b_j) + 0.5 * 1(a_i = b_j)]``: the Mann-Whitney U
    statistic divided by ``n_a n_b`` (Mann & Whitney, 1947), i.e. the ROC AUC with ``a``
    as the positive class. 0.5 = the samples are indistinguishable by rank.
    """
    x = as_scores(a, "a")
    y = np.sort(as_scores(b, "b"))
    twice = int(np.searchsorted(y, x, "left").sum(dtype=np.int64)) + int(
        np.searchsorted(y, x, "right").sum(dtype=np.int64))
    return twice / (2.0 * len(x) * len(y))


def _cdfs(x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both empirical CDFs (right-continuous) at every pooled value, and the pooled values."""
    pooled = np.sort(np.concatenate([x, y]))
    fx = np.searchsorted(np.sort(x), pooled, "right") / len(x)
    fy = np.searchsorted(np.sort(y), pooled, "right") / len(y)
    return fx, fy, pooled


def wasserstein_1d(a: Any, b: Any) -> float:
    """1-D Wasserstein-1 (earth mover's) distance between two empirical distributions.

    ``W1 = integral |F_a(x) - F_b(x)| dx``, evaluated exactly as
    ``sum_k |F_a(z_k) - F_b(z_k)| (z_{k+1} - z_k)`` over the sorted pooled sample ``z``
    (Vallender, 1974). Equals ``scipy.stats.wasserstein_distance(a, b)``. Same unit as the
    scores; 0 = identical distributions.
    """
    x, y = as_scores(a, "a"), as_scores(b, "b")
    fx, fy, z = _cdfs(x, y)
    return float(np.sum(np.abs(fx[:-1] - fy[:-1]) * np.diff(z)))


def ks_statistic(a: Any, b: Any) -> float:
    """Two-sample Kolmogorov-Smirnov statistic ``D = sup_x |F_a(x) - F_b(x)|``.

    Evaluated at every pooled sample value (where the sup is attained). Equals
    ``scipy.stats.ks_2samp(a, b).statistic`` (two-sided). In [0, 1]; 0 = identical.
    """
    x, y = as_scores(a, "a"), as_scores(b, "b")
    fx, fy, _ = _cdfs(x, y)
    return float(np.max(np.abs(fx - fy)))


@dataclass(frozen=True)
class BiasGap:
    """Positive-vs-swapped statistics of one encoder (see :func:`bias_gap`).

    Stds are population stds (ddof=0). ``*_ci`` are bootstrap percentile intervals
    ``(low, high)`` at level ``ci``; None when ``n_boot == 0`` (and, for
    ``relative_gap_ci``, without negatives).
    """

    n_positive: int
    n_swapped: int
    n_negative: Optional[int]
    positive_mean: float
    positive_std: float
    swapped_mean: float
    swapped_std: float
    negative_mean: Optional[float]
    negative_std: Optional[float]
    mean_gap: float
    auc: float
    wasserstein: float
    ks: float
    relative_gap: Optional[float]
    mean_gap_ci: Optional[Interval]
    auc_ci: Optional[Interval]
    relative_gap_ci: Optional[Interval]
    n_boot: int
    ci: float
    seed: int

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict (intervals as 2-element lists, missing values as None)."""
        out: Dict[str, Any] = {}
        for k in self.__dataclass_fields__:
            v = getattr(self, k)
            out[k] = list(v) if isinstance(v, tuple) else v
        return out


def _denominator_ok(mp: float, mn: float) -> bool:
    return abs(mp - mn) > 1e-12 * max(1.0, abs(mp), abs(mn))


def _counts(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    """b x n multiplicities of a with-replacement resample of size n (one row per replicate)."""
    idx = rng.integers(0, n, size=(b, n))
    return _counts_from_indices(idx, n)


def _counts_from_indices(idx: np.ndarray, n: int) -> np.ndarray:
    b = idx.shape[0]
    flat = (idx + (np.arange(b)[:, None] * n)).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n)


def _replicate_stats(pos: np.ndarray, swp: np.ndarray, neg: Optional[np.ndarray], cp: np.ndarray,
                     cs: np.ndarray, cn: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """mean_gap, auc and relative_gap of bootstrap replicates given as multiplicity rows.

    ``cp[b, i]`` is how often positive ``i`` appears in replicate ``b`` (likewise ``cs``,
    ``cn``); a replicate's size is its row sum (fixed for the i.i.d. bootstrap, variable for
    the cluster bootstrap of :mod:`idbench.analysis.paired`; an empty group gives NaN). The AUC
    of a replicate is computed from the multiplicities without materialising it:
    sum_i cp_i * (#swapped below pos_i + #swapped tied with it / 2) / (size_P size_S).
    """
    n_s = len(swp)
    w_p, w_s = cp.sum(axis=1), cs.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mp = cp @ pos / w_p
        ms = cs @ swp / w_s
    gap = mp - ms
    order = np.argsort(swp, kind="mergesort")
    s_sorted = swp[order]
    left = np.searchsorted(s_sorted, pos, "left")
    right = np.searchsorted(s_sorted, pos, "right")
    cum = np.zeros((cs.shape[0], n_s + 1), np.int64)
    np.cumsum(cs[:, order], axis=1, out=cum[:, 1:])
    twice = (cp * (cum[:, left] + cum[:, right])).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = twice / (2.0 * w_p * w_s)
    rel = None
    if neg is not None and cn is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            mn = cn @ neg / cn.sum(axis=1)
        den = mp - mn
        ok = np.isfinite(den) & (np.abs(den) > 1e-12 * np.maximum(1.0, np.maximum(np.abs(mp), np.abs(mn))))
        rel = np.full(len(den), np.nan)
        rel[ok] = gap[ok] / den[ok]
    return gap, auc, rel


def _interval(v: np.ndarray, level: float) -> Optional[Interval]:
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    lo, hi = np.quantile(v, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def bias_gap(positive_scores: Any, swapped_scores: Any, negative_scores: Optional[Any] = None,
             n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> BiasGap:
    """BlendFace's attribute-bias analysis as numbers (Shiohara et al., ICCV 2023, sec. 3).

    With P = positive, S = swapped, N = negative scores (cosine similarities to the anchor):

    * ``mean_gap = mean(P) - mean(S)`` (0 = no attribute bias; > 0: swaps look less like
      the identity than real photos do, the bias BlendFace reports for ArcFace);
    * ``auc = P(p > s) + 0.5 P(p = s)`` over p in P, s in S (Mann-Whitney; 0.5 = no bias);
    * ``wasserstein = integral |F_P - F_S|`` (= ``scipy.stats.wasserstein_distance``);
    * ``ks = sup |F_P - F_S|`` (= ``scipy.stats.ks_2samp(P, S).statistic``);
    * ``relative_gap = (mean(P) - mean(S)) / (mean(P) - mean(N))``: the gap as a share of the
      positive-negative separation (idbench's normalisation; only with negatives; raises
      :class:`MetricInputError` when ``mean(P)`` and ``mean(N)`` are equal to ~1e-12).

    Bootstrap: ``n_boot`` replicates (0 = none) from ``numpy.random.default_rng(seed)``,
    each resampling P, S and N independently with replacement at their own sizes (the
    groups are separate samples, not paired); the intervals are the percentile intervals
    (Efron & Tibshirani, 1993) at level ``ci`` of mean_gap, auc and relative_gap
    (replicates whose relative-gap denominator is ~0 are left out).
    """
    pos = as_scores(positive_scores, "positive_scores")
    swp = as_scores(swapped_scores, "swapped_scores")
    neg = None if negative_scores is None else as_scores(negative_scores, "negative_scores")
    n_boot = check_int(n_boot, "n_boot", 0)
    seed = check_int(seed, "seed", 0)
    level = check_fraction(ci, "ci", open_low=True, open_high=True)
    mp, ms = float(pos.mean()), float(swp.mean())
    rel = mn = sn = None
    if neg is not None:
        mn, sn = float(neg.mean()), float(neg.std())
        if not _denominator_ok(mp, mn):
            raise MetricInputError(f"negative_scores: mean positive ({mp:.6g}) equals mean negative ({mn:.6g}); "
                                   "relative_gap is undefined")
        rel = (mp - ms) / (mp - mn)
    gap_ci = auc_ci = rel_ci = None
    if n_boot:
        rng = np.random.default_rng(seed)
        widest = max(len(pos), len(swp), len(neg) if neg is not None else 0)
        per_chunk = max(1, min(n_boot, (1 << 21) // widest))
        gaps, aucs, rels = [], [], []
        for start in range(0, n_boot, per_chunk):
            b = min(per_chunk, n_boot - start)
            cp = _counts(rng, len(pos), b)
            cs = _counts(rng, len(swp), b)
            cn = _counts(rng, len(neg), b) if neg is not None else None
            g, a, r = _replicate_stats(pos, swp, neg, cp, cs, cn)
            gaps.append(g)
            aucs.append(a)
            if r is not None:
                rels.append(r)
        gap_ci = _interval(np.concatenate(gaps), level)
        auc_ci = _interval(np.concatenate(aucs), level)
        if rels:
            rel_ci = _interval(np.concatenate(rels), level)
    return BiasGap(
        n_positive=len(pos), n_swapped=len(swp), n_negative=None if neg is None else len(neg),
        positive_mean=mp, positive_std=float(pos.std()), swapped_mean=ms, swapped_std=float(swp.std()),
        negative_mean=mn, negative_std=sn, mean_gap=mp - ms, auc=auc_two_sample(pos, swp),
        wasserstein=wasserstein_1d(pos, swp), ks=ks_statistic(pos, swp), relative_gap=rel,
        mean_gap_ci=gap_ci, auc_ci=auc_ci, relative_gap_ci=rel_ci, n_boot=n_boot, ci=level, seed=seed)
