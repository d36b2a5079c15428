"""Paired comparison of two encoders' attribute bias on the same anchors, positives, swaps and negatives.

Every encoder of a run scores the *same* items (anchor vs positive, anchor vs pseudo-swap, anchor
vs negative), so the two encoders' estimates share their sampling noise. The difference of their
bias metrics is therefore judged with paired procedures that keep the items together:

* a paired cluster bootstrap: the resampling unit is an anchor group (all positives, swaps and
  negatives of one anchor, for both encoders at once), resampled with replacement from one seeded
  RNG; percentile interval of the difference (Efron & Tibshirani 1993, ch. 13; Davison & Hinkley
  1997, sec. 3.8 for the cluster form);
* a paired permutation test: under H0 the two encoders are exchangeable on every unit, so the two
  encoders' scores of each unit are swapped with probability 1/2 (a sign-flip test; Good 2005,
  ch. 3). ``p = (1 + #{|T*| >= |T|}) / (1 + n_perm)`` for random draws (Phipson & Smyth 2010),
  the exact share over all 2^G flips when ``2^G <= n_perm``.

Metrics compared: ``mean_gap = mean(P) - mean(S)``, ``relative_gap = (mean(P) - mean(S)) /
(mean(P) - mean(N))`` and ``auc = P(p > s) + 0.5 P(p = s)`` (as :func:`idbench.analysis.bias_gap`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ._checks import MetricInputError, as_labels, as_scores, check_fraction, check_int, same_shape
from .bias import _counts_from_indices, _denominator_ok, _interval, _replicate_stats, auc_two_sample

__all__ = ["MetricDifference", "PairedBiasDifference", "paired_bias_difference", "holm_adjust", "PAIRED_METRICS"]

Interval = Tuple[float, float]
PAIRED_METRICS = ("mean_gap", "relative_gap", "auc")
_RTOL = 1e-9  # |T*| >= |T| up to float rounding (a permuted statistic equal to T counts)
# Differences below this are ties: two numerically identical encoders (dlib and its torch port) give
# float32 cosines equal to ~1e-7, i.e. metric differences up to ~1e-6 (the relative gap divides by
# mean(P) - mean(N)) with a consistent sign, which a sign-flip test would otherwise call significant.
# 1e-5 is far below the 3 decimals reported and any bootstrap interval's width.
RESOLUTION = 1e-5


@dataclass(frozen=True)
class MetricDifference:
    """One metric of encoders A and B, their difference ``a - b``, its interval and p-value."""

    a: float
    b: float
    difference: float
    ci: Optional[Interval]
    p_value: Optional[float]

    def significant(self, alpha: float = 0.05) -> bool:
        """True when the permutation p-value is below ``alpha`` (False without a test)."""
        return self.p_value is not None and self.p_value < alpha


@dataclass(frozen=True)
class PairedBiasDifference:
    """Result of :func:`paired_bias_difference`; one :class:`MetricDifference` per metric."""

    mean_gap: MetricDifference
    relative_gap: MetricDifference
    auc: MetricDifference
    n_units: int
    n_boot: int
    n_perm: int
    exact: bool  # the p-values enumerate every flip pattern
    ci: float
    seed: int

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready: per metric ``{a, b, difference, ci, p_value}``, then the settings."""
        out: Dict[str, Any] = {}
        for m in PAIRED_METRICS:
            d = getattr(self, m)
            out[m] = {"a": d.a, "b": d.b, "difference": d.difference,
                      "ci": None if d.ci is None else list(d.ci), "p_value": d.p_value}
        out.update(n_units=self.n_units, n_boot=self.n_boot, n_perm=self.n_perm, exact=self.exact,
                   ci_level=self.ci, seed=self.seed)
        return out


def _unit_ids(groups: Optional[Any], n: int, name: str, offset: int) -> np.ndarray:
    """Group labels of one score array; None -> every score is its own unit (labels offset..)."""
    if groups is None:
        return np.array([f"#{offset + i}" for i in range(n)], dtype=object)
    g = as_labels(groups, name, n, "scores")
    return np.array([str(x) for x in g], dtype=object)


def _check_side(p: Any, s: Any, n: Any, tag: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = as_scores(p, f"positive_{tag}")
    swp = as_scores(s, f"swapped_{tag}")
    neg = as_scores(n, f"negative_{tag}")
    if not _denominator_ok(float(pos.mean()), float(neg.mean())):
        raise MetricInputError(f"negative_{tag}: mean positive equals mean negative; relative_gap is undefined")
    return pos, swp, neg


def _metrics(pos: np.ndarray, swp: np.ndarray, neg: np.ndarray) -> Tuple[float, float, float]:
    mp, ms, mn = pos.mean(), swp.mean(), neg.mean()
    return float(mp - ms), float((mp - ms) / (mp - mn)), auc_two_sample(pos, swp)


def _normalised(pos: np.ndarray, swp: np.ndarray, neg: np.ndarray):
    """Affine map x -> (x - mean N) / (mean P - mean N): leaves relative_gap and auc unchanged and puts
    both encoders on one scale, so that swapping their scores compares like with like."""
    mn, den = neg.mean(), pos.mean() - neg.mean()
    return (pos - mn) / den, (swp - mn) / den, (neg - mn) / den


def _bootstrap(a, b, units, n_units, n_boot, rng, level) -> Dict[str, Optional[Interval]]:
    """Percentile intervals of a - b over cluster-bootstrap replicates (units resampled jointly)."""
    up, us, un = units
    per_chunk = max(1, min(n_boot, (1 << 21) // max(len(up), len(us), len(un), n_units)))
    diffs = {m: [] for m in PAIRED_METRICS}
    for start in range(0, n_boot, per_chunk):
        w = _counts_from_indices(rng.integers(0, n_units, size=(min(per_chunk, n_boot - start), n_units)), n_units)
        ga, aa, ra = _replicate_stats(*a, w[:, up], w[:, us], w[:, un])
        gb, ab, rb = _replicate_stats(*b, w[:, up], w[:, us], w[:, un])
        diffs["mean_gap"].append(ga - gb)
        diffs["relative_gap"].append(ra - rb)
        diffs["auc"].append(aa - ab)
    return {m: _interval(np.concatenate(v), level) for m, v in diffs.items()}


def _flip_patterns(n_units: int, n_perm: int, rng: np.random.Generator) -> Tuple[np.ndarray, bool]:
    """All 2^G flip patterns when that is at most ``n_perm`` (exact test), else ``n_perm`` random ones."""
    if n_units < 31 and (1 << n_units) <= n_perm:
        codes = np.arange(1 << n_units, dtype=np.int64)
        return ((codes[:, None] >> np.arange(n_units)) & 1).astype(bool), True
    return rng.random((n_perm, n_units)) < 0.5, False


def _auc_rows(pos: np.ndarray, swp: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC of each row of ``pos`` over the same row of ``swp`` (K x n_p, K x n_s)."""
    out = np.empty(len(pos))
    for k, (p, s) in enumerate(zip(pos, swp)):
        s = np.sort(s)
        out[k] = (np.searchsorted(s, p, "left").sum() + np.searchsorted(s, p, "right").sum()) / (2.0 * p.size * s.size)
    return out


def _permuted_stats(a, b, units, flips, metrics: Tuple[str, ...]) -> Dict[str, np.ndarray]:
    """a - b of the metrics after swapping the encoders' scores on the flipped units (one row per pattern)."""
    sides = []
    for xa, xb, u in zip(a, b, units):
        f = flips[:, u]
        sides.append((np.where(f, xb, xa), np.where(f, xa, xb)))
    (pa, pb), (sa, sb), (na, nb) = sides
    gap_a, gap_b = pa.mean(1) - sa.mean(1), pb.mean(1) - sb.mean(1)
    out = {}
    if "mean_gap" in metrics:
        out["mean_gap"] = gap_a - gap_b
    if "relative_gap" in metrics:
        out["relative_gap"] = gap_a / (pa.mean(1) - na.mean(1)) - gap_b / (pb.mean(1) - nb.mean(1))
    if "auc" in metrics:
        out["auc"] = _auc_rows(pa, sa) - _auc_rows(pb, sb)
    return out


def _p_value(t: float, t_star: np.ndarray, exact: bool, atol: float) -> float:
    hits = int(np.count_nonzero(np.abs(t_star) >= abs(t) * (1 - _RTOL) - atol))
    return hits / len(t_star) if exact else (1 + hits) / (1 + len(t_star))


def paired_bias_difference(positive_a: Any, swapped_a: Any, negative_a: Any,
                           positive_b: Any, swapped_b: Any, negative_b: Any, *,
                           positive_groups: Optional[Any] = None, swapped_groups: Optional[Any] = None,
                           negative_groups: Optional[Any] = None, n_boot: int = 1000, n_perm: int = 1000,
                           seed: int = 0, ci: float = 0.95, resolution: float = RESOLUTION) -> PairedBiasDifference:
    """Paired difference (A - B) of two encoders' mean gap, relative gap and AUC, with CI and p-value.

    ``*_a`` / ``*_b``: the two encoders' positive (P), swapped (S) and negative (N) scores of the
    *same* items in the same order (``positive_a[i]`` and ``positive_b[i]`` score one pair).
    ``*_groups``: the unit (anchor) of each item; all items of a unit are resampled and swapped
    together. Without groups every score is its own unit.

    * difference: ``m(P_a, S_a, N_a) - m(P_b, S_b, N_b)`` for m = ``mean(P) - mean(S)``,
      ``(mean(P) - mean(S)) / (mean(P) - mean(N))`` and the Mann-Whitney AUC of P over S;
      exactly 0 for identical score sets.
    * interval: paired cluster bootstrap, ``n_boot`` replicates of G units drawn with replacement
      from ``numpy.random.default_rng(seed)`` (the same draw for both encoders), percentile interval
      at level ``ci`` (Efron & Tibshirani 1993; replicates with an empty P or S are left out).
    * p-value (two-sided): sign-flip permutation test, each unit's A and B scores swapped with
      probability 1/2 (the same RNG), ``T* = m(A*) - m(B*)``; ``p = (1 + #{|T*| >= |T|}) / (1 + n_perm)``
      (Phipson & Smyth 2010), or the exact share over all 2^G patterns when ``2^G <= n_perm``; 1 for
      identical score sets. For relative_gap and auc each encoder's scores are first mapped by
      ``x -> (x - mean N) / (mean P - mean N)`` (its own full-sample means), which leaves those two
      metrics unchanged and makes the swapped scores comparable; mean_gap uses the raw scores.
      ``n_perm = 0`` skips the test (p-values None). ``|T*| >= |T| - resolution`` counts as at least
      as extreme: a difference below ``resolution`` (default 1e-5, float32 rounding of the scores) gets
      p = 1, so numerically identical encoders are never "significantly" different.

    Raises :class:`MetricInputError` for mismatched lengths, NaN/inf, mean(P) = mean(N), bad groups.
    """
    a = _check_side(positive_a, swapped_a, negative_a, "a")
    b = _check_side(positive_b, swapped_b, negative_b, "b")
    for x, y, name in zip(a, b, ("positive", "swapped", "negative")):
        same_shape(x, y, f"{name}_a", f"{name}_b")
    n_boot, n_perm = check_int(n_boot, "n_boot", 0), check_int(n_perm, "n_perm", 0)
    seed = check_int(seed, "seed", 0)
    level = check_fraction(ci, "ci", open_low=True, open_high=True)
    resolution = float(as_scores([resolution], "resolution")[0])
    if resolution < 0:
        raise MetricInputError(f"resolution: must be >= 0, got {resolution}")
    lens = [len(x) for x in a]
    labels = [_unit_ids(g, n, f"{name}_groups", off) for g, n, name, off in
              zip((positive_groups, swapped_groups, negative_groups), lens, ("positive", "swapped", "negative"),
                  (0, lens[0], lens[0] + lens[1]))]
    uniq, inv = np.unique(np.concatenate(labels).astype(str), return_inverse=True)
    units = tuple(np.split(inv.astype(np.int64), np.cumsum(lens)[:2]))
    if len(uniq) < 2:
        raise MetricInputError("groups: all items are in one unit; the paired procedures need at least 2")
    va, vb = _metrics(*a), _metrics(*b)
    rng = np.random.default_rng(seed)
    cis = _bootstrap(a, b, units, len(uniq), n_boot, rng, level) if n_boot else dict.fromkeys(PAIRED_METRICS)
    pvals: Dict[str, Optional[float]] = dict.fromkeys(PAIRED_METRICS)
    exact = False
    if n_perm:
        flips, exact = _flip_patterns(len(uniq), n_perm, rng)
        parts: Dict[str, list] = {}
        for k in range(0, len(flips), 256):  # chunks bound the K x n score matrices
            part = _permuted_stats(a, b, units, flips[k:k + 256], ("mean_gap",))
            part.update(_permuted_stats(_normalised(*a), _normalised(*b), units, flips[k:k + 256],
                                        ("relative_gap", "auc")))
            for m, v in part.items():
                parts.setdefault(m, []).append(v)
        t_star = {m: np.concatenate(v) for m, v in parts.items()}
        pvals = {m: _p_value(x - y, t_star[m], exact, resolution) for m, x, y in zip(PAIRED_METRICS, va, vb)}
    diffs = {m: MetricDifference(x, y, x - y, cis[m], pvals[m]) for m, x, y in zip(PAIRED_METRICS, va, vb)}
    return PairedBiasDifference(**diffs, n_units=len(uniq), n_boot=n_boot, n_perm=len(flips) if n_perm else 0,
                                exact=exact, ci=level, seed=seed)


def holm_adjust(p_values: Any) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), controlling the family-wise error rate.

    With the m p-values sorted ascending, ``p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``
    (1-based ranks), returned in the input order. A test is significant at level alpha when
    its adjusted p-value is below alpha.
    """
    p = as_scores(p_values, "p_values", min_len=0)
    if len(p) and (p.min() < 0 or p.max() > 1):
        raise MetricInputError("p_values: must lie in [0, 1]")
    order = np.argsort(p, kind="mergesort")
    m = len(p)
    adj_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj_sorted
    return out
